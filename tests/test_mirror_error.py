"""Mirrors of lean/Q35/Error.lean: the half-step error bound of SPEC §3.

z3 proves the Lean integer statements for all integers; Hypothesis checks pyref's float quantizer against
Lean's exact integer codes, and the Fortran quantizer + dequantizer against the bound."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import q35.reference as pyref
from strategies import group_sizes, weights
from test_mirror_common import (lean_dequantize_value, lean_quantize_value, load_bridge, prove, refute,
                                to_common_integers, z3)
from test_mirror_codes import z3_code3, z3_code4


def test_floor_div_two_mul__z3():
    n, s = z3.Ints("n s")
    q = n / (2 * s)
    prove(z3.Implies(s > 0, z3.And(2 * (s * q) <= n, n < 2 * (s * q) + 2 * s)))


@given(st.integers(-10**6, 10**6), st.integers(1, 10**4))
def test_floor_div_two_mul__python_floor(n, s):
    q = n // (2 * s)
    assert 2 * (s * q) <= n < 2 * (s * q) + 2 * s


def test_nonneg_of_mul_gt_neg__z3():
    s, q = z3.Ints("s q")
    prove(z3.Implies(z3.And(s > 0, -s < s * q), q >= 0))
    refute(z3.Implies(-s < s * q, q >= 0))


def test_le_of_mul_lt_mul_succ__z3():
    s, q, k = z3.Ints("s q k")
    prove(z3.Implies(z3.And(s > 0, s * q < s * (k + 1)), q <= k))


def _in_grid():
    w, z, s = z3.Ints("w z s")
    return w, z, s, z3.And(s > 0, z <= w, w <= z + 15 * s)


def test_quant_error_even__z3():
    w, z, s, hyp = _in_grid()
    e = w - (z + s * z3_code4(w, z, s))
    prove(z3.Implies(hyp, z3.And(-s <= 2 * e, 2 * e <= s)))
    refute(z3.Implies(z3.And(s > 0, z <= w), z3.And(-s <= 2 * e, 2 * e <= s)))  # outside the grid it fails


def test_quant_error_odd__z3():
    w, z, s, hyp = _in_grid()
    e = w - (z + s * (2 * z3_code3(w, z, s)))
    prove(z3.Implies(hyp, z3.And(-s <= e, e <= s)))
    refute(z3.Implies(hyp, z3.And(-s <= 2 * e, 2 * e <= s)))  # the odd lane's error is not within s/2


def test_quant_error_half_step__z3():
    w, z, s, hyp = _in_grid()
    e4 = w - (z + s * z3_code4(w, z, s))
    e3 = w - (z + s * (2 * z3_code3(w, z, s)))
    prove(z3.Implies(hyp, z3.And(-s <= 2 * e4, 2 * e4 <= s, -s <= e3, e3 <= s)))


@given(st.integers(0, 30 * 64), st.integers(-500, 500), st.integers(1, 64), st.integers(0, 3))
def test_quant_error_half_step__lean_integers(a2, z, s, column):
    """The transcribed Lean definitions on concrete integers (w = z + a with 0 <= a <= 15 s)."""
    w = z + a2 * s // 128
    assume(w <= z + 15 * s)
    e = w - lean_dequantize_value(lean_quantize_value(w, z, s, column), z, s, column)
    assert (-s <= 2 * e <= s) if column % 2 == 0 else (-s <= e <= s)


@given(w=weights(max_cols=48), g=group_sizes)
def test_quant_error_half_step__pyref_vs_lean_exact(w, g):
    """pyref's float codes are Lean's exact integer codes on the same (w, z, s) (away from binary64 ties), and
    pyref's reconstruction obeys the bound."""
    k = w.shape[1]
    gs = g or k
    for row in w.astype(np.float64).tolist()[:2]:
        for start in range(0, k, gs):
            values = row[start:start + gs]
            z, s = pyref.group_params(values)
            for i, v in enumerate(values):
                col = start + i
                q = pyref.quantize_value(v, z, s, col)
                wi, zi, si = to_common_integers(v, z, s)
                t = (Fraction(v) - Fraction(z)) / Fraction(s)
                half = t + Fraction(1, 2) if col % 2 == 0 else t / 2 + Fraction(1, 2)
                frac = half - (half.numerator // half.denominator)
                if Fraction(1, 10**9) < frac < 1 - Fraction(1, 10**9):  # not within binary64 noise of a tie
                    assert q == lean_quantize_value(wi, zi, si, col)
                err = abs(v - pyref.dequantize_value(q, z, s, col))
                if v <= z + 15 * s:
                    assert err <= (0.5 if col % 2 == 0 else 1.0) * s * (1 + 1e-9)


@given(w=weights(), g=group_sizes)
def test_quant_error_half_step__fortran(w, g):
    bridge = load_bridge()
    qt = bridge.quantize(w, g)
    k = w.shape[1]
    grp = np.arange(k) // qt.group_size
    s = qt.scales.astype(np.float64)[:, grp]
    z = qt.zeros.astype(np.float64)[:, grp]
    codes = bridge.unpack_codes(qt.packed, k).astype(np.float64)
    lattice = np.where(np.arange(k) % 2 == 0, codes, 2 * codes)
    w_hat = z + s * lattice
    assert np.array_equal(bridge.dequantize(qt), w_hat.astype(np.float32))
    inside = w.astype(np.float64) <= z + 15 * s
    bound = np.where(np.arange(k) % 2 == 0, 0.5, 1.0) * s * (1 + 1e-9)
    err = np.abs(w.astype(np.float64) - w_hat)
    assert (err[inside] <= bound[inside]).all()
