"""Q35Linear and whole-model quantization on a tiny random LLaMA (no download, no network).

Checks: the packed forward equals x @ dequantize(W).T + b within SPEC §5's bound (fused kernel, several batch
shapes and leading dims), the torch unpack path (the CUDA path, run here on CPU) dequantizes bit-exactly,
quantize_model replaces exactly the block linears, save/load is bit-identical, and memory is the format's size.
"""
from __future__ import annotations

import numpy as np
import pytest

import torch
import transformers
import safetensors  # noqa: F401

import q35  # noqa: E402
import q35.reference as pyref  # noqa: E402
from q35 import models as qm, nn as qnn  # noqa: E402
from strategies import matmul_tolerance  # noqa: E402


def _tiny_llama(seed=0, tie=True, layers=2):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=176, num_hidden_layers=layers,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   tie_word_embeddings=tie)
    return transformers.LlamaForCausalLM(cfg).eval()


def _bound(x2: np.ndarray, layer: qnn.Q35Linear) -> np.ndarray:
    qt = layer.qtensor()
    return matmul_tolerance(x2, qt, q35.unpack_codes(qt.packed, qt.shape[1]))


@pytest.mark.parametrize("n,k,g,bias", [(40, 64, 32, True), (33, 80, 16, False), (7, 37, None, True),
                                        (24, 256, 128, True)])
@pytest.mark.parametrize("lead", [(1,), (3,), (2, 5)])
def test_forward_matches_dequantized_reference_within_spec_bound(n, k, g, bias, lead):
    rng = np.random.default_rng(n * k + len(lead))
    lin = torch.nn.Linear(k, n, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32)))
        if bias:
            lin.bias.copy_(torch.from_numpy(rng.standard_normal(n).astype(np.float32)))
    layer = qnn.Q35Linear.from_linear(lin, g)
    x = torch.from_numpy(rng.standard_normal(lead + (k,)).astype(np.float32))
    y = layer(x)
    assert y.shape == lead + (n,) and y.dtype == torch.float32
    assert layer.last_path == qnn.FUSED_LABEL
    x2 = x.reshape(-1, k).numpy()
    w_hat = q35.dequantize(layer.qtensor()).astype(np.float64)
    exact = x2.astype(np.float64) @ w_hat.T                       # binary64: exact enough for the reference
    y_nobias = (y.reshape(-1, n).numpy().astype(np.float64)
                - (lin.bias.detach().numpy().astype(np.float64) if bias else 0.0))
    # the bias is added in float32 after the kernel: allow one more rounding of |y| on top of the §5 bound
    tol = _bound(x2, layer) + 2.0 ** -23 * (np.abs(exact) + (np.abs(lin.bias.detach().numpy()) if bias else 0))
    assert np.all(np.abs(y_nobias - exact) <= tol), float(np.max(np.abs(y_nobias - exact) - tol))
    # the layer runs the same fused kernel as q35.matmul: identical bits without bias
    if not bias:
        ref = q35.matmul(x2 if x2.shape[0] > 1 else x2[0], layer.qtensor()).reshape(y.shape)
        assert np.array_equal(ref, y.numpy())


def test_forward_detects_a_wrong_result():
    """The bound is tight enough to catch a kernel that forgets the zero-point term."""
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((16, 64)) + 3.0).astype(np.float32)   # zeros far from 0
    layer = qnn.Q35Linear.from_qtensor(q35.quantize(w, 32))
    x = rng.standard_normal((2, 64)).astype(np.float32)
    qt = layer.qtensor()
    wrong = x.astype(np.float64) @ (q35.dequantize(qt).astype(np.float64)
                                    - np.repeat(qt.zeros.astype(np.float64), 32, axis=1)).T
    y = layer(torch.from_numpy(x)).numpy().astype(np.float64)
    assert np.any(np.abs(y - wrong) > _bound(x, layer))


