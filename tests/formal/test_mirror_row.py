"""Mirrors of lean/Q35/Row.lean: pairs from columns, zero padding, pack_row/unpack_row and their lengths.

pyref's own `pack_row`/`unpack_row` run on z3 bit-vectors (192-bit words standing for Python ints; no value of a
row of at most 48 codes reaches 2^168, so nothing wraps and `>>` is the logical shift): z3 proves for every
row of up to 64 codes that pyref's block loop computes exactly Lean's `pack_row`, and that the round-trip,
padding and length statements hold with pyref's functions in place of Lean's. Concrete rows check the pairs
and `check_codes`; Hypothesis checks the Fortran packer against Lean's `pack_row`.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import q35.reference as pyref
from q35.format.checks import check_codes
from strategies import codes as code_matrices
from test_mirror_common import (Exhaustive, LEAN, SymList, Z3, lean_statement_test, lists_over, load_bridge,
                                mirror_examples, mirrors, prove, z3)

W = 192
STATEMENTS = {
    "row_pairs_code_at": Exhaustive(l=lists_over(range(4), range(0, 6)), i=range(0, 5)),
    "row_pairs_length": Z3(l=SymList(range(0, 12))),
    "pad_row_length": Z3(cs=SymList(range(0, 40))),
    "pack_row_length": Z3(bits=W, cs=SymList(range(0, 40))),
    "codes_ok_replicate": Exhaustive(n=range(0, 40)),
    "codes_ok_append_zeros": Z3(l=SymList(range(0, 7)), n=range(0, 5)),
    "row_pairs_lt": Z3(l=SymList(range(0, 9))),
    "row_codes_row_pairs": Z3(l=SymList(range(0, 9))),
    "take_length_append": Z3(l=SymList(range(0, 6)), r=SymList(range(0, 4))),
    "take_length_self": Z3(l=SymList(range(0, 8))),
    "unpack_pack_row_take": Z3(bits=W, cs=SymList([0, 1, 16, 17]), n=[0, 5, 17, 32]),
    "unpack_pack_row": Z3(bits=W, cs=SymList([0, 1, 2, 3, 15, 16, 17])),
    "unpack_pack_row_padding": Z3(bits=W, cs=SymList([0, 1, 2, 3, 15, 16, 17])),
}
test_lean_statement = lean_statement_test(STATEMENTS)
ROW_LENGTHS = list(range(0, 18)) + [31, 32, 33, 47, 48]


@pytest.fixture
def symbolic_pyref(monkeypatch):
    """pyref.pack_block calls int(c) on each code; make that the identity so z3 terms flow through it."""
    monkeypatch.setattr(pyref.core, "int", lambda v: v, raising=False)
    return pyref.core


def _codes(k: int):
    cs = [z3.BitVec(f"c{i}", W) for i in range(k)]
    return cs, z3.And(True, *[z3.ULT(c, 16 if i % 2 == 0 else 8) for i, c in enumerate(cs)])


@mirrors("pack_row", "pad_row", "row_pairs")
def test_pack_row__z3_pyref_block_loop_is_lean(symbolic_pyref):
    """For every row of 0–17, 31–33, 47 and 48 valid codes, pyref's pack_row (pad, pair, 8 pairs → 7 bytes per
    block) outputs exactly Lean's `pack_row` (the bytes of Σ pair_i·128^i)."""
    for k in ROW_LENGTHS:
        cs, ok = _codes(k)
        ours, lean = symbolic_pyref.pack_row(cs), LEAN.fn("pack_row")(cs)
        assert len(ours) == len(lean) == LEAN.fn("packed_length")(k)
        prove(z3.Implies(ok, z3.And(True, *[a == b for a, b in zip(ours, lean)])), what=f"pack_row, K = {k}")


@mirrors("unpack_row", "codes_ok", "unpack_pack_row", "unpack_pack_row_take", "unpack_pack_row_padding",
          "pack_row_length")
