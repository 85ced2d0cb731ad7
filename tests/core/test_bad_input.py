"""Every special-input class of SPEC §7 raises the documented error, in the reference and in the fast path; none crashes."""
from __future__ import annotations

import numpy as np
import pytest

import q35
import q35.reference as pyref

IMPLS = [pytest.param(q35, id="fast"), pytest.param(pyref, id="pyref")]
W = np.arange(64, dtype=np.float32).reshape(2, 32) / 10


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weight_rejected_with_index(impl, bad):
    w = W.copy()
    w[1, 5] = bad
    with pytest.raises(ValueError, match=r"NaN or Inf.*\(1, 5\)"):
        impl.quantize(w)


@pytest.mark.parametrize("impl", IMPLS)
def test_non_finite_activation_rejected(impl):
    qt = impl.quantize(W, 16)
    x = np.ones(32, np.float32)
    x[3] = np.nan
    with pytest.raises(ValueError, match="x: contains NaN"):
        impl.matmul(x, qt)


@pytest.mark.parametrize("impl", IMPLS)
def test_magnitude_beyond_binary16_rejected(impl):
    w = W.copy()
    w[0, 0] = 1e6
    with pytest.raises(ValueError, match="exceeds 65504"):
        impl.quantize(w)


@pytest.mark.parametrize("impl", IMPLS)
def test_float64_beyond_float32_becomes_inf_and_is_rejected(impl):
    w = W.astype(np.float64)
    w[0, 1] = 1e300
    with pytest.raises(ValueError, match="NaN or Inf"):
        impl.quantize(w)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_empty_matrix_rejected(impl, shape):
    with pytest.raises(ValueError, match="empty weight matrix"):
        impl.quantize(np.zeros(shape, np.float32))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("w", [np.zeros(8, np.float32), np.zeros((2, 2, 2), np.float32), np.float32(1.0)])
def test_wrong_ndim_rejected(impl, w):
    with pytest.raises(ValueError, match="2-D"):
        impl.quantize(w)


@pytest.mark.parametrize("impl", IMPLS)
def test_activation_shape_mismatch_rejected(impl):
    qt = impl.quantize(W, 16)
    with pytest.raises(ValueError, match="does not match the weight's in_features 32"):
        impl.matmul(np.ones(31, np.float32), qt)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        impl.matmul(np.ones((2, 2, 32), np.float32), qt)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, bool, np.complex64, object])
def test_non_float_dtype_rejected(impl, dtype):
    with pytest.raises(TypeError, match="dtype"):
        impl.quantize(np.ones((2, 16), dtype=dtype))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("g", [8, 17, -16, 100])
def test_bad_group_size_rejected(impl, g):
    with pytest.raises(ValueError, match="multiple of 16"):
        impl.quantize(W, g)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("g", [16.0, "16", True])
def test_group_size_type_rejected(impl, g):
    with pytest.raises(TypeError, match="group_size"):
        impl.quantize(W, g)


@pytest.mark.parametrize("impl", IMPLS)
def test_float16_float64_and_strided_inputs_are_converted_not_misread(impl):
    base = pyref.quantize(W, 16)
    for w in (W.astype(np.float16).astype(np.float32), W.astype(np.float64), np.asfortranarray(W),
              np.ascontiguousarray(np.vstack([W, W])[::2]), W[:, ::-1][:, ::-1]):
        qt = impl.quantize(w, 16)
        if w.dtype == np.float32 and np.array_equal(w, W):
            assert qt.packed.tobytes() == base.packed.tobytes()
    xt = np.asfortranarray(np.random.default_rng(0).standard_normal((3, 32)).astype(np.float32))
    np.testing.assert_allclose(impl.matmul(xt, base), impl.matmul(np.ascontiguousarray(xt), base), rtol=0, atol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_out_of_range_codes_rejected(impl):
    with pytest.raises(ValueError, match=r"odd \(3-bit"):
        impl.pack_codes(np.array([3, 8], np.uint8))
    with pytest.raises(ValueError, match=r"even \(4-bit"):
        impl.pack_codes(np.array([16, 0], np.uint8))
    with pytest.raises(ValueError, match="out of range"):
        impl.pack_codes(np.array([-1, 0], np.int64))
    with pytest.raises(TypeError, match="integer"):
        impl.pack_codes(np.array([1.0, 0.0]))


@pytest.mark.parametrize("impl", IMPLS)
def test_truncated_payload_rejected(impl):
    packed = impl.pack_codes(np.zeros(32, np.uint8))
    with pytest.raises(ValueError, match="truncated payload"):
        impl.unpack_codes(packed[:-1], 32)
    with pytest.raises(ValueError, match="oversized payload"):
        impl.unpack_codes(np.concatenate([packed, packed]), 32)
    with pytest.raises(TypeError, match="uint8"):
        impl.unpack_codes(packed.astype(np.int16), 32)
    with pytest.raises(ValueError, match="positive int"):
        impl.unpack_codes(packed, 0)


@pytest.mark.parametrize("impl", IMPLS)
def test_corrupted_qtensor_rejected(impl):
    qt = pyref.quantize(W[:, :30], 16)
    cases = {
        "truncated": (dict(packed=qt.packed[:, :-1]), "QTensor.packed"),
        "wrong scale dtype": (dict(scales=qt.scales.astype(np.float32)), "QTensor.scales"),
        "zero scale": (dict(scales=np.zeros_like(qt.scales)), "scale must be > 0"),
        "nan zero": (dict(zeros=np.full_like(qt.zeros, np.nan)), "QTensor.zeros: contains NaN"),
        "bad group": (dict(group_size=24), "group_size"),
        "bad shape": (dict(shape=(2, 0)), "QTensor.shape"),
    }
    for name, (change, msg) in cases.items():
        fields = dict(packed=qt.packed, scales=qt.scales, zeros=qt.zeros, shape=qt.shape, group_size=qt.group_size)
        fields.update(change)
        with pytest.raises(ValueError, match=msg):
            impl.dequantize(pyref.QTensor(**fields))
    dirty = qt.packed.copy()
    dirty[:, -1] |= 0x80  # the top bits of the last block belong to padding columns 30, 31
    with pytest.raises(ValueError, match="padding"):
        impl.matmul(np.ones(30, np.float32), pyref.QTensor(dirty, qt.scales, qt.zeros, qt.shape, qt.group_size))
    with pytest.raises(TypeError, match="not a QTensor"):
        impl.dequantize(object())
