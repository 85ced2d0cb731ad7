"""Mirrors of lean/Q35/Block.lean: 8 pair codes <-> 7 bytes.

pyref's own `pack_block`/`unpack_block` run on z3 bit-vectors (64-bit words standing for Python's unbounded
ints: every value stays below 2^56, so nothing wraps and `>>` is the logical shift). z3 proves over all 2^56
inputs that they compute exactly Lean's `to_digits`/`from_digits` definitions and that the Lean round-trip and
length statements hold with pyref's functions in place of Lean's. Hypothesis checks that the Fortran kernels
produce pyref's bytes.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from test_mirror_common import (LEAN, SymList, Z3, lean_statement_test, load_bridge, mirror_examples, mirrors, prove,
                                refute, z3)

STATEMENTS = {
    "to_digits_length": Z3(b=range(1, 5), n=range(0, 9)),
    "pack_block_length": Z3(bits=64, cs=SymList(range(0, 12))),
    "unpack_block_length": Z3(bits=64, bs=SymList(range(0, 12))),
    "from_digits_lt_128": Z3(bits=64, ds=SymList(range(0, 9))),
    "from_digits_lt_256": Z3(bits=72, ds=SymList(range(0, 8))),
    "to_digits_from_digits_128": Z3(bits=64, ds=SymList(range(0, 9))),
    "to_digits_from_digits_256": Z3(bits=64, ds=SymList(range(0, 8))),
    "from_digits_to_digits_256": Z3(bits=72, n=range(0, 8)),
    "from_digits_to_digits_128": Z3(bits=72, n=range(0, 9)),
    "unpack_pack_block": Z3(bits=64, cs=SymList(range(0, 10))),
    "pack_unpack_block": Z3(bits=64, bs=SymList(range(0, 9))),
}
test_lean_statement = lean_statement_test(STATEMENTS)
W = 64  # word size standing for Python ints (values < 2^56)


@pytest.fixture
def symbolic_pyref(monkeypatch):
    """pyref.pack_block calls int(c) on each code; make that the identity so z3 terms flow through it."""
    monkeypatch.setattr(pyref.core, "int", lambda v: v, raising=False)
    return pyref.core


def _words(name, n, bound):
    xs = [z3.BitVec(f"{name}{i}", W) for i in range(n)]
    return xs, z3.And(*[z3.ULT(x, bound) for x in xs])


def _all_equal(xs, ys):
    assert len(xs) == len(ys)
    return z3.And(*[x == y for x, y in zip(xs, ys)])


@mirrors("pack_block", "unpack_block")
def test_block__z3_pyref_is_lean(symbolic_pyref):
    """pyref's bit-level pack_block/unpack_block are Lean's `to_digits`/`from_digits` definitions, for every input."""
    cs, ok = _words("c", 8, 128)
    prove(z3.Implies(ok, _all_equal(LEAN.fn("pack_block")(cs), symbolic_pyref.pack_block(cs))))
    bs, ok_b = _words("b", 7, 256)
    prove(z3.Implies(ok_b, _all_equal(LEAN.fn("unpack_block")(bs), symbolic_pyref.unpack_block(bs))))
    cs9, ok9 = _words("d", 8, 256)  # an 8-bit code overlaps its neighbour: the harness can fail
    refute(z3.Implies(ok9, _all_equal(LEAN.fn("unpack_block")(symbolic_pyref.pack_block(cs9)), cs9)))


@mirrors("unpack_pack_block", "pack_unpack_block", "pack_block_length", "unpack_block_length")
def test_block_theorems__z3_on_pyref(symbolic_pyref):
    """The round trips and lengths, as lean/ states them, with pyref's pack_block/unpack_block in place of Lean's."""
    code = LEAN.with_code(pack_block=symbolic_pyref.pack_block, unpack_block=symbolic_pyref.unpack_block)
    Z3(bits=W, cs=SymList(range(0, 10))).run(code.statement("unpack_pack_block"))
    Z3(bits=W, bs=SymList(range(0, 9))).run(code.statement("pack_unpack_block"))
    Z3(bits=W, cs=SymList(range(0, 12))).run(code.statement("pack_block_length"))
    Z3(bits=W, bs=SymList(range(0, 12))).run(code.statement("unpack_block_length"))


@st.composite
def code_rows(draw):
    n = draw(st.integers(1, 4))
    k = draw(st.one_of(st.integers(1, 40), st.sampled_from([16, 17, 31, 32, 33, 64, 127, 128, 129])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    hi = np.where(np.arange(k) % 2 == 0, 16, 8)
    return (rng.integers(0, 1 << 30, size=(n, k)) % hi).astype(np.uint8)


@mirrors("unpack_pack_block")
@mirror_examples
@given(code_rows())
def test_unpack_pack_block__fortran_bytes_equal_pyref(codes):
    bridge = load_bridge()
    packed = bridge.pack_codes(codes)
    assert np.array_equal(packed, pyref.pack_codes(codes))
    assert np.array_equal(bridge.unpack_codes(packed, codes.shape[1]), codes)


@mirrors("pack_unpack_block")
@mirror_examples
@given(st.integers(1, 6), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_pack_unpack_block__fortran_any_bytes(n, blocks, seed):
    """Any payload of whole blocks (K a multiple of 16, so no padding) is unpacked and re-packed unchanged."""
    bridge = load_bridge()
    packed = np.random.default_rng(seed).integers(0, 256, size=(n, 7 * blocks)).astype(np.uint8)
    codes = bridge.unpack_codes(packed, 16 * blocks)
    assert np.array_equal(codes, pyref.unpack_codes(packed, 16 * blocks))
    assert np.array_equal(bridge.pack_codes(codes), packed)
