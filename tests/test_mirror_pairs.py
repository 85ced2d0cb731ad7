"""Mirrors of lean/Q35/Pair.lean: the 7-bit pair code, exhaustively over its whole domain, on pyref and on the
Fortran kernels (bridge.pack_codes / bridge.unpack_codes)."""
from __future__ import annotations

import itertools

import numpy as np

import q35.reference as pyref
from test_mirror_common import load_bridge, prove, refute, z3

PAIRS = [(q4, q3) for q4 in range(16) for q3 in range(8)]  # the whole domain [0,15] x [0,7]


def _all_pairs_rows() -> np.ndarray:
    """8 rows x 256 columns: every (q4, q3) pair at every one of the 8 positions inside a 7-byte block."""
    base = [c for pair in PAIRS for c in pair]  # 128 pairs = 256 codes = 16 blocks
    rows = [base[2 * r:] + base[:2 * r] for r in range(8)]  # rotate by r pairs
    return np.array(rows, dtype=np.uint8)


def test_decode_encode_pair__exhaustive_pyref():
    for q4, q3 in PAIRS:
        c = pyref.encode_pair(q4, q3)
        assert c == q4 + 16 * q3  # Lean's encode_pair
        assert pyref.decode_pair(c) == (q4, q3)


def test_decode_encode_pair__z3_pyref():
    q4, q3 = z3.BitVecs("q4 q3", 16)
    c = pyref.encode_pair(q4, q3)  # pyref's own expression, executed on symbolic bit-vectors
    d4, d3 = pyref.decode_pair(c)
    prove(z3.Implies(z3.And(z3.ULT(q4, 16), z3.ULT(q3, 8)), z3.And(d4 == q4, d3 == q3)))
    refute(z3.Implies(z3.ULT(q4, 17), d4 == q4))  # the domain bound matters: the harness can fail


def test_decode_encode_pair__exhaustive_fortran():
    bridge = load_bridge()
    rows = _all_pairs_rows()
    packed = bridge.pack_codes(rows)
    assert np.array_equal(packed, pyref.pack_codes(rows))
    assert np.array_equal(bridge.unpack_codes(packed, rows.shape[1]), rows)


def test_encode_decode_pair__exhaustive_pyref():
    for c in range(128):
        q4, q3 = pyref.decode_pair(c)
        assert (q4, q3) == (c % 16, c // 16)  # Lean's decode_pair
        assert pyref.encode_pair(q4, q3) == c


def test_encode_decode_pair__exhaustive_fortran():
    """Every 7-bit code at every position of a block: Fortran decodes it to (c & 15, c >> 4) and re-encodes it."""
    bridge = load_bridge()
    rows = []
    for r in range(8):
        pair_codes = [(c + r) % 128 for c in range(128)]
        packed = [b for i in range(0, 128, 8) for b in pyref.pack_block(pair_codes[i:i + 8])]
        rows.append((pair_codes, packed))
    packed = np.array([p for _, p in rows], dtype=np.uint8)
    codes = bridge.unpack_codes(packed, 256)
    for (pair_codes, _), row in zip(rows, codes):
        assert [int(a) + 16 * int(b) for a, b in zip(row[0::2], row[1::2])] == pair_codes
    assert np.array_equal(bridge.pack_codes(codes), packed)


def test_encode_pair_range__exhaustive_pyref():
    assert sorted(pyref.encode_pair(q4, q3) for q4, q3 in PAIRS) == list(range(128))  # onto [0, 127], no gaps


def test_encode_pair_range__fortran_rejects_out_of_range():
    """Codes outside [0,15] x [0,7] never reach the packer (SPEC §7): pyref and bridge both refuse them."""
    bridge = load_bridge()
    for bad in ([16, 0], [0, 8], [-1, 0]):
        for impl in (pyref, bridge):
            try:
                impl.pack_codes(np.array(bad, dtype=np.int64))
            except ValueError:
                continue
            raise AssertionError(f"{impl.__name__}.pack_codes accepted {bad}")


def test_decode_pair_range__exhaustive_pyref():
    for c in range(128):
        q4, q3 = pyref.decode_pair(c)
        assert 0 <= q4 < 16 and 0 <= q3 < 8


def test_decode_pair_range__exhaustive_fortran():
    """Any byte string decodes to in-range codes in Fortran (every 7-byte block is a valid block)."""
    bridge = load_bridge()
    packed = np.arange(7 * 37, dtype=np.int64).reshape(1, -1) % 256  # all byte values, many alignments
    packed = np.vstack([np.roll(packed, r) for r in range(7)]).astype(np.uint8)
    codes = bridge.unpack_codes(packed, 16 * 37).astype(int)
    assert codes[:, 0::2].max() <= 15 and codes[:, 1::2].max() <= 7 and codes.min() >= 0
    assert np.array_equal(codes, pyref.unpack_codes(packed, 16 * 37).astype(int))


def test_encode_pair_bitwise__exhaustive():
    for q4, q3 in itertools.product(range(16), range(8)):
        assert (q4 | (q3 << 4)) == q4 + 16 * q3 == pyref.encode_pair(q4, q3)


def test_decode_pair_bitwise__exhaustive():
    for c in range(128):
        assert (c & 15, c >> 4) == (c % 16, c // 16) == pyref.decode_pair(c)
