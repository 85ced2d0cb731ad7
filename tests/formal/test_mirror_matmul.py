"""Mirrors of lean/Q35/Matmul.lean: the fused zero-point identity and the int32 accumulator bound (SPEC §5).

Lean's `row_dot`/`group_dot` (the dot product `pyref.matmul` computes before rounding) and `fused_row_dot` (the
kernels' per-group form) are evaluated from the Lean text on pyref's and the Fortran kernels' quantized rows in
exact integer units; pyref's exact sum must be Lean's `row_dot`, the theorem must hold on those rows, and
pyref.matmul / the Fortran kernel must be within SPEC §5's float32 bound of it."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from strategies import activations, group_sizes, weights
from test_mirror_common import (Exhaustive, LEAN, SymList, Z3, lean_statement_test, load_bridge, mirror_examples,
                                mirrors, to_units)

STATEMENTS = {
    "fused_group_identity": Z3(xl=SymList(range(0, 7))),
    "fused_row_identity": Exhaustive(gs=lambda _: [
        [], [{"zero": 3, "scale": 2, "xl": [(1, 2), (-5, 15)]}],
        [{"zero": -7, "scale": 5, "xl": [(4, 0)]}, {"zero": 0, "scale": 1, "xl": []},
         {"zero": 11, "scale": 3, "xl": [(-2, 14), (9, 7), (1, 1)]}]]),
    "accumulator_bound": Z3(xl=SymList(range(0, 7))),
    "int32_accumulator_safe": Z3(xl=SymList(range(0, 5))),
    "int32_bound_tight": Exhaustive(),
}
test_lean_statement = lean_statement_test(STATEMENTS)
K_SAFE = 1_127_288
EX, EW = 149 + 24, 24  # x is binary32 (multiples of 2^-149, and scaled below), z and s binary16 (2^-24)


def row_terms(qt, x_row: list[float], n: int) -> list[dict]:
    """Lean `GroupTerms` of row n: zero and scale in units 2^-24, (x, L) pairs with x in units 2^-173."""
    k = qt.shape[1]
    codes = pyref.unpack_codes(qt.packed[n], k).tolist()
    out = []
    for j, start in enumerate(range(0, k, qt.group_size)):
        cols = range(start, min(start + qt.group_size, k))
        out.append({"zero": to_units(float(qt.zeros[n, j]), EW), "scale": to_units(float(qt.scales[n, j]), EW),
                    "xl": [(to_units(x_row[c], EX), pyref.lattice_code(codes[c], c)) for c in cols]})
    return out


def exact(lean_value: int) -> Fraction:
    return Fraction(lean_value, 1 << (EX + EW))


def assert_within_spec_bound(got: float, exact_value: Fraction, terms: list[dict], k: int) -> None:
    u = 2.0 ** -24
    mag = sum(abs(x) * (abs(g["zero"]) + g["scale"] * L) for g in terms for x, L in g["xl"])
    tol = ((k + 4) * u * float(exact(mag)) + (k + 4) * 2.0 ** -126) * 1.01
    e = float(exact_value)
    if math.isfinite(e) and abs(e) < 3e38:
        assert abs(got - e) <= tol, (got, e, tol)


@mirrors("group_dot", "row_dot", "fused_group_identity", "fused_row_identity")
@mirror_examples
@given(w=weights(max_rows=3, max_cols=64), g=group_sizes, data=st.data())
def test_fused_row_identity__pyref(w, g, data):
    """pyref's exact Σ x·dequantize_value is Lean's `row_dot`; the identity holds on these rows (Lean's statement);
    pyref.matmul (ŵ rounded to binary32 first, SPEC §5) is within the SPEC §5 bound of it."""
    qt = pyref.quantize(w, g)
    x = data.draw(activations(w.shape[1], None))
    xr = x.astype(np.float64).tolist()
    y = pyref.matmul(x, qt).astype(np.float64)
    k = w.shape[1]
    group_stmt, row_stmt = LEAN.statement("fused_group_identity"), LEAN.statement("fused_row_identity")
    for n in range(w.shape[0]):
        terms = row_terms(qt, xr, n)
        codes = pyref.unpack_codes(qt.packed[n], k).tolist()
        direct = sum(Fraction(xr[c]) * Fraction(pyref.dequantize_value(codes[c], float(qt.zeros[n, c // qt.group_size]),
                                                                       float(qt.scales[n, c // qt.group_size]), c))
                     for c in range(k))
        assert exact(LEAN.fn("row_dot")(terms)) == direct
        for t in terms:
            hyp, concl = group_stmt(z=t["zero"], s=t["scale"], xl=t["xl"])
            assert hyp and concl() is True
        assert row_stmt(gs=terms)[1]() is True
        assert_within_spec_bound(y[n], direct, terms, k)


@mirrors("fused_row_identity")
@mirror_examples
@given(w=weights(max_rows=4, max_cols=64), g=group_sizes, data=st.data())
def test_fused_row_identity__fortran_kernel(w, g, data):
    """The Fortran fused kernel is within SPEC §5's float32 bound of Lean's `fused_row_dot` of its rows."""
    bridge = load_bridge()
    qt = bridge.quantize(w, g)
    x = data.draw(activations(w.shape[1], None))
    y = bridge.matmul(x, qt).astype(np.float64)
    xr = x.astype(np.float64).tolist()
    for n in range(w.shape[0]):
        terms = row_terms(qt, xr, n)
        assert_within_spec_bound(y[n], exact(LEAN.fn("fused_row_dot")(terms)), terms, w.shape[1])


@mirrors("accumulator_bound", "int32_accumulator_safe")
@mirror_examples
@given(w=weights(max_rows=2, max_cols=300), g=group_sizes, seed=st.integers(0, 2**32 - 1))
def test_accumulator_bound__quantized_lattice_codes(w, g, seed):
    """Both statements hold for int8 activations and the lattice codes of real (Fortran-)quantized rows."""
    qt = load_bridge().quantize(w, g)
    k = w.shape[1]
    codes = pyref.unpack_codes(qt.packed, k)
    x = np.random.default_rng(seed).integers(-127, 128, size=k).tolist()
    for row in codes.tolist():
        xl = [(x[c], pyref.lattice_code(row[c], c)) for c in range(k)]
        for theorem in ("accumulator_bound", "int32_accumulator_safe"):
            hyp, concl = LEAN.statement(theorem)(xl=xl)
            assert hyp and concl() is True, theorem


@mirrors("int32_accumulator_safe")
def test_int32_accumulator_safe__numpy_int32_arithmetic_only():
    """At the limit K = 1 127 288 with the extreme int8 and lattice values, int32 accumulation (numpy, as an int8
    kernel would do it) is exact; one more weight overflows. Arithmetic only: no project kernel accumulates in
    int32 yet."""
    x = np.full(K_SAFE, 127, dtype=np.int32)
    L = np.full(K_SAFE, 15, dtype=np.int32)
    assert int(np.add.reduce(x * L, dtype=np.int32)) == 127 * 15 * K_SAFE <= 2**31 - 1
    assert int(np.add.reduce(-x * L, dtype=np.int32)) == -127 * 15 * K_SAFE
    with np.errstate(over="ignore"):
        over = np.add.reduce(np.full(K_SAFE + 1, 127 * 15, dtype=np.int32), dtype=np.int32)
    assert int(over) != 127 * 15 * (K_SAFE + 1)
