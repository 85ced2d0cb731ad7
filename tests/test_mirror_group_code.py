"""Mirrors of lean/Q35/GroupCode.lean: SPEC §8's 10-bit group codes and the compact grid."""
from __future__ import annotations

import numpy as np
from hypothesis import given

import q35.reference as pyref
from strategies import group_sizes, weights
from test_mirror_common import lean_dequantize_value, load_bridge, prove, z3


def test_decode_encode_group_code__exhaustive_pyref():
    for sc in range(64):
        for zp in range(16):
            c = pyref.encode_group_code(sc, zp)
            assert c == sc + 64 * zp
            assert pyref.decode_group_code(c) == (sc, zp)


@given(w=weights(max_rows=3, max_cols=64), g=group_sizes)
def test_decode_encode_group_code__fortran(w, g):
    bridge = load_bridge()
    qt = bridge.quantize(w, g, scale_format="compact")
    gc = qt.group_codes.astype(int)
    sc, zp = gc % 64, gc // 64
    assert (sc >= 1).all() and (sc <= 63).all() and (zp <= 15).all()
    assert np.array_equal(sc + 64 * zp, gc)


def test_encode_decode_group_code__exhaustive_pyref():
    for c in range(1024):
        assert pyref.encode_group_code(*pyref.decode_group_code(c)) == c
        assert pyref.decode_group_code(c) == (c % 64, c // 64)


def test_group_code_range__exhaustive_pyref():
    codes = {pyref.encode_group_code(sc, zp) for sc in range(1, 64) for zp in range(16)}
    assert min(codes) >= 1 and max(codes) < 2 ** pyref.GROUP_CODE_BITS == 1024


def test_group_code_bitwise__exhaustive():
    for sc in range(64):
        for zp in range(16):
            assert (sc | (zp << 6)) == sc + 64 * zp == pyref.encode_group_code(sc, zp)


def test_compact_dequantize__z3():
    code, s, zp, col = z3.Ints("code s zp col")
    L = z3.If(col % 2 == 0, code, 2 * code)
    prove((-(zp * s)) + s * L == s * (L - zp))


@given(w=weights(max_rows=3, max_cols=48), g=group_sizes)
def test_compact_dequantize__pyref_and_fortran(w, g):
    """The expanded compact zeros are exactly -zp·s, so ŵ = z + s·L = s·(L - zp), in pyref and Fortran."""
    bridge = load_bridge()
    qt = bridge.quantize(w, g, scale_format="compact")
    k = w.shape[1]
    grp = np.arange(k) // qt.group_size
    d = qt.row_scales.astype(np.float64)[:, None]
    sc, zp = (qt.group_codes & 0x3F).astype(np.float64), (qt.group_codes >> 6).astype(np.float64)
    s, z = (d * sc)[:, grp], (-(zp * (d * sc)))[:, grp]
    assert np.array_equal(qt.scales.astype(np.float64)[:, grp], s) and np.array_equal(qt.zeros.astype(np.float64)[:, grp], z)
    codes = pyref.unpack_codes(qt.packed, k).astype(np.float64)
    L = np.where(np.arange(k) % 2 == 0, codes, 2 * codes)
    assert np.array_equal(z + s * L, s * (L - zp[:, grp]))
    assert np.array_equal(bridge.dequantize(qt), (s * (L - zp[:, grp])).astype(np.float32))
    assert np.array_equal(pyref.dequantize(qt), bridge.dequantize(qt))
    assert lean_dequantize_value(3, -(2 * 5), 5, 1) == 5 * (6 - 2)
