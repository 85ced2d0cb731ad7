"""Mirrors of lean/Q35/Block.lean: 8 pair codes <-> 7 bytes.

pyref's own `pack_block`/`unpack_block` are executed on z3 bit-vectors (64-bit words standing for Python's
unbounded ints: every value stays below 2^56, so no bit is lost and `>>` of a non-negative word is the
logical shift), and z3 proves over all 2^56 inputs (a) the round trips and (b) that they compute exactly Lean's
`to_digits`/`from_digits` formulas. Hypothesis then checks that the Fortran kernels produce pyref's bytes.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from test_mirror_common import (lean_from_digits, lean_pack_block, lean_to_digits, lean_unpack_block, load_bridge,
                                prove, refute, z3)

W = 64  # word size standing for Python ints (values < 2^56)


@pytest.fixture
def symbolic_pyref(monkeypatch):
    """pyref.pack_block calls int(c) on each code; make that the identity so z3 terms flow through it."""
    monkeypatch.setattr(pyref.core, "int", lambda v: v, raising=False)
    return pyref.core


def _codes(name="c", n=8):
    cs = [z3.BitVec(f"{name}{i}", W) for i in range(n)]
    return cs, z3.And(*[z3.ULT(c, 128) for c in cs])


def _bytes(name="b", n=7):
    bs = [z3.BitVec(f"{name}{j}", W) for j in range(n)]
    return bs, z3.And(*[z3.ULT(b, 256) for b in bs])


def z3_from_digits(b: int, ds):
    v = z3.BitVecVal(0, W)
    for d in reversed(ds):
        v = d + b * v
    return v


def z3_to_digits(b: int, n: int, v):
    out = []
    for _ in range(n):
        out.append(z3.URem(v, b))
        v = z3.UDiv(v, b)
    return out


def _all_equal(xs, ys):
    assert len(xs) == len(ys)
    return z3.And(*[x == y for x, y in zip(xs, ys)])


def test_unpack_pack_block__z3_pyref_all_inputs(symbolic_pyref):
    cs, ok = _codes()
    prove(z3.Implies(ok, _all_equal(symbolic_pyref.unpack_block(symbolic_pyref.pack_block(cs)), cs)))
    # the harness can fail: a code of 8 bits does not survive the 7-bit field
    refute(z3.Implies(z3.And(*[z3.ULT(c, 256) for c in cs]),
                      _all_equal(symbolic_pyref.unpack_block(symbolic_pyref.pack_block(cs)), cs)))


def test_unpack_pack_block__z3_lean_definition_is_pyref(symbolic_pyref):
    """Lean's pack_block = to_digits 256 7 (from_digits 128 cs) is pyref's bit-level pack_block (and unpack)."""
    cs, ok = _codes()
    prove(z3.Implies(ok, _all_equal(z3_to_digits(256, 7, z3_from_digits(128, cs)), symbolic_pyref.pack_block(cs))))
    bs, ok_b = _bytes()
    prove(z3.Implies(ok_b, _all_equal(z3_to_digits(128, 8, z3_from_digits(256, bs)),
                                      symbolic_pyref.unpack_block(bs))))


def test_pack_unpack_block__z3_pyref_all_inputs(symbolic_pyref):
    bs, ok = _bytes()
    prove(z3.Implies(ok, _all_equal(symbolic_pyref.pack_block(symbolic_pyref.unpack_block(bs)), bs)))


@given(st.lists(st.integers(0, 127), min_size=8, max_size=8))
def test_unpack_pack_block__concrete_pyref_equals_lean(cs):
    packed = pyref.pack_block(cs)
    assert packed == lean_pack_block(cs)
    assert pyref.unpack_block(packed) == lean_unpack_block(packed) == cs


@given(st.lists(st.integers(0, 255), min_size=7, max_size=7))
def test_pack_unpack_block__concrete_pyref_equals_lean(bs):
    assert pyref.unpack_block(bs) == lean_unpack_block(bs)
    assert pyref.pack_block(pyref.unpack_block(bs)) == lean_pack_block(lean_unpack_block(bs)) == bs


@st.composite
def code_rows(draw):
    n = draw(st.integers(1, 4))
    k = draw(st.one_of(st.integers(1, 40), st.sampled_from([16, 17, 31, 32, 33, 64, 127, 128, 129])))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    hi = np.where(np.arange(k) % 2 == 0, 16, 8)
    return (rng.integers(0, 1 << 30, size=(n, k)) % hi).astype(np.uint8)


@given(code_rows())
def test_unpack_pack_block__fortran_bytes_equal_pyref(codes):
    bridge = load_bridge()
    packed = bridge.pack_codes(codes)
    assert np.array_equal(packed, pyref.pack_codes(codes))
    assert np.array_equal(bridge.unpack_codes(packed, codes.shape[1]), codes)


@given(st.integers(1, 6), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_pack_unpack_block__fortran_any_bytes(n, blocks, seed):
    """Any payload of whole blocks (K a multiple of 16, so no padding) is unpacked and re-packed unchanged."""
    bridge = load_bridge()
    packed = np.random.default_rng(seed).integers(0, 256, size=(n, 7 * blocks)).astype(np.uint8)
    codes = bridge.unpack_codes(packed, 16 * blocks)
    assert np.array_equal(codes, pyref.unpack_codes(packed, 16 * blocks))
    assert np.array_equal(bridge.pack_codes(codes), packed)


def test_to_digits_length__pyref_and_lean():
    for b, n, v in [(256, 7, 0), (256, 7, 2**56 - 1), (128, 8, 12345678901), (2, 0, 5), (10, 3, 98765)]:
        assert len(lean_to_digits(b, n, v)) == n
    assert len(pyref.pack_block([127] * 8)) == 7 and len(pyref.unpack_block([255] * 7)) == 8


@given(st.lists(st.integers(0, 127), max_size=12))
def test_pack_block_length__pyref(cs):
    assert len(pyref.pack_block(cs)) == pyref.BLOCK_BYTES == len(lean_pack_block(cs)) == 7


@given(st.lists(st.integers(0, 255), max_size=10))
def test_unpack_block_length__pyref(bs):
    assert len(pyref.unpack_block(bs)) == pyref.PAIRS_PER_BLOCK == len(lean_unpack_block(bs)) == 8


def test_from_digits_lt_128__z3():
    cs, ok = _codes()
    prove(z3.Implies(ok, z3.ULT(z3_from_digits(128, cs), 128 ** 8)))


def test_from_digits_lt_256__z3():
    bs, ok = _bytes()
    prove(z3.Implies(ok, z3.ULT(z3_from_digits(256, bs), 256 ** 7)))
    assert 128 ** 8 == 256 ** 7 == 2 ** 56


def test_to_digits_from_digits_128__z3():
    for n in range(0, 9):
        cs, ok = _codes(n=n) if n else ([], z3.BoolVal(True))
        prove(z3.Implies(ok, _all_equal(z3_to_digits(128, n, z3_from_digits(128, cs)), cs)))


def test_to_digits_from_digits_256__z3():
    for n in range(0, 8):
        bs, ok = _bytes(n=n) if n else ([], z3.BoolVal(True))
        prove(z3.Implies(ok, _all_equal(z3_to_digits(256, n, z3_from_digits(256, bs)), bs)))


def test_from_digits_to_digits_256__z3():
    v = z3.BitVec("v", W)
    for n in range(0, 8):
        prove(z3.Implies(z3.ULT(v, 256 ** n), z3_from_digits(256, z3_to_digits(256, n, v)) == v))
    refute(z3.Implies(z3.ULT(v, 256 ** 7 + 1), z3_from_digits(256, z3_to_digits(256, 7, v)) == v))


def test_from_digits_to_digits_128__z3():
    v = z3.BitVec("v", W)
    for n in range(0, 9):
        prove(z3.Implies(z3.ULT(v, 128 ** n), z3_from_digits(128, z3_to_digits(128, n, v)) == v))


@given(st.integers(0, 2**56 - 1))
def test_from_digits_to_digits_256__concrete(v):
    assert lean_from_digits(256, lean_to_digits(256, 7, v)) == v
    assert lean_from_digits(128, lean_to_digits(128, 8, v)) == v
