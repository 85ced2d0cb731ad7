"""Mirrors of lean/Q35/Basic.lean and lean/Q35/Codes.lean: constants, clamp, the two lanes' codes, the lattice.

The Lean definitions are compared with pyref's functions on exhaustive integer domains that include every tie
`t = k + 1/2` (pyref computes in binary64; on these domains every step is exact, so pyref must equal Lean's
integer definitions exactly), the statements are evaluated with pyref's functions in place of Lean's, and the
Fortran quantizer's codes are checked on Hypothesis matrices.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given

import q35.reference as pyref
from strategies import group_sizes, weights
from test_mirror_common import (Exhaustive, LEAN, Z3, lean_statement_test, load_bridge, mirror_examples, mirrors,
                                pyref_code_overrides)

STATEMENTS = {
    "format_constants": Exhaustive(),
    "clamp_in_range": Z3(),
    "clamp_of_mem": Z3(),
    "clamp_of_gt": Z3(),
    "code4_range": Z3(),
    "code3_range": Z3(),
    "lattice_code_even": Z3(),
    "lattice_code_odd": Z3(),
    "lattice_code_range": Z3(),
}
test_lean_statement = lean_statement_test(STATEMENTS)

CONSTANTS = ("LO4", "HI4", "LO3", "HI3", "BITS_EVEN", "BITS_ODD", "PAIR_BITS", "PAIRS_PER_BLOCK", "BLOCK_BYTES",
             "WEIGHTS_PER_BLOCK", "LATTICE_MAX")


def grid_points(s_max: int = 16, z_range=range(-6, 7)):
    """(w, z, s) with t = (w - z)/s covering [-2, 17] in steps of 1/s: every code, both clamps, every tie."""
    return [(w, z, s) for s in range(1, s_max + 1) for z in z_range for w in range(z - 2 * s, z + 17 * s + 1)]


@mirrors("LO3", "PAIR_BITS", "BLOCK_BYTES", "LATTICE_MAX", "format_constants", "LO4")
def test_format_constants__lean_is_pyref_and_fortran():
    bridge = load_bridge()
    for name in CONSTANTS:
        assert LEAN.fn(name)() == getattr(pyref, name), name
    for name, value in bridge.kernel_constants().items():
        assert value == getattr(pyref, name), name
        if name in CONSTANTS:
            assert value == LEAN.fn(name)(), name


def check_clamp(code=None):
    """Lean's `clamp` is pyref's, and the clamp theorems hold for pyref's clamp (exhaustive, |v|, |lo|, |hi| ≤ 8)."""
    code = code or LEAN.with_code(clamp=pyref.clamp)
    for lo in range(-4, 5):
        for hi in range(-4, 6):
            for v in range(-8, 9):
                assert pyref.clamp(v, lo, hi) == LEAN.fn("clamp")(v, lo, hi), (v, lo, hi)
    dom = dict(v=range(-8, 9), lo=range(-4, 5), hi=range(-4, 6))
    for theorem in ("clamp_in_range", "clamp_of_mem", "clamp_of_gt", "clamp_of_lt"):
        Exhaustive(**dom).run(code.statement(theorem))


@mirrors("clamp", "clamp_in_range", "clamp_of_mem", "clamp_of_gt", "clamp_of_lt")
def test_clamp__pyref_is_lean_exhaustive():
    check_clamp()


def check_codes_match_lean(points=None, lean=LEAN):
    """pyref.code4/code3/quantize_value equal Lean's integer definitions at every point, ties included (t = k + 1/2
    on even lanes, t/2 = k + 1/2 on odd lanes); also at the same points scaled by 2^-20 and 2^12 (t unchanged)."""
    code4, code3, qv = lean.fn("code4"), lean.fn("code3"), lean.fn("quantize_value")
    ties = 0
    for w, z, s in points or grid_points():
        for scale in (1.0, 2.0 ** -20, 2.0 ** 12):
            wf, zf, sf = w * scale, z * scale, s * scale
            assert pyref.code4(wf, zf, sf) == code4(w, z, s), ("code4", w, z, s, scale)
            assert pyref.code3(wf, zf, sf) == code3(w, z, s), ("code3", w, z, s, scale)
            for col in (0, 1):
                assert pyref.quantize_value(wf, zf, sf, col) == qv(w, z, s, col), ("quantize_value", w, z, s, col)
        ties += (2 * (w - z)) % (2 * s) == s
    assert ties > 100  # the domain really contains ties


@mirrors("code4", "code3", "quantize_value", "code4_range", "code3_range")
def test_codes__pyref_is_lean_exhaustive_with_ties():
    check_codes_match_lean()
    code = LEAN.with_code(**pyref_code_overrides())
    pts = grid_points(8)
    for theorem in ("code4_range", "code3_range"):
        stmt = code.statement(theorem)
        for w, z, s in pts:
            hyp, concl = stmt(w=w, z=z, s=s)
            assert hyp and concl() is True, (theorem, w, z, s)


@mirrors("dequantize_value", "lattice_code", "lattice_code_even", "lattice_code_odd", "lattice_code_range")
def test_lattice_code__pyref_is_lean_exhaustive():
    for column in range(64):
        for code in range(-2, 18):
            assert pyref.lattice_code(code, column) == LEAN.fn("lattice_code")(code, column), (code, column)
            for z, s in ((0, 1), (-7, 3), (5, 12)):
                assert pyref.dequantize_value(code, float(z), float(s), column) == \
                    LEAN.fn("dequantize_value")(code, z, s, column), (code, z, s, column)
    code = LEAN.with_code(**pyref_code_overrides())
    Exhaustive(code=range(0, 16), column=range(0, 8)).run(code.statement("lattice_code_even"))
    Exhaustive(code=range(0, 8), column=range(0, 8)).run(code.statement("lattice_code_odd"))
    stmt = code.statement("lattice_code_range")
    for w, z, s in grid_points(6):
        for column in range(4):
            hyp, concl = stmt(w=w, z=z, s=s, column=column)
            assert concl() is True, (w, z, s, column)


@mirrors("code4_range", "code3_range", "lattice_code_range")
@mirror_examples
@given(w=weights(), g=group_sizes)
def test_codes__fortran_in_range(w, g):
    bridge = load_bridge()
    qt = bridge.quantize(w, g)
    k = w.shape[1]
    codes = bridge.unpack_codes(qt.packed, k).astype(int)
    assert codes[:, 0::2].min() >= 0 and codes[:, 0::2].max() <= pyref.HI4
    assert codes[:, 1::2].min(initial=0) >= 0 and codes[:, 1::2].max(initial=0) <= pyref.HI3
    lattice = np.where(np.arange(k) % 2 == 0, codes, 2 * codes)
    assert lattice.min() >= 0 and lattice.max() <= LEAN.fn("LATTICE_MAX")()
