"""Mirrors of lean/Q35/Pair.lean: the 7-bit pair code, exhaustively over its whole domain, on pyref (its own
bit-level functions, evaluated also on z3 bit-vectors) and on the Fortran kernels (pack_codes/unpack_codes)."""
from __future__ import annotations

import numpy as np

import q35.reference as pyref
from test_mirror_common import (Exhaustive, LEAN, check_statements, lean_statement_test, load_bridge, mirrors, prove,
                                refute, z3)

STATEMENTS = {
    "decode_encode_pair": Exhaustive(q4=range(0, 20), q3=range(0, 12)),
    "encode_decode_pair": Exhaustive(c=range(0, 140)),
    "encode_pair_range": Exhaustive(q4=range(0, 20), q3=range(0, 12)),
    "decode_pair_range": Exhaustive(c=range(0, 140)),
    "encode_pair_bitwise": Exhaustive(),
    "decode_pair_bitwise": Exhaustive(),
}
test_lean_statement = lean_statement_test(STATEMENTS)

PAIRS = [(q4, q3) for q4 in range(16) for q3 in range(8)]  # the whole domain [0,15] x [0,7]
PYREF = dict(encode_pair=pyref.encode_pair, decode_pair=pyref.decode_pair)


def _all_pairs_rows() -> np.ndarray:
    """8 rows x 256 columns: every (q4, q3) pair at every one of the 8 positions inside a 7-byte block."""
    base = [c for pair in PAIRS for c in pair]  # 128 pairs = 256 codes = 16 blocks
    return np.array([base[2 * r:] + base[:2 * r] for r in range(8)], dtype=np.uint8)


@mirrors("encode_pair", "decode_pair", "encode_pair_bitwise", "decode_pair_bitwise")
def test_pair_code__pyref_is_lean_exhaustive():
    """pyref's bit expressions are Lean's arithmetic definitions (for q3 and c far beyond the codes' range; `|` and
    `+` agree exactly when the low nibble q4 < 16 does not overlap `q3 << 4`)."""
    for q4 in range(0, 16):
        for q3 in range(0, 64):
            assert pyref.encode_pair(q4, q3) == LEAN.fn("encode_pair")(q4, q3), (q4, q3)
    assert pyref.encode_pair(16, 1) != LEAN.fn("encode_pair")(16, 1)  # and not beyond: the harness can fail
    for c in range(0, 2048):
        assert pyref.decode_pair(c) == tuple(LEAN.fn("decode_pair")(c)), c


@mirrors("decode_encode_pair", "encode_decode_pair", "encode_pair_range", "decode_pair_range")
def test_pair_theorems__on_pyref_exhaustive():
    """The four statements, evaluated with pyref's encode_pair/decode_pair in place of Lean's."""
    check_statements(LEAN.with_code(**PYREF), {
        "decode_encode_pair": Exhaustive(q4=range(0, 20), q3=range(0, 12)),
        "encode_decode_pair": Exhaustive(c=range(0, 200)),
        "encode_pair_range": Exhaustive(q4=range(0, 20), q3=range(0, 12)),
        "decode_pair_range": Exhaustive(c=range(0, 200))})
    assert sorted(pyref.encode_pair(q4, q3) for q4, q3 in PAIRS) == list(range(128))  # onto [0, 127], no gaps


@mirrors("decode_encode_pair")
def test_decode_encode_pair__z3_pyref_bitvectors():
    q4, q3 = z3.BitVecs("q4 q3", 16)
    d4, d3 = pyref.decode_pair(pyref.encode_pair(q4, q3))  # pyref's own expressions on symbolic bit-vectors
    prove(z3.Implies(z3.And(z3.ULT(q4, 16), z3.ULT(q3, 8)), z3.And(d4 == q4, d3 == q3)))
    refute(z3.Implies(z3.ULT(q4, 17), d4 == q4))  # the domain bound matters: the harness can fail


@mirrors("decode_encode_pair", "encode_pair_range")
def test_decode_encode_pair__exhaustive_fortran():
    bridge = load_bridge()
    rows = _all_pairs_rows()
    packed = bridge.pack_codes(rows)
    assert np.array_equal(packed, pyref.pack_codes(rows))
    assert np.array_equal(bridge.unpack_codes(packed, rows.shape[1]), rows)


@mirrors("encode_decode_pair", "decode_pair_range")
def test_encode_decode_pair__exhaustive_fortran():
    """Every 7-bit code at every position of a block: Fortran decodes it to Lean's decode_pair, in range, and
    re-encodes it."""
    bridge = load_bridge()
    rows = []
    for r in range(8):
        pair_codes = [(c + r) % 128 for c in range(128)]
        rows.append((pair_codes, [b for i in range(0, 128, 8) for b in pyref.pack_block(pair_codes[i:i + 8])]))
    packed = np.array([p for _, p in rows], dtype=np.uint8)
    codes = bridge.unpack_codes(packed, 256).astype(int)
    for (pair_codes, _), row in zip(rows, codes):
        assert [tuple(LEAN.fn("decode_pair")(c)) for c in pair_codes] == list(zip(row[0::2], row[1::2]))
    assert codes[:, 0::2].max() <= 15 and codes[:, 1::2].max() <= 7 and codes.min() >= 0
    assert np.array_equal(bridge.pack_codes(codes), packed)


@mirrors("encode_pair_range")
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
