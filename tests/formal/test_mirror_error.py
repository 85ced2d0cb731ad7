"""Mirrors of lean/Q35/Error.lean: the half-step error bound of SPEC §3.

The statements are evaluated as lean/ states them, for all integers with z3 (generated checks) and with
pyref's quantizer and dequantizer in place of Lean's definitions on an exhaustive integer grid; Hypothesis then
checks pyref's float codes against Lean's exact integer codes, and the Fortran quantizer + dequantizer against
the bound.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given

import q35.reference as pyref
from strategies import group_sizes, weights
from test_mirror_codes import grid_points
from test_mirror_common import (LEAN, Z3, lean_statement_test, load_bridge, mirror_examples, mirrors,
                                pyref_code_overrides, to_common_integers)

STATEMENTS = {
    "floor_div_two_mul": Z3(),
    "nonneg_of_mul_gt_neg": Z3(),
    "le_of_mul_lt_mul_succ": Z3(),
    "quant_error_even": Z3(),
    "quant_error_odd": Z3(),
    "quant_error_half_step": Z3(),
}
test_lean_statement = lean_statement_test(STATEMENTS)


def check_error_bound_on_pyref(points=None, lean=LEAN):
    """The three statements, evaluated with pyref's code4/code3/quantize_value/dequantize_value, at every grid
    point inside the grid (the hypotheses select them); columns 0–3 cover both lanes."""
    code = lean.with_code(**pyref_code_overrides())
    stmts = {t: code.statement(t) for t in ("quant_error_even", "quant_error_odd", "quant_error_half_step")}
    inside = 0
    for w, z, s in points or grid_points(12):
        for col in range(4):
            hyp, concl = stmts["quant_error_even" if col % 2 == 0 else "quant_error_odd"](w=w, z=z, s=s, column=col)
            if hyp:
                inside += 1
                assert concl() is True, (w, z, s, col)
        hyp, concl = stmts["quant_error_half_step"](w=w, z=z, s=s, c0=2, c1=3)
        assert not hyp or concl() is True, (w, z, s)
    assert inside > 10_000


@mirrors("quant_error_even", "quant_error_odd", "quant_error_half_step")
def test_quant_error__pyref_exhaustive_grid():
    check_error_bound_on_pyref()


@mirrors("quant_error_half_step")
@mirror_examples
@given(w=weights(max_cols=48), g=group_sizes)
def test_quant_error_half_step__pyref_vs_lean_exact(w, g):
    """pyref's float codes are Lean's exact integer codes on the same (w, z, s) wherever t is not within binary64
    noise of a tie, and pyref's reconstruction obeys the bound inside the grid."""
    qv, k = LEAN.fn("quantize_value"), w.shape[1]
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
                if Fraction(1, 10**9) < frac < 1 - Fraction(1, 10**9):
                    assert q == qv(wi, zi, si, col)
                err = abs(v - pyref.dequantize_value(q, z, s, col))
                if v <= z + 15 * s:
                    assert err <= (0.5 if col % 2 == 0 else 1.0) * s * (1 + 1e-9)


@mirrors("quant_error_half_step")
@mirror_examples
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
