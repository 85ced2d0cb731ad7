"""Mirrors of lean/Q35/Length.lean: P = 7*ceil(K/16) payload bytes per row, on pyref and on Fortran."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from q35.format import payload_bytes_per_row as packed_row_bytes
from test_mirror_common import lean_packed_length, load_bridge, prove, z3

K_MAX = 100_000


def test_packed_length_eq__exhaustive_pyref():
    for k in range(0, K_MAX + 1):
        p = lean_packed_length(k)
        assert p == 7 * -(-k // 16) == pyref.payload_bytes_per_row(k)
        if k:
            assert p == packed_row_bytes(k)


def test_packed_length_eq__z3():
    k = z3.Int("k")
    # Lean: 7 * ((k + 15) / 16) = 7 * (-((-k) / 16)) for k >= 0 (z3 Int division floors for a positive divisor)
    prove(z3.Implies(k >= 0, 7 * ((k + 15) / 16) == 7 * (-((-k) / 16))))


@given(st.integers(1, 300))
def test_packed_length_eq__fortran_and_pyref_pack_codes(k):
    bridge = load_bridge()
    codes = np.zeros((2, k), dtype=np.uint8)
    assert bridge.pack_codes(codes).shape == (2, lean_packed_length(k))
    assert pyref.pack_codes(codes).shape == (2, lean_packed_length(k))
    w = np.linspace(-1, 1, 2 * k, dtype=np.float32).reshape(2, k)
    assert bridge.quantize(w, None).packed.shape[1] == lean_packed_length(k)


def test_packed_length_minimal__exhaustive():
    for k in range(0, 4000):
        p = lean_packed_length(k)
        m_min = next(m for m in range(0, k + 2) if 16 * m >= k)  # fewest whole blocks holding the row
        assert p == 7 * m_min
        for m in range(max(0, m_min - 2), m_min + 3):
            assert (k <= 16 * m) == (p <= 7 * m)


def test_packed_length_minimal__z3():
    k, m = z3.Ints("k m")
    p = 7 * ((k + 15) / 16)
    prove(z3.Implies(z3.And(k >= 0, m >= 0), (k <= 16 * m) == (p <= 7 * m)))


def test_packed_length_bits__exhaustive_pyref():
    for k in range(0, K_MAX + 1):
        p = pyref.payload_bytes_per_row(k)
        assert 7 * k <= 16 * p < 7 * k + 112 and p % 7 == 0
    assert pyref.PAYLOAD_BITS_PER_WEIGHT == 3.5


def test_packed_length_bits__z3():
    k = z3.Int("k")
    p = 7 * ((k + 15) / 16)
    prove(z3.Implies(k >= 0, z3.And(7 * k <= 16 * p, 16 * p < 7 * k + 112, p % 7 == 0)))
