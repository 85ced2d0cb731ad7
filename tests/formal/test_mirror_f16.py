"""Mirrors of lean/Q35/F16.lean: binary16 rounding of the zero and the scale, and the grid of a group (SPEC §3).

Domain: every finite binary16 value and, between each two consecutive ones, the points where rounding can go
wrong (both ends, their binary64 and binary32 neighbours, the midpoint): about 380 000 inputs, so that every
binade, the subnormals, both signs, zero and ±65504 are covered. pyref's `f16_down`/`f16_up` are checked
against an oracle built from all 65536 bit patterns (nearest binary16 below/above), pyref's ulp exponent
against Lean's `f16_ulp_ok`, and Lean's definitions and statements are evaluated on the same values in units of
2^-1074 (every binary64 is an integer there). `group_params` is checked on every binary16 minimum paired with
several maxima.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given

import q35.reference as pyref
from strategies import group_sizes, weights
from test_mirror_common import LEAN, Z3, lean_statement_test, load_bridge, mirror_examples, mirrors, to_units

E = 1074                 # units of 2^-1074
K0 = E - 24              # the smallest binary16 subnormal 2^-24 is 2^K0 units
F16_MAX = 65504.0
SAMPLE = 41              # Lean-text evaluations (big-integer arithmetic) run on every 41st probe point

STATEMENTS = {
    "f16_down_le": Z3(k=range(0, 14)),
    "le_f16_up": Z3(k=range(0, 14)),
    "is_f16_of_mul": Z3(k0=[0, 3], k=[0, 1, 3, 5, 13, 31, 32]),
    "f16_down_parts": Z3(k0=[0, 3], k=[0, 1, 3, 5, 13, 31, 32]),
    "f16_down_is_f16": Z3(k0=[0, 3], k=[0, 1, 3, 5, 13, 31, 32]),
    "f16_up_is_f16": Z3(k0=[0, 3], k=[0, 1, 3, 5, 13, 31, 32]),
    "f16_down_ge_rep": Z3(k0=[0], k=[0, 1, 2, 11, 12, 28, 29], j=[0, 1, 2, 11, 12, 28, 29]),
    "eq_of_emod_eq_zero": Z3(n=range(0, 20)),
    "f16_down_nearest": Z3(k0=[0], k=[0, 12, 29]),
    "f16_up_nearest": Z3(k0=[0], k=[1, 13]),
    "grid_covers_group": Z3(k0=[0], kz=[0, 7], ks=[0, 29]),
    "group_params_f16": Z3(k0=[0], kz=[29], ks=[0, 7]),
}
test_lean_statement = lean_statement_test(STATEMENTS)


def binary16_values() -> np.ndarray:
    """Every finite binary16 value, ascending, as binary64 (+0 once)."""
    v = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)
    return np.unique(v[np.isfinite(v)])


F16 = binary16_values()


def probe_points() -> np.ndarray:
    a, b = F16[:-1], F16[1:]
    f32 = lambda v, to: np.nextafter(v.astype(np.float32), np.float32(to)).astype(np.float64)  # noqa: E731
    pts = np.concatenate([F16, np.nextafter(a, np.inf), np.nextafter(b, -np.inf), (a + b) / 2,
                          f32(a, np.inf), f32(b, -np.inf)])
    return np.unique(pts[np.abs(pts) <= F16_MAX])


def ulp_exponent(x: float) -> int:
    """pyref's own exponent (SPEC §3 `u`), taken from the function pyref's f16_down/f16_up use."""
    return pyref.core._f16_ulp_exponent(x)


def units(x: float) -> int:
    return to_units(x, E)


def from_units(v: int) -> float:
    f = float(Fraction(v, 1 << E))
    assert units(f) == v
    return f


def check_f16_rounding(f16_down=pyref.f16_down, f16_up=pyref.f16_up) -> int:
    """Statements of F16.lean on pyref's functions over the probe points: bracket within one ulp, binary16 results,
    nearest below/above (oracle: all 65536 bit patterns), pyref's exponent satisfies Lean's `f16_ulp_ok`, and
    Lean's definitions give pyref's results."""
    xs = probe_points()
    down = np.array([f16_down(x) for x in xs.tolist()])
    up = np.array([f16_up(x) for x in xs.tolist()])
    ulp = np.ldexp(1.0, np.maximum(np.frexp(xs)[1] - 11, -24))
    assert (down <= xs).all() and (xs <= up).all(), "f16_down_le / le_f16_up"
    for x, d, u, e in zip(xs.tolist(), down.tolist(), up.tolist(), ulp.tolist()):  # fsum: exact sign
        assert math.fsum([x, -d, -e]) < 0 and math.fsum([u, -x, -e]) < 0, ("more than one ulp", x, d, u)
    for r, what in ((down, "f16_down_is_f16"), (up, "f16_up_is_f16")):
        assert np.array_equal(r.astype(np.float16).astype(np.float64), r), what
    assert np.array_equal(down, F16[np.searchsorted(F16, xs, side="right") - 1]), "f16_down_nearest"
    assert np.array_equal(up, F16[np.searchsorted(F16, xs, side="left")]), "f16_up_nearest"
    check_lean_f16_text(xs[::SAMPLE], down[::SAMPLE], up[::SAMPLE])
    return len(xs)


def pyref_in_units(f):
    """pyref's f16_down/f16_up as Lean's `f16_down k x` (pyref picks its own exponent; the mirrors pass that k)."""
    return lambda k, x: units(f(from_units(x)))


def check_lean_f16_text(xs, down, up) -> None:
    """On sampled probe points: pyref's exponent satisfies `f16_ulp_ok`, Lean's definitions give pyref's results,
    and the statements hold with pyref's functions in place of Lean's."""
    ok, is_f16 = LEAN.fn("f16_ulp_ok"), LEAN.fn("is_f16")
    lean_down, lean_up = LEAN.fn("f16_down"), LEAN.fn("f16_up")
    code = LEAN.with_code(f16_down=pyref_in_units(pyref.f16_down), f16_up=pyref_in_units(pyref.f16_up))
    stmts = {t: code.statement(t) for t in ("f16_down_nearest", "f16_up_nearest", "f16_down_is_f16",
                                            "f16_up_is_f16", "f16_down_parts", "f16_down_ge_rep")}
    for i, (x, d, u) in enumerate(zip(xs.tolist(), down.tolist(), up.tolist())):
        k, xu = ulp_exponent(x) + E, units(x)
        assert ok(K0, k, xu), ("pyref's exponent violates f16_ulp_ok", x)
        assert lean_down(k, xu) == units(d) and lean_up(k, xu) == units(u), x
        if i % 8:
            continue
        assert is_f16(K0, units(d)) and is_f16(K0, units(u)), x
        for t in ("f16_down_is_f16", "f16_up_is_f16", "f16_down_parts"):
            hyp, concl = stmts[t](k0=K0, k=k, x=xu)
            assert hyp and concl() is True, (t, x)
        for y in F16[max(0, np.searchsorted(F16, d) - 1):np.searchsorted(F16, u) + 2].tolist():
            for t in ("f16_down_nearest", "f16_up_nearest"):
                hyp, concl = stmts[t](k0=K0, k=k, x=xu, y=units(y))
                assert not hyp or concl() is True, (t, x, y)
            yu, j = units(y) >> K0, 0
            while abs(yu) > 2048:
                yu, j = yu // 2, j + 1
            hyp, concl = stmts["f16_down_ge_rep"](k0=K0, k=k, j=j, x=xu, m=yu)
            assert not hyp or concl() is True, ("f16_down_ge_rep", x, y)


@mirrors("f16_down_parts", "f16_down_ge_rep", "f16_down", "f16_up", "f16_ulp_ok", "f16_down_le", "le_f16_up",
          "f16_down_is_f16", "f16_up_is_f16", "f16_down_nearest", "f16_up_nearest")
def test_f16_rounding__pyref_every_binary16_neighbourhood():
    assert check_f16_rounding() > 300_000


@mirrors("is_f16", "f16_in_range")
def test_is_f16__lean_definition_is_the_binary16_set():
    """Lean's `is_f16` (units 2^-24, k0 = 0) holds exactly for the finite binary16 values: every one of the 65536
    bit patterns that is finite satisfies it, and every value it admits (|m| ≤ 2048, j ≤ 29, in range) is one."""
    is_f16 = LEAN.fn("is_f16")
    f16_units = [int(v * 2**24) for v in F16.tolist()]
    members = set(f16_units)
    for v in f16_units[::17]:
        for u in (v, v + 1, v - 1, v + (abs(v) >> 11) + 1):
            assert is_f16(0, u) == (u in members), u
    admitted = [(m << j) for j in range(30) for m in range(-2048, 2049, 3)]
    for u in admitted[::11]:
        assert is_f16(0, u) == (abs(u) <= 2047 << 29), u
        assert (u in members) == (abs(u) <= 2047 << 29), u
    assert not is_f16(0, 65536 << 24) and not is_f16(0, 2049) and is_f16(0, 2048)


def grid_pairs() -> tuple[np.ndarray, np.ndarray]:
    """(min, max) pairs: every binary16 value and its binary32 successor as the minimum, with maxima at the
    minimum itself, one binary32 step above, the next binary16 value and four fractions of the way to 65504."""
    m = np.concatenate([F16, np.nextafter(F16.astype(np.float32), np.float32(np.inf)).astype(np.float64)])
    m = m[m < F16_MAX]
    hi = [m, np.nextafter(m.astype(np.float32), np.float32(np.inf)).astype(np.float64),
          F16[np.minimum(np.searchsorted(F16, m, side="right"), len(F16) - 1)]]
    hi += [(m + (F16_MAX - m) * r).astype(np.float32).astype(np.float64) for r in (1e-7, 1e-3, 0.37, 1.0)]
    mins = np.concatenate([m] * len(hi))
    maxs = np.minimum(np.maximum(np.concatenate(hi), mins), F16_MAX)
    return mins, maxs


def check_grid_covers_group(group_params=pyref.group_params, lean=LEAN) -> int:
    """grid_covers_group / group_params_f16 on pyref's group_params: z ≤ min, (2^52 − 1)(max − z) ≤ 2^52·15·s
    exactly, z and s binary16 and s > 0; the hypothesis on the binary64 quotient q holds; Lean's `group_zero`/
    `group_scale` give pyref's z and s (sampled)."""
    mins, maxs = grid_pairs()
    params = np.array([group_params([lo, hi]) for lo, hi in zip(mins.tolist(), maxs.tolist())])
    zs, ss = params[:, 0], params[:, 1]
    assert (zs <= mins).all() and (ss > 0).all(), "z ≤ min, s > 0"
    for v, what in ((zs, "zero"), (ss, "scale")):
        assert np.array_equal(v.astype(np.float16).astype(np.float64), v), f"binary16 {what}"
    qs = (maxs - zs) / 15.0  # the binary64 quotient of SPEC §3 step 3, as pyref computes it
    eps = 2.0 ** -52
    for lo, hi, z, s, q in zip(mins.tolist(), maxs.tolist(), zs.tolist(), ss.tolist(), qs.tolist()):
        # (2^52 − 1)(hi − z) ≤ 2^52·15·t  ⟺  15t − (hi − z) + (hi − z)·2^-52 ≥ 0; fsum's rounding keeps the sign
        assert math.fsum([16 * q, -q, -hi, z, hi * eps, -z * eps]) >= 0, ("binary64 quotient", lo, hi)
        assert math.fsum([15 * s, -hi, z, hi * eps, -z * eps]) >= 0, ("grid does not reach the max", lo, hi, z, s)
    check_lean_grid_text(mins[::SAMPLE], maxs[::SAMPLE], zs[::SAMPLE], ss[::SAMPLE], qs[::SAMPLE], lean)
    return len(mins)


