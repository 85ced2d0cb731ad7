"""Mirrors of lean/Q35/Matmul.lean: the fused zero-point identity and the int32 accumulator bound (SPEC §5).

z3 proves the identities symbolically for every list length up to 8; Hypothesis checks that pyref.matmul is
exactly the fused per-group form (both computed in exact rationals) and that the Fortran fused kernel stays
within the SPEC §5 tolerance of it; numpy's int32 accumulation checks the accumulator bound at its limit."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from strategies import activations, group_sizes, weights
from test_mirror_common import load_bridge, prove, refute, z3

K_SAFE = 1_127_288


def _sym(n, tag=""):
    return [z3.Int(f"x{tag}{i}") for i in range(n)], [z3.Int(f"l{tag}{i}") for i in range(n)]


def test_fused_group_identity__z3_symbolic():
    z, s = z3.Ints("z s")
    for n in range(0, 9):
        xs, ls = _sym(n)
        lhs = sum((x * (z + s * l) for x, l in zip(xs, ls)), z3.IntVal(0))
        rhs = z * sum(xs, z3.IntVal(0)) + s * sum((x * l for x, l in zip(xs, ls)), z3.IntVal(0))
        prove(lhs == rhs)
    xs, ls = _sym(3)
    refute(sum((x * (z + s * l) for x, l in zip(xs, ls)), z3.IntVal(0))
           == s * sum((x * l for x, l in zip(xs, ls)), z3.IntVal(0)))  # forgetting the zero-point term fails


def _group_terms(qt, n):
    """Per group of row n: (z, s, [(column, L)]) as exact rationals, from the stored payload."""
    k = qt.shape[1]
    codes = pyref.unpack_codes(qt.packed[n], k).tolist()
    out = []
    for j, start in enumerate(range(0, k, qt.group_size)):
        cols = range(start, min(start + qt.group_size, k))
        out.append((Fraction(float(qt.zeros[n, j])), Fraction(float(qt.scales[n, j])),
                    [(c, pyref.lattice_code(codes[c], c)) for c in cols]))
    return out


def _fused_exact(x_row, groups):
    return sum(z * sum(Fraction(x_row[c]) for c, _ in xl) + s * sum(Fraction(x_row[c]) * L for c, L in xl)
               for z, s, xl in groups)


@given(w=weights(max_rows=3, max_cols=48), g=group_sizes, data=st.data())
def test_fused_group_identity__pyref_dequantize_value(w, g, data):
    """Per group, Σ x·dequantize_value(code) (pyref, exact) = z·Σx + s·Σx·L."""
    qt = pyref.quantize(w, g)
    x = data.draw(activations(w.shape[1], None)).astype(np.float64).tolist()
    codes = pyref.unpack_codes(qt.packed[0], w.shape[1]).tolist()
    for z, s, xl in _group_terms(qt, 0):
        direct = sum(Fraction(x[c]) * Fraction(pyref.dequantize_value(codes[c], float(z), float(s), c)) for c, _ in xl)
        assert direct == z * sum(Fraction(x[c]) for c, _ in xl) + s * sum(Fraction(x[c]) * L for c, L in xl)


@given(w=weights(max_rows=3, max_cols=64), g=group_sizes, data=st.data())
def test_fused_row_identity__pyref_exact(w, g, data):
    """Row sum of x·dequantize_value (pyref's binary64 ŵ = z + s·L, exact) over all columns = Σ_groups of the
    fused form, in exact rationals; and pyref.matmul (which rounds ŵ to binary32 first, SPEC §5) is within the
    SPEC §5 bound of it."""
    qt = pyref.quantize(w, g)
    x = data.draw(activations(w.shape[1], None))
    xr = x.astype(np.float64).tolist()
    y = pyref.matmul(x, qt).astype(np.float64)
    k = w.shape[1]
    for n in range(w.shape[0]):
        groups = _group_terms(qt, n)
        direct = sum(Fraction(xr[c]) * Fraction(pyref.dequantize_value(pyref.unpack_codes(qt.packed[n], k)[c].item(),
                                                                       float(z), float(s), c))
                     for z, s, xl in groups for c, _ in xl)
        fused = _fused_exact(xr, groups)
        assert direct == fused
        _assert_within_spec_bound(y[n], fused, groups, xr, k)


def _assert_within_spec_bound(got, fused, groups, xr, k):
    u = 2.0 ** -24
    exact = float(fused)
    mag = sum(abs(xr[c]) * (abs(float(z)) + float(s) * L) for z, s, xl in groups for c, L in xl)
    tol = ((k + 4) * u * mag + (k + 4) * 2.0 ** -126) * 1.01
    if math.isfinite(exact) and abs(exact) < 3e38:
        assert abs(got - exact) <= tol, (got, exact, tol)


@given(w=weights(max_rows=4, max_cols=64), g=group_sizes, data=st.data())
def test_fused_row_identity__fortran_kernel(w, g, data):
    """The Fortran fused kernel (z·Σx + s·Σx·L per group) is within SPEC §5's float32 bound of the exact sum."""
    bridge = load_bridge()
    qt = bridge.quantize(w, g)
    x = data.draw(activations(w.shape[1], None))
    y = bridge.matmul(x, qt).astype(np.float64)
    xr = x.astype(np.float64).tolist()
    for n in range(w.shape[0]):
        groups = _group_terms(qt, n)
        _assert_within_spec_bound(y[n], _fused_exact(xr, groups), groups, xr, w.shape[1])


def test_accumulator_bound__z3_symbolic():
    for n in range(0, 7):
        xs, ls = _sym(n, "a")
        dom = z3.And(*[z3.And(-127 <= x, x <= 127, 0 <= l, l <= 15) for x, l in zip(xs, ls)]) if n else True
        acc = sum((x * l for x, l in zip(xs, ls)), z3.IntVal(0))
        prove(z3.Implies(dom, z3.And(-127 * 15 * n <= acc, acc <= 127 * 15 * n)))
    xs, ls = _sym(2, "b")
    dom = z3.And(*[z3.And(-128 <= x, x <= 127, 0 <= l, l <= 15) for x, l in zip(xs, ls)])
    refute(z3.Implies(dom, sum(x * l for x, l in zip(xs, ls)) >= -127 * 15 * 2))  # int8's -128 exceeds it


@given(st.integers(1, 4096), st.integers(0, 2**32 - 1))
def test_accumulator_bound__int8_and_lattice_codes(k, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-127, 128, size=k)
    L = rng.integers(0, 16, size=k)
    acc = int(np.dot(x.astype(np.int64), L.astype(np.int64)))
    assert abs(acc) <= 127 * 15 * k


def test_int32_accumulator_safe__numpy_int32_at_the_limit():
    x = np.full(K_SAFE, 127, dtype=np.int32)
    L = np.full(K_SAFE, 15, dtype=np.int32)
    acc = np.add.reduce(x * L, dtype=np.int32)  # int32 accumulation, as an int8 kernel would do
    assert int(acc) == 127 * 15 * K_SAFE <= 2**31 - 1
    acc_neg = np.add.reduce(-x * L, dtype=np.int32)
    assert int(acc_neg) == -127 * 15 * K_SAFE


def test_int32_accumulator_safe__z3():
    n = z3.Int("n")
    prove(z3.Implies(z3.And(0 <= n, n <= K_SAFE), 127 * 15 * n <= 2**31 - 1))


def test_int32_bound_tight():
    assert 127 * 15 * K_SAFE <= 2**31 - 1 < 127 * 15 * (K_SAFE + 1)
    x = np.full(K_SAFE + 1, 127, dtype=np.int32)
    with np.errstate(over="ignore"):
        acc = np.add.reduce(x * np.int32(15), dtype=np.int32)
    assert int(acc) != 127 * 15 * (K_SAFE + 1)  # one more weight overflows int32
