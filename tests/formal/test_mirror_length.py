"""Mirrors of lean/Q35/Length.lean: P = 7·ceil(K/16) payload bytes per row, on pyref and on Fortran."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from q35.format import payload_bytes_per_row
from test_mirror_common import Exhaustive, LEAN, Z3, lean_statement_test, load_bridge, mirror_examples, mirrors

STATEMENTS = {
    "packed_length_eq": Z3(),
    "packed_length_minimal": Z3(),
    "packed_length_bits": Z3(),
}
test_lean_statement = lean_statement_test(STATEMENTS)
K_MAX = 100_000


@mirrors("packed_length", "packed_length_eq", "packed_length_bits")
def test_packed_length__pyref_is_lean_exhaustive():
    """`q35.format.payload_bytes_per_row` (pyref's P) is Lean's `packed_length` for every K ≤ 100 000, and the two
    statements hold for it (evaluated with pyref's function in place of Lean's)."""
    lean = LEAN.fn("packed_length")
    for k in range(0, K_MAX + 1):
        assert payload_bytes_per_row(k) == lean(k) == pyref.payload_bytes_per_row(k), k
    code = LEAN.with_code(packed_length=payload_bytes_per_row)
    Exhaustive(k=range(0, 20_000)).run(code.statement("packed_length_eq"))
    Exhaustive(k=range(0, 20_000)).run(code.statement("packed_length_bits"))
    assert pyref.PAYLOAD_BITS_PER_WEIGHT == 3.5


@mirrors("packed_length_minimal")
def test_packed_length_minimal__pyref_exhaustive():
    code = LEAN.with_code(packed_length=payload_bytes_per_row)
    Exhaustive(k=range(0, 600), m=range(0, 45)).run(code.statement("packed_length_minimal"))


@mirrors("packed_length_eq")
@mirror_examples
@given(st.integers(1, 300))
def test_packed_length_eq__fortran_and_pyref_pack_codes(k):
    bridge = load_bridge()
    p = LEAN.fn("packed_length")(k)
    codes = np.zeros((2, k), dtype=np.uint8)
    assert bridge.pack_codes(codes).shape == (2, p)
    assert pyref.pack_codes(codes).shape == (2, p)
    w = np.linspace(-1, 1, 2 * k, dtype=np.float32).reshape(2, k)
    assert bridge.quantize(w, None).packed.shape[1] == p