def check_lean_grid_text(mins, maxs, zs, ss, qs, lean=LEAN) -> None:
    lean_z, lean_s = lean.fn("group_zero"), lean.fn("group_scale")
    stmt = lean.statement("grid_covers_group")
    for lo, hi, z, s, q in zip(mins.tolist(), maxs.tolist(), zs.tolist(), ss.tolist(), qs.tolist()):
        kz, ks = ulp_exponent(lo) + E, ulp_exponent(q) + E
        assert lean_z(kz, units(lo)) == units(z) and lean_s(K0, ks, units(q)) == units(s), (lo, hi)
        hyp, concl = stmt(k0=K0, kz=kz, ks=ks, m=units(lo), M=units(hi), q=units(q))
        assert hyp and concl() is True


@mirrors("group_zero", "group_scale", "grid_covers_group", "group_params_f16")
def test_grid_covers_group__pyref_every_binary16_minimum():
    assert check_grid_covers_group() > 400_000


@mirrors("grid_covers_group")
@mirror_examples
@given(w=weights(), g=group_sizes)
def test_grid_covers_group__fortran(w, g):
    """The Fortran quantizer's stored zero and scale contain every group: z ≤ min, (2^52 − 1)(max − z) ≤ 2^52·15·s."""
    qt = load_bridge().quantize(w, g)
    for n, row in enumerate(w.astype(np.float64).tolist()):
        for j, start in enumerate(range(0, len(row), qt.group_size)):
            grp = row[start:start + qt.group_size]
            z, s = float(qt.zeros[n, j]), float(qt.scales[n, j])
            assert z <= min(grp) and s > 0
            assert (2**52 - 1) * (Fraction(max(grp)) - Fraction(z)) <= 2**52 * 15 * Fraction(s), (grp, z, s)
            assert math.isfinite(s)