def test_torch_unpack_path_is_bit_exact():
    rng = np.random.default_rng(2)
    for n, k, g in [(5, 37, None), (9, 128, 16), (3, 300, 64)]:
        qt = q35.quantize(rng.standard_normal((n, k)).astype(np.float32), g)
        w = qnn.dequantize_torch(torch.from_numpy(qt.packed), torch.from_numpy(qt.scales),
                                torch.from_numpy(qt.zeros), k, qt.group_size)
        assert w.dtype == torch.float32
        assert np.array_equal(w.numpy(), q35.dequantize(qt)), (n, k, g)


def test_quantize_model_replaces_exactly_the_block_linears():
    m = _tiny_llama()
    before = {n for n, mod in m.named_modules() if type(mod) is torch.nn.Linear}
    blocks = {n for n in before if n.startswith("model.layers.")}
    assert len(blocks) == 2 * 7
    names = qm.quantize_model(m, 32)
    assert set(names) == blocks
    assert set(qm.q35_layers(m)) == blocks
    left = {n for n, mod in m.named_modules() if type(mod) is torch.nn.Linear}
    assert left == before - blocks == {"lm_head"}
    assert isinstance(m.model.embed_tokens, torch.nn.Embedding)
    # the packed weights are the format's size: 7 bytes per 16 weights + 4 bytes per group
    for name in blocks:
        layer = qm.q35_layers(m)[name]
        assert not any(p.numel() for p in layer.parameters())
        want = pyref.encoded_nbytes(layer.out_features, layer.in_features, 32)["total"]
        assert layer.packed.nbytes + layer.scales.nbytes + layer.zeros.nbytes == want
    ids = torch.randint(0, 96, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = m(ids).logits
    assert torch.isfinite(logits).all()


def test_save_load_bit_identical(tmp_path):
    m = _tiny_llama(seed=3)
    qm.quantize_model(m, 16)
    path = qm.save_quantized(m, tmp_path / "tiny.q35.safetensors")
    meta = qm.read_metadata(path)
    assert meta["format"] == "q35" and meta["q35_format_version"] == str(qm.FORMAT_VERSION)
    assert meta["group_size"] == "16"
    m2 = qm.load_quantized(path)
    a, b = m.state_dict(), m2.state_dict()
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert a[key].view(-1).view(torch.uint8).equal(b[key].view(-1).view(torch.uint8)), key
    assert m2.lm_head.weight.data_ptr() == m2.model.embed_tokens.weight.data_ptr()   # tying restored
    ids = torch.randint(0, 96, (1, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(m(ids).logits, m2(ids).logits)
        g1 = m.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        g2 = m2.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert torch.equal(g1, g2)


def test_load_rejects_other_files(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a q35"):
        qm.load_quantized(p)


def test_untied_model_roundtrip(tmp_path):
    m = _tiny_llama(seed=4, tie=False, layers=1)
    qm.quantize_model(m, None)
    m2 = qm.load_quantized(qm.save_quantized(m, tmp_path / "u.safetensors"))
    ids = torch.randint(0, 96, (2, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(m(ids).logits, m2(ids).logits)


@pytest.mark.parametrize("n,k,g", [(37, 1000, 128), (19, 4096, 128), (8, 300, 48), (5, 2048, 256), (3, 530, None)])
@pytest.mark.parametrize("batch", [1, 2, 3, 5, 8, 9])
def test_fused_kernel_wide_rows_within_spec_bound(n, k, g, batch):
    """Rows wider than the equivalence suite's (K up to 4096): every batch tiling (1, 2, 4 columns) and group
    layout (8 blocks per group, 3, 16, one group per row) of the fast path, against binary64 x @ W_hat.T."""
    rng = np.random.default_rng(k * 31 + batch)
    w = (rng.standard_normal((n, k)) * rng.uniform(0.01, 3.0)).astype(np.float32)
    qt = q35.quantize(w, g)
    x = (rng.standard_normal((batch, k)) * 10.0 ** rng.uniform(-3, 3, (batch, 1))).astype(np.float32)
    y = q35.matmul(x[0] if batch == 1 else x, qt).reshape(batch, n).astype(np.float64)
    exact = x.astype(np.float64) @ q35.dequantize(qt).astype(np.float64).T
    tol = matmul_tolerance(x, qt, q35.unpack_codes(qt.packed, k))
    assert np.all(np.abs(y - exact) <= tol), float(np.max(np.abs(y - exact) / tol))
