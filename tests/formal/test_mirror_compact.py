"""Mirrors of lean/Q35/Compact.lean: the group-code bitstream, the exact binary32 grid, the search (SPEC §8).

* pyref's `pack_group_codes`/`unpack_group_codes` run on z3 bit-vectors (128-bit words; 12 ten-bit codes stay
  below 2^120) and z3 proves they compute Lean's definitions and satisfy the round-trip statement;
* `q35.format.expand_compact` is evaluated on every positive binary16 row scale × every scale code × every zero
  point (32 million grids) and must be exact in binary32; Lean's `is_f32` is checked against numpy's float32;
* pyref's `search_group` is instrumented: the grids it tries must be Lean's `search_candidates` in Lean's order,
  its answer Lean's `search_group` for the same errors, and never worse than the centred candidate.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from q35.format import expand_compact, group_code_bytes_per_row
from strategies import group_sizes, weights
from test_mirror_common import (Exhaustive, LEAN, SymList, Z3, lean_statement_test, lists_over, load_bridge,
                                mirror_examples, mirrors, prove, to_units, z3)

W = 128
STATEMENTS = {
    "pack_group_codes_length": Z3(cs=SymList(range(0, 10))),
    "from_digits_lt_1024": Z3(bits=W, ds=SymList(range(0, 10))),
    "to_digits_from_digits_1024": Z3(bits=W, ds=SymList(range(0, 10))),
    "unpack_pack_group_codes": Z3(bits=W, cs=SymList(range(0, 10))),
    "is_f32_of_mul": Exhaustive(k0=[0, 2], j=[0, 1, 100, 252, 253], q=[0, 1, 5, 4097, 16777215]),
    "compact_grid_exact": Exhaustive(k0=[0], j=[0, 13, 29], m=[0, 1, 1023, 1024, 2047, 2048], sc=[0, 1, 62, 63],
                                     zp=[0, 1, 15], d=lambda v: [v["m"] * 2 ** (v["k0"] + 125 + v["j"])]),
    "clamp_of_lt": Z3(),
    "clamp_between": Z3(),
    "mem_int_range_n": Z3(n=range(0, 6)),
    "mem_int_range": Exhaustive(x=range(-4, 9), lo=range(-4, 6), hi=range(-4, 9)),
    "mem_pairs_with": Z3(zps=SymList(range(0, 5))),
    "mem_search_candidates": Exhaustive(zc=[lambda s: s - 2, lambda s: 3, lambda s: -5, lambda s: 20],
                                        scs=lists_over([1, 2, 5], range(0, 4)), sc=range(0, 7), zp=range(-1, 17)),
    "keep_best_le": Z3(cs=SymList(range(0, 4))),
    "search_from_le": Z3(cands=SymList(range(0, 4))),
    "search_group_le_centred": Z3(c0=[-1, 0, 1, 2, 7, 8, 31, 62, 63, 64],
                                  zc=[lambda sc: 7 - sc, lambda sc: 3, lambda sc: -4, lambda sc: 19]),
}
test_lean_statement = lean_statement_test(STATEMENTS)


@pytest.fixture
def symbolic_pyref(monkeypatch):
    """pyref.pack_group_codes calls int(c) on each code; make that the identity so z3 terms flow through it."""
    monkeypatch.setattr(pyref.core, "int", lambda v: v, raising=False)
    return pyref.core


@mirrors("pack_group_codes", "unpack_group_codes", "group_code_bytes")
def test_group_code_bitstream__z3_pyref_is_lean(symbolic_pyref):
    """For 0–12 groups, pyref's bitstream functions are Lean's definitions for every code < 1024 / every byte;
    `group_code_bytes` is `q35.format.group_code_bytes_per_row` for every G ≤ 100 000."""
    for g in range(0, 100_001):
        assert LEAN.fn("group_code_bytes")(g) == group_code_bytes_per_row(g), g
    for g in range(0, 13):
        cs = [z3.BitVec(f"c{i}", W) for i in range(g)]
        ok = z3.And(True, *[z3.ULT(c, 1024) for c in cs])
        ours, lean = symbolic_pyref.pack_group_codes(cs), LEAN.fn("pack_group_codes")(cs)
        assert len(ours) == len(lean)
        prove(z3.Implies(ok, z3.And(True, *[a == b for a, b in zip(ours, lean)])), what=f"pack, G = {g}")
        bs = [z3.BitVec(f"b{j}", W) for j in range(group_code_bytes_per_row(g))]
        ok_b = z3.And(True, *[z3.ULT(b, 256) for b in bs])
        ours, lean = symbolic_pyref.unpack_group_codes(bs, g), LEAN.fn("unpack_group_codes")(bs, g)
        prove(z3.Implies(ok_b, z3.And(True, *[a == b for a, b in zip(ours, lean)])), what=f"unpack, G = {g}")


@mirrors("unpack_pack_group_codes", "pack_group_codes_length")
def test_group_code_theorems__z3_on_pyref(symbolic_pyref):
    code = LEAN.with_code(pack_group_codes=symbolic_pyref.pack_group_codes,
                          unpack_group_codes=symbolic_pyref.unpack_group_codes,
                          group_code_bytes=group_code_bytes_per_row)
    Z3(bits=W, cs=SymList(range(0, 13))).run(code.statement("unpack_pack_group_codes"))
    Z3(bits=W, cs=SymList(range(0, 13))).run(code.statement("pack_group_codes_length"))


def binary16_positive() -> np.ndarray:
    v = np.arange(1 << 15, dtype=np.uint16).view(np.float16).astype(np.float64)
    return v[np.isfinite(v) & (v > 0)]


def check_compact_grid_exact(expand=expand_compact) -> int:
    """Every positive binary16 d × sc ∈ 1..63 × zp ∈ 0..15: the binary32 scales/zeros are exactly d·sc and −zp·d·sc."""
    codes = np.array([sc | (zp << 6) for sc in range(1, 64) for zp in range(16)], dtype=np.uint16)
    sc, zp = (codes & 0x3F).astype(np.float64), (codes >> 6).astype(np.float64)
    d_all = binary16_positive()
    for i in range(0, len(d_all), 2048):
        d = d_all[i:i + 2048]
        scales, zeros = expand(d.astype(np.float16), np.broadcast_to(codes, (len(d), len(codes))))
        exact_s = d[:, None] * sc  # exact in binary64: at most 11 + 6 significant bits
        assert np.array_equal(scales.astype(np.float64), exact_s)
        assert np.array_equal(zeros.astype(np.float64), -(zp * exact_s))
    return len(d_all) * len(codes)


def f16_rep(d: float) -> tuple[int, int]:
    """(m, j) with d = m·2^(j−24), m ≤ 2048, j ≤ 29: the binary16 representation `is_f16` speaks of."""
    u, j = to_units(d, 24), 0
    while u > 2048:
        assert u % 2 == 0, d
        u, j = u // 2, j + 1
    return u, j


@mirrors("compact_scale", "compact_zero", "is_f32", "compact_grid_exact")
def test_compact_grid__binary32_exact_every_row_scale():
    assert check_compact_grid_exact() == 31743 * 1008
    is_f32, stmt = LEAN.fn("is_f32"), LEAN.statement("compact_grid_exact")
    for d in binary16_positive()[::97].tolist():
        m, j = f16_rep(d)
        assert d == m * 2.0 ** (j - 24)
        for sc, zp in ((1, 0), (63, 15), (37, 9)):
            scales, zeros = expand_compact(np.array([d], np.float16), np.array([[sc | zp << 6]], np.uint16))
            assert to_units(float(scales[0, 0]), 149) == LEAN.fn("compact_scale")(to_units(d, 149), sc)
            assert to_units(-float(zeros[0, 0]), 149) == LEAN.fn("compact_zero")(to_units(d, 149), sc, zp)
            hyp, concl = stmt(k0=0, j=j, m=m, sc=sc, zp=zp, d=to_units(d, 149))
            assert hyp and concl() is True, (d, sc, zp)
    for y in [0, 1, 3, 2**24 - 1, 2**24, 2**24 + 1, 2**24 + 2, (2**24 - 1) << 100, (2**24 - 1) << 229, 1 << 253,
              ((2**24 - 1) << 229) + (1 << 228)]:
        f = float(np.float32(y * 2.0 ** -149)) if y < 1 << 278 else math.inf
        assert is_f32(0, y) == (f == y * 2.0 ** -149), y


def instrumented_search(values, a, start, d, monkeypatch):
    """pyref.search_group's answer, the (sc, zp) grids it tried in order, and its error function on grids."""
    tried = []
    real_error = pyref.core.group_error

    def spy(vals, wts, st, z, s):
        sc = round(s / d)
        tried.append((sc, round(-z / s) if z else 0))
        return real_error(vals, wts, st, z, s)

    monkeypatch.setattr(pyref.core, "group_error", spy)
    best = pyref.search_group(values, a, start, d)
    monkeypatch.setattr(pyref.core, "group_error", real_error)

    @functools.lru_cache(maxsize=None)
    def e(grid):
        sc, zp = grid
        s = d * sc
        return real_error(values, a, start, -(zp * s), s)
    return best, tried, e


