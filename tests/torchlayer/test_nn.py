"""Q35Linear in every mode (f16, compact, permuted): its buffers are exactly the format's all-in size, its forward
equals x @ dequantize(W).T + b within SPEC §5's bound, the torch unpack path (the CUDA path, run here on CPU)
dequantizes bit-exactly, model dtype changes never touch the format's binary16 data, and bad inputs raise."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import q35
from q35.torch import layer as qnn
from strategies import matmul_tolerance

MODES = [dict(), dict(scale_format="compact"), dict(scale_format="compact", permute=True)]
MODE_IDS = ["f16", "compact", "compact+perm"]


def _layer(n, k, g, bias, mode, seed=0):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((n, k)) * rng.uniform(0.05, 2.0)).astype(np.float32)
    imp = rng.random(k).astype(np.float32) + 0.01 if mode.get("scale_format") == "compact" else None
    qt = q35.quantize(w, g, importance=imp, **mode)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    return qnn.Q35Linear.from_qtensor(qt, b), qt, b


def _stored_x(x2: np.ndarray, qt) -> np.ndarray:
    return x2 if qt.perm is None else x2[:, qt.perm.astype(np.intp)]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("n,k,g,bias", [(40, 64, 32, True), (33, 80, 16, False), (7, 37, None, True),
                                        (24, 256, 128, True)])
@pytest.mark.parametrize("lead", [(1,), (3,), (2, 5)])
def test_forward_within_spec_bound(mode, n, k, g, bias, lead):
    layer, qt, b = _layer(n, k, g, bias, mode, seed=n * k + len(lead))
    x = torch.from_numpy(np.random.default_rng(k).standard_normal(lead + (k,)).astype(np.float32))
    y = layer(x)
    assert y.shape == lead + (n,) and y.dtype == torch.float32 and layer.last_path.startswith(qnn.FUSED_LABEL)
    x2 = x.reshape(-1, k).numpy()
    exact = x2.astype(np.float64) @ q35.dequantize(qt).astype(np.float64).T
    y_nobias = y.reshape(-1, n).numpy().astype(np.float64) - (b.astype(np.float64) if bias else 0.0)
    # the bias is added in float32 after the kernel: one more rounding of |y| on top of the §5 bound
    tol = matmul_tolerance(_stored_x(x2, qt), qt, q35.unpack_codes(qt.packed, k)) \
        + 2.0 ** -23 * (np.abs(exact) + (np.abs(b) if bias else 0))
    assert np.all(np.abs(y_nobias - exact) <= tol), float(np.max(np.abs(y_nobias - exact) - tol))


def test_forward_detects_a_wrong_result():
    """The bound is tight enough to catch a kernel that forgets the zero-point term."""
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((16, 64)) + 3.0).astype(np.float32)   # zeros far from 0
    qt = q35.quantize(w, 32)
    layer = qnn.Q35Linear.from_qtensor(qt)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    wrong = x.astype(np.float64) @ (q35.dequantize(qt).astype(np.float64)
                                    - np.repeat(qt.zeros.astype(np.float64), 32, axis=1)).T
    y = layer(torch.from_numpy(x)).numpy().astype(np.float64)
    assert np.any(np.abs(y - wrong) > matmul_tolerance(x, qt, q35.unpack_codes(qt.packed, 64)))


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_buffers_are_the_all_in_size_and_round_trip(mode):
    layer, qt, _ = _layer(48, 200, 64, False, mode)
    want = q35.encoded_nbytes(48, 200, 64, qt.scale_format, qt.perm is not None)["total"]
    assert layer.nbytes == want and not any(p.numel() for p in layer.parameters())
    assert layer.bits_per_weight == pytest.approx(8 * want / (48 * 200))
    back = layer.qtensor()
    for field in ("packed", "scales", "zeros", "row_scales", "group_codes", "perm"):
        a, b = getattr(back, field), getattr(qt, field)
        assert (a is None and b is None) or (a.dtype == b.dtype and np.array_equal(a, b)), field


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_torch_unpack_path_is_bit_exact(mode):
    for n, k, g in [(5, 37, None), (9, 128, 16), (3, 300, 64)]:
        layer, qt, _ = _layer(n, k, g, False, mode, seed=k)
        w = qnn.dequantize_torch(layer)
        assert w.dtype == torch.float32
        assert np.array_equal(w.numpy(), q35.dequantize(qt)), (n, k, g)


@pytest.mark.parametrize("convert", [lambda m: m.to(torch.bfloat16), lambda m: m.half(),
                                     lambda m: m.to(torch.float16).float(), lambda m: m.double()])
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_dtype_changes_leave_the_format_data_alone(convert, mode):
    layer, qt, _ = _layer(12, 64, 32, True, mode)
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 64)).astype(np.float32))
    before = layer(x)
    convert(layer)
    back = layer.qtensor()
    assert np.array_equal(back.scales, qt.scales) and np.array_equal(back.zeros, qt.zeros)
    for name in ("scales", "zeros", "row_scales"):
        if hasattr(layer, name) and getattr(layer, name) is not None:
            assert getattr(layer, name).dtype == torch.float16, name
    # only the bias (an ordinary float tensor of the model) may change dtype: with it restored, same outputs
    layer.bias = torch.from_numpy(_layer(12, 64, 32, True, mode)[2])
    assert torch.equal(layer(x), before)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_inputs_are_computed_in_float32_and_returned_in_their_dtype(dtype):
    layer, qt, _ = _layer(8, 32, 16, False, {})
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((3, 32)).astype(np.float32)).to(dtype)
    y = layer(x)
    assert y.dtype == dtype
    ref = q35.matmul(x.to(torch.float32).numpy(), qt)
    assert torch.equal(y, torch.from_numpy(ref).to(dtype))


@pytest.mark.parametrize("bad", [torch.zeros(2, 32, dtype=torch.int64), torch.zeros(2, 32, dtype=torch.bool),
                                 torch.zeros(2, 32, dtype=torch.uint8)])
def test_integer_and_bool_inputs_raise_like_nn_linear(bad):
    layer, _, _ = _layer(8, 32, 16, False, {})
    with pytest.raises(RuntimeError, match="floating-point"):
        layer(bad)
    with pytest.raises(RuntimeError):                      # what nn.Linear does with the same input
        torch.nn.Linear(32, 8)(bad)


def test_shape_errors_name_the_shapes():
    layer, _, _ = _layer(8, 32, 16, False, {})
    with pytest.raises(ValueError, match="in_features 32"):
        layer(torch.zeros(2, 31))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        layer(torch.tensor(1.0))


def test_a8_activations_run_the_integer_kernel_bit_identically_to_the_reference():
    layer, qt, _ = _layer(16, 96, 32, False, {"scale_format": "compact"})
    layer.activations = "a8"
    x = np.random.default_rng(6).standard_normal((3, 96)).astype(np.float32)
    y = layer(torch.from_numpy(x))
    assert "a8" in layer.last_path
    assert np.array_equal(y.numpy(), q35.reference.matmul_a8(x, qt))
