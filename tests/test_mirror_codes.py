"""Mirrors of lean/Q35/Basic.lean and lean/Q35/Codes.lean: constants, clamp, code ranges, lattice codes.

z3 proves the Lean integer definitions' statements for all integers; pyref's float functions are checked
on a dense grid that covers every code value and both clamps, and the Fortran quantizer's codes are checked
on Hypothesis matrices (decoded with pyref)."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from strategies import group_sizes, weights
from test_mirror_common import lean_code3, lean_code4, load_bridge, prove, refute, z3


def z3_clamp(v, lo, hi):
    return z3.If(v < lo, lo, z3.If(v > hi, hi, v))


def z3_code4(w, z, s):
    return z3_clamp((2 * (w - z) + s) / (2 * s), 0, 15)  # z3 Int division: floor for a positive divisor


def z3_code3(w, z, s):
    return z3_clamp((w - z + s) / (2 * s), 0, 7)


# every t from -20 to 40 in steps of 1/16, plus ties, huge values and tiny ones
T_GRID = sorted({i / 16 for i in range(-320, 641)} | {k + 0.5 for k in range(-3, 40)} | {k / 2 for k in range(60)}
                | {1e300, -1e300, 1e-300, -1e-300, 14.0, 14.0000001, 15.0, 15.5, 16.0})


def test_format_constants__pyref_and_fortran():
    bridge = load_bridge()
    assert (pyref.HI4, pyref.HI3, pyref.LO4, pyref.LO3) == (15, 7, 0, 0)
    assert pyref.PAIR_BITS == pyref.BITS_EVEN + pyref.BITS_ODD
    assert pyref.HI4 + 1 == 2 ** pyref.BITS_EVEN and pyref.HI3 + 1 == 2 ** pyref.BITS_ODD
    assert 8 * pyref.BLOCK_BYTES == pyref.PAIR_BITS * pyref.PAIRS_PER_BLOCK
    assert pyref.WEIGHTS_PER_BLOCK == 2 * pyref.PAIRS_PER_BLOCK
    assert pyref.HI4 <= pyref.LATTICE_MAX and 2 * pyref.HI3 <= pyref.LATTICE_MAX
    for name, value in bridge.kernel_constants().items():
        assert value == getattr(pyref, name), name


def test_clamp_in_range__z3():
    v, lo, hi = z3.Ints("v lo hi")
    c = z3_clamp(v, lo, hi)
    prove(z3.Implies(lo <= hi, z3.And(lo <= c, c <= hi)))
    refute(z3.And(lo <= c, c <= hi))  # without lo <= hi it fails


def test_clamp_in_range__exhaustive_pyref():
    for lo in range(-3, 4):
        for hi in range(lo, 5):
            for v in range(-8, 9):
                c = pyref.clamp(v, lo, hi)
                assert lo <= c <= hi
                assert c == (lo if v < lo else hi if v > hi else v)


def test_clamp_of_mem__z3_and_pyref():
    v, lo, hi = z3.Ints("v lo hi")
    prove(z3.Implies(z3.And(lo <= v, v <= hi), z3_clamp(v, lo, hi) == v))
    assert all(pyref.clamp(v, 0, 15) == v for v in range(16))


def test_clamp_of_gt__z3_and_pyref():
    v, lo, hi = z3.Ints("v lo hi")
    prove(z3.Implies(z3.And(lo <= hi, hi < v), z3_clamp(v, lo, hi) == hi))
    assert all(pyref.clamp(v, 0, 7) == 7 for v in range(8, 40))


def test_code4_range__z3_lean_definition():
    w, z, s = z3.Ints("w z s")
    c = z3_code4(w, z, s)
    prove(z3.And(0 <= c, c <= 15))


def test_code4_range__pyref_grid():
    seen = set()
    for s in (1.0, 0.375, 2.0 ** -24, 1024.0):
        for z in (0.0, -3.5):
            for t in T_GRID:
                q = pyref.code4(z + t * s, z, s)
                assert 0 <= q <= 15
                seen.add(q)
    assert seen == set(range(16))


@given(w=weights(), g=group_sizes)
def test_code4_range__fortran(w, g):
    bridge = load_bridge()
    qt = bridge.quantize(w, g)
    codes = pyref.unpack_codes(qt.packed, w.shape[1]).astype(int)
    assert codes[:, 0::2].min() >= 0 and codes[:, 0::2].max() <= 15


def test_code3_range__z3_lean_definition():
    w, z, s = z3.Ints("w z s")
    c = z3_code3(w, z, s)
    prove(z3.And(0 <= c, c <= 7))


def test_code3_range__pyref_grid():
    seen = set()
    for s in (1.0, 0.375, 2.0 ** -24, 1024.0):
        for z in (0.0, -3.5):
            for t in T_GRID:
                q = pyref.code3(z + t * s, z, s)
                assert 0 <= q <= 7
                seen.add(q)
    assert seen == set(range(8))


@given(w=weights(), g=group_sizes)
def test_code3_range__fortran(w, g):
    bridge = load_bridge()
    qt = bridge.quantize(w, g)
    codes = pyref.unpack_codes(qt.packed, w.shape[1]).astype(int)
    assert codes[:, 1::2].min(initial=0) >= 0 and codes[:, 1::2].max(initial=0) <= 7


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(1, 1000))
def test_code4_range__lean_integer_form_is_pyref(w, z, s):
    """On exact small integers (no binary64 rounding of t) pyref's float code4/code3 equal Lean's integer ones."""
    assert pyref.code4(float(w), float(z), float(s)) == lean_code4(w, z, s)
    assert pyref.code3(float(w), float(z), float(s)) == lean_code3(w, z, s)


def test_lattice_code_even__pyref():
    for column in range(0, 64, 2):
        for code in range(16):
            assert pyref.lattice_code(code, column) == code


def test_lattice_code_odd__pyref():
    for column in range(1, 64, 2):
        for code in range(8):
            assert pyref.lattice_code(code, column) == 2 * code


def test_lattice_code_range__pyref_grid():
    for column in range(4):
        for t in T_GRID:
            L = pyref.lattice_code(pyref.quantize_value(3.0 + t * 0.25, 3.0, 0.25, column), column)
            assert 0 <= L <= pyref.LATTICE_MAX


def test_lattice_code_range__z3_lean_definition():
    w, z, s = z3.Ints("w z s")
    col = z3.Int("col")
    even = z3.And(col >= 0, col % 2 == 0)
    L = z3.If(even, z3_code4(w, z, s), 2 * z3_code3(w, z, s))
    prove(z3.And(0 <= L, L <= 15))


@given(w=weights(), g=group_sizes)
def test_lattice_code_range__fortran(w, g):
    bridge = load_bridge()
    qt = bridge.quantize(w, g)
    k = w.shape[1]
    codes = bridge.unpack_codes(qt.packed, k).astype(int)
    lattice = np.where(np.arange(k) % 2 == 0, codes, 2 * codes)
    assert lattice.min() >= 0 and lattice.max() <= pyref.LATTICE_MAX