def test_row_theorems__z3_on_pyref(symbolic_pyref):
    """The round trips, padding and length, as lean/ states them, with pyref's pack_row/unpack_row in place of
    Lean's, for every row of 0–5, 15–17 and 31–33 codes (and n up to 48 for the take form)."""
    code = LEAN.with_code(pack_row=symbolic_pyref.pack_row, unpack_row=symbolic_pyref.unpack_row)
    rows = SymList([0, 1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33])
    Z3(bits=W, cs=rows).run(code.statement("unpack_pack_row"))
    Z3(bits=W, cs=rows).run(code.statement("unpack_pack_row_padding"))
    Z3(bits=W, cs=rows).run(code.statement("pack_row_length"))
    take = code.statement("unpack_pack_row_take")
    Z3(bits=W, cs=SymList([1, 15, 16, 17, 33]), n=[0, 1, 14, 16, 17, 32, 48]).run(take)


def pyref_pairs(cs: list[int]) -> list[int]:
    """The pair codes pyref.pack_row wrote, read back block by block with pyref.unpack_block."""
    row = pyref.pack_row(cs)
    return [c for b in range(0, len(row), 7) for c in pyref.unpack_block(row[b:b + 7])]


@mirrors("row_codes", "row_pairs", "pad_row", "code_at", "row_pairs_code_at", "row_pairs_length", "pad_row_length",
          "row_pairs_lt", "row_codes_row_pairs")
def test_row_pairs__pyref_pairs_from_columns():
    """Every row over {0, 1, 6, 7} of up to 6 codes and sampled longer ones: the pairs pyref writes are Lean's
    `row_pairs (pad_row cs)`; pair i holds columns 2i and 2i+1 (zero past the end); the pair statements hold."""
    rows = lists_over([0, 1, 6, 7], range(0, 7))
    rng = np.random.default_rng(7)
    rows += [[int(v) for v in rng.integers(0, 1 << 16, k) % np.where(np.arange(k) % 2 == 0, 16, 8)]
             for k in range(7, 70, 3) for _ in range(3)]
    code_at, row_pairs, pad_row = LEAN.fn("code_at"), LEAN.fn("row_pairs"), LEAN.fn("pad_row")
    stmts = {t: LEAN.statement(t) for t in ("row_pairs_code_at", "row_pairs_length", "pad_row_length",
                                            "row_pairs_lt", "row_codes_row_pairs")}
    for cs in rows:
        pairs = pyref_pairs(cs)
        assert pairs == row_pairs(pad_row(cs)), cs
        assert LEAN.fn("row_codes")(pairs) == [q for c in pairs for q in pyref.decode_pair(c)]
        for i in range(len(pairs) + 2):
            assert code_at(pairs, i) == pyref.encode_pair(code_at(cs, 2 * i), code_at(cs, 2 * i + 1)), (cs, i)
            assert stmts["row_pairs_code_at"](l=cs, i=i)[1]() is True
        for t, values in (("row_pairs_length", dict(l=cs)), ("pad_row_length", dict(cs=cs)),
                          ("row_pairs_lt", dict(l=cs)), ("row_codes_row_pairs", dict(l=pad_row(cs)))):
            hyp, concl = stmts[t](**values)
            assert hyp and concl() is True, (t, cs)


@mirrors("codes_ok", "codes_ok_replicate", "codes_ok_append_zeros")
def test_codes_ok__is_check_codes():
    """`q35.format.checks.check_codes` accepts a row exactly when Lean's `codes_ok` holds (every row over
    {0, 7, 8, 15, 16} of 1–6 codes), and zero padding keeps accepted rows accepted."""
    codes_ok, stmt = LEAN.fn("codes_ok"), LEAN.statement("codes_ok_append_zeros")
    for cs in lists_over([0, 7, 8, 15, 16], range(1, 7)):
        try:
            check_codes(np.array(cs, dtype=np.int64))
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == codes_ok(cs), cs
        hyp, concl = stmt(l=cs, n=len(cs) % 5 + 1)
        assert not hyp or concl() is True
    Exhaustive(n=range(0, 40)).run(LEAN.statement("codes_ok_replicate"))


@mirrors("pack_row", "pack_row_length", "unpack_pack_row")
@mirror_examples
@given(code_matrices(max_rows=3, max_cols=80))
def test_pack_row__fortran_is_lean(codes):
    """The Fortran packer writes Lean's `pack_row` bytes for every row, and its unpacker gives the row back."""
    bridge = load_bridge()
    packed = bridge.pack_codes(codes)
    for row, data in zip(codes.tolist(), packed.tolist()):
        assert data == LEAN.fn("pack_row")(row)
        assert LEAN.fn("unpack_row")(data, len(row)) == row
    assert np.array_equal(bridge.unpack_codes(packed, codes.shape[1]), codes)
