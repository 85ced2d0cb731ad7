"""Mirrors of lean/Q35/GroupCode.lean: SPEC §8's 10-bit group codes and the compact grid."""
from __future__ import annotations

import numpy as np
from hypothesis import given

import q35.reference as pyref
from q35.format import expand_compact
from strategies import group_sizes, weights
from test_mirror_common import (Exhaustive, LEAN, Z3, check_statements, lean_statement_test, load_bridge,
                                mirror_examples, mirrors, pyref_code_overrides)

STATEMENTS = {
    "decode_encode_group_code": Exhaustive(sc=range(0, 70), zp=range(0, 20)),
    "encode_decode_group_code": Exhaustive(c=range(0, 1100)),
    "group_code_range": Exhaustive(sc=range(0, 70), zp=range(0, 20)),
    "group_code_bitwise": Exhaustive(),
    "compact_dequantize": Z3(),
}
test_lean_statement = lean_statement_test(STATEMENTS)
PYREF = dict(encode_group_code=pyref.encode_group_code, decode_group_code=pyref.decode_group_code)


@mirrors("encode_group_code", "decode_group_code", "group_code_bitwise")
def test_group_code__pyref_is_lean_exhaustive():
    """pyref's `sc | zp << 6` and `(c & 0x3F, c >> 6)` are Lean's arithmetic definitions (sc < 64, any zp, any c)."""
    for sc in range(64):
        for zp in range(64):
            assert pyref.encode_group_code(sc, zp) == LEAN.fn("encode_group_code")(sc, zp), (sc, zp)
    for c in range(1 << 14):
        assert pyref.decode_group_code(c) == tuple(LEAN.fn("decode_group_code")(c)), c
    assert pyref.encode_group_code(64, 0) != LEAN.fn("encode_group_code")(64, 1)


@mirrors("decode_encode_group_code", "encode_decode_group_code", "group_code_range")
def test_group_code_theorems__on_pyref_exhaustive():
    check_statements(LEAN.with_code(**PYREF), {
        "decode_encode_group_code": Exhaustive(sc=range(0, 70), zp=range(0, 20)),
        "encode_decode_group_code": Exhaustive(c=range(0, 2048)),
        "group_code_range": Exhaustive(sc=range(0, 70), zp=range(0, 20))})


@mirrors("decode_encode_group_code", "group_code_range")
@mirror_examples
@given(w=weights(max_rows=3, max_cols=64), g=group_sizes)
def test_group_code__fortran_codes_decode_in_range(w, g):
    """Fortran's compact quantizer emits codes whose pyref decoding is a valid (sc, zp) that re-encodes to them."""
    qt = load_bridge().quantize(w, g, scale_format="compact")
    for c in qt.group_codes.astype(int).ravel().tolist():
        sc, zp = pyref.decode_group_code(c)
        assert 1 <= sc <= 63 and 0 <= zp <= 15, c
        assert pyref.encode_group_code(sc, zp) == c


@mirrors("compact_dequantize")
def test_compact_dequantize__on_pyref_exhaustive():
    """`z + s·L = s·(L − zp)` with `z = −(zp·s)`, evaluated with pyref's dequantize_value in place of Lean's."""
    code = LEAN.with_code(**pyref_code_overrides())
    Exhaustive(code=range(0, 16), s=range(1, 40), zp=range(0, 16), column=range(0, 2)).run(
        code.statement("compact_dequantize"))


@mirrors("compact_dequantize")
@mirror_examples
@given(w=weights(max_rows=3, max_cols=48), g=group_sizes)
def test_compact_dequantize__pyref_and_fortran(w, g):
    """The expanded compact zeros are exactly −zp·s, so ŵ = z + s·L = s·(L − zp), in pyref and Fortran."""
    bridge = load_bridge()
    qt = bridge.quantize(w, g, scale_format="compact")
    k = w.shape[1]
    grp = np.arange(k) // qt.group_size
    sc, zp = (qt.group_codes & 0x3F).astype(np.float64), (qt.group_codes >> 6).astype(np.float64)
    s = (qt.row_scales.astype(np.float64)[:, None] * sc)[:, grp]
    scales, zeros = expand_compact(qt.row_scales, qt.group_codes)
    assert np.array_equal(scales.astype(np.float64)[:, grp], s)
    assert np.array_equal(zeros.astype(np.float64)[:, grp], -(zp[:, grp] * s))
    codes = pyref.unpack_codes(qt.packed, k).astype(np.float64)
    L = np.where(np.arange(k) % 2 == 0, codes, 2 * codes)
    assert np.array_equal(bridge.dequantize(qt), (s * (L - zp[:, grp])).astype(np.float32))
    assert np.array_equal(pyref.dequantize(qt), bridge.dequantize(qt))