def spec_c0_zc(values, d):
    """SPEC §8 step 3, written from the SPEC: c0 and the centring zero point zc(sc)."""
    lo, hi = min(min(values), 0.0), max(max(values), 0.0)
    c0 = min(max(math.ceil((hi - lo) / 15.0 / d), 1), 63)
    return c0, (lambda sc: math.floor(8.0 - (lo + hi) / (2.0 * (d * sc))))


def search_cases():
    rng = np.random.default_rng(2024)
    for case in range(90):
        g = [16, 32, 48][case % 3]
        row = (rng.standard_normal(4 * g) * 10.0 ** rng.uniform(-3, 2)).astype(np.float32).astype(np.float64)
        row[: g] *= rng.uniform(0.01, 1.0)  # groups of different spans: many c0 values
        if case % 5 == 0:
            row[:g] += rng.uniform(-3, 3) * np.abs(row[:g]).max()  # off-centre groups: zc near 0 and 15
        a = rng.random(4 * g) * (10.0 ** rng.uniform(-2, 2))
        yield row.tolist(), a.tolist(), g


@mirrors("keep_best_le", "search_from_le", "mem_search_candidates", "clamp_between", "search_group",
          "search_candidates", "sc_candidates", "zp_candidates", "keep_best", "search_from", "search_group_le_centred")
