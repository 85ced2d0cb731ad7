"""Calibration statistics (q35.torch.calibration) on a tiny random LLaMA: hooks measure exactly the inputs of each
linear layer, layers fed one tensor share one statistics object, windows are cut like evaluation windows."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from q35.torch import calibration


def _tiny_llama(seed=0):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(cfg).eval()


class _CharTokenizer:
    """Enough of a Hugging Face tokenizer for calibration_windows: one id per character."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) % 90 + 1 for c in text]}

    def get_vocab(self):
        return {"<|endoftext|>": 0}


def _linears(model):
    return [n for n, m in model.named_modules() if n.startswith("model.layers.") and isinstance(m, torch.nn.Linear)]


def test_stats_equal_the_inputs_each_layer_sees():
    model = _tiny_llama()
    names = _linears(model)
    ids = np.random.default_rng(0).integers(1, 96, size=(5, 12))
    seen = {}
    hooks = [dict(model.named_modules())[n].register_forward_pre_hook(
        lambda m, inp, n=n: seen.setdefault(n, []).append(inp[0].detach().reshape(-1, inp[0].shape[-1]).double()))
        for n in names]
    with torch.inference_mode():
        model(input_ids=torch.as_tensor(ids))
    for h in hooks:
        h.remove()
    stats = calibration.collect_stats(model, ids, names, hessian=True, batch_size=2, progress=False)
    for n in names:
        x = torch.cat(seen[n]).numpy()
        assert stats[n].tokens == x.shape[0] == ids.size
        np.testing.assert_allclose(stats[n].importance, (x * x).mean(0), rtol=1e-5)
        np.testing.assert_allclose(stats[n].hessian, x.T @ x / x.shape[0], rtol=1e-9, atol=1e-12)
    layer0 = "model.layers.0."
    assert stats[layer0 + "self_attn.q_proj"] is stats[layer0 + "self_attn.k_proj"] is stats[layer0 + "self_attn.v_proj"]
    assert stats[layer0 + "mlp.gate_proj"] is stats[layer0 + "mlp.up_proj"]
    assert stats[layer0 + "self_attn.o_proj"] is not stats[layer0 + "self_attn.q_proj"]
    assert stats[layer0 + "mlp.down_proj"].hessian.shape == (176, 176)


def test_windows_are_cut_like_evaluation_windows_with_the_leading_token():
    docs = calibration.TextDocument
    texts = [docs("a", "x" * 50, ""), docs("b", "y" * 23, "")]
    cs = calibration.calibration_windows(_CharTokenizer(), texts, windows_per_doc=3, window=10)
    assert cs.windows.shape == (5, 10) and cs.docs == ["a"] * 3 + ["b"] * 2 and cs.bos_id == 0
    assert cs.tokens == 55
    with pytest.raises(ValueError, match="fewer than one window"):
        calibration.calibration_windows(_CharTokenizer(), [docs("c", "z" * 9, "")], window=10)


def test_user_text_files(tmp_path):
    good = tmp_path / "calib.txt"
    good.write_text("some text " * 10, encoding="utf-8")
    (doc,) = calibration.text_documents([good])
    assert doc.text.startswith("some text") and len(doc.sha256) == 64
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="cannot be read as UTF-8"):
        calibration.text_documents([bad])
    with pytest.raises(ValueError, match="cannot be read"):
        calibration.text_documents([tmp_path / "missing.txt"])


def test_sequential_stats_see_the_quantized_earlier_blocks():
    """collect_stats_sequential: block b's statistics are those of a model whose blocks < b hold the replacement
    weights quantize_block returned; with identity replacements they equal collect_stats; weights are restored."""
    model = _tiny_llama(1)
    names = _linears(model)
    ids = np.random.default_rng(1).integers(1, 96, size=(5, 12))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plain = calibration.collect_stats(model, ids, names, hessian=True, batch_size=2, progress=False)
    seen_blocks = []

    def identity(stats):
        seen_blocks.append(sorted(stats))
        return {n: dict(model.named_modules())[n].weight.detach().numpy().copy() for n in stats}

    same = calibration.collect_stats_sequential(model, ids, names, identity, batch_size=2, progress=False)
    assert seen_blocks == [sorted(n for n in names if n.startswith(f"model.layers.{i}.")) for i in range(2)]
    for n in names:
        np.testing.assert_allclose(same[n].hessian, plain[n].hessian, rtol=1e-6, atol=1e-9)

    def halve(stats):
        return {n: dict(model.named_modules())[n].weight.detach().numpy() * 0.5 for n in stats}

    seq = calibration.collect_stats_sequential(model, ids, names, halve, batch_size=2, progress=False)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"{n} not restored"
    halved = _tiny_llama(1)
    with torch.no_grad():
        for n in names:
            if n.startswith("model.layers.0."):
                dict(halved.named_modules())[n].weight.mul_(0.5)
    ref = calibration.collect_stats(halved, ids, names, hessian=True, batch_size=2, progress=False)
    for n in names:   # block 0 is measured before its own replacement (as GPTQ does), block 1 after block 0's
        want = plain[n] if n.startswith("model.layers.0.") else ref[n]
        np.testing.assert_allclose(seq[n].hessian, want.hessian, rtol=1e-6, atol=1e-9)
    layer1 = "model.layers.1.self_attn.q_proj"
    assert not np.allclose(seq[layer1].hessian, plain[layer1].hessian, rtol=1e-3)   # the change is visible