def test_search__pyref_is_lean_search(monkeypatch):
    """pyref tries exactly Lean's candidates in Lean's order, returns Lean's `search_group` for its own errors, and
    that answer is never worse than the centred candidate (the statement, with pyref's error function)."""
    stmt = LEAN.statement("search_group_le_centred")
    steps = LEAN.with_code(clamp=pyref.clamp)
    keep, frm, mem, between = (steps.statement(t) for t in ("keep_best_le", "search_from_le",
                                                            "mem_search_candidates", "clamp_between"))
    c0_seen = set()
    for row, a, g in search_cases():
        d = pyref.compact_row_scale(row, g)
        for start in range(0, len(row), g):
            values, wts = row[start:start + g], a[start:start + g]
            best, tried, e = instrumented_search(values, wts, start, d, monkeypatch)
            c0, zc = spec_c0_zc(values, d)
            c0_seen.add(c0)
            assert tried == [tuple(c) for c in LEAN.fn("search_candidates")(zc, LEAN.fn("sc_candidates")(c0))]
            assert tuple(LEAN.fn("search_group")(e, c0, zc)) == best
            hyp, concl = stmt(e=e, c0=c0, zc=zc)
            assert hyp and concl() is True
            cands = [tuple(c) for c in tried]
            centred = (c0, pyref.clamp(zc(c0), 0, 15))
            for hyp, concl in (keep(e=e, best=cands[0], cs=cands[1:]),
                               frm(e=e, default=(c0, 0), c=centred, cands=cands),
                               mem(zc=zc, scs=LEAN.fn("sc_candidates")(c0), sc=c0, zp=centred[1]),
                               between(v=zc(c0))):
                assert hyp and concl() is True
    assert len(c0_seen) > 20


@mirrors("search_group_le_centred")
@mirror_examples
@given(w=weights(max_rows=2, max_cols=64), g=group_sizes, seed=st.integers(0, 2**32 - 1))
def test_search__fortran_never_worse_than_centred(w, g, seed):
    """The Fortran compact quantizer's grids, scored with pyref's error, are never worse than the centred one."""
    a = np.random.default_rng(seed).random(w.shape[1]).astype(np.float32)
    qt = load_bridge().quantize(w, g, scale_format="compact", importance=a)
    aa = a.astype(np.float64).tolist()
    for n, row in enumerate(w.astype(np.float64).tolist()):
        d = float(qt.row_scales[n])
        for j, start in enumerate(range(0, len(row), qt.group_size)):
            values, wts = row[start:start + qt.group_size], aa[start:start + qt.group_size]
            sc, zp = pyref.decode_group_code(int(qt.group_codes[n, j]))
            c0, zc = spec_c0_zc(values, d)
            err = lambda grid: pyref.group_error(values, wts, start, -(grid[1] * (d * grid[0])), d * grid[0])  # noqa
            centred = (c0, min(max(zc(c0), 0), 15))
            assert err((sc, zp)) <= err(centred), (n, j)
