"""Whole-model deployment on tiny random LLaMA, Mistral and Qwen2 models (no download): quantize in the default
mode with calibration, save as a model directory, load back with q35.from_pretrained and with transformers'
AutoModelForCausalLM (through the registered q35 quantizer), and check every buffer bit for bit, every packed
layer's output within SPEC §5's bound in a real forward pass, and generation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

import q35
from q35 import calibration, checkpoint, models
from strategies import matmul_tolerance

ARCHS = {
    "llama": lambda: transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=176,
                                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                              max_position_embeddings=64, tie_word_embeddings=True),
    "mistral": lambda: transformers.MistralConfig(vocab_size=96, hidden_size=64, intermediate_size=160,
                                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                  max_position_embeddings=64, sliding_window=32),
    "qwen2": lambda: transformers.Qwen2Config(vocab_size=96, hidden_size=64, intermediate_size=176,
                                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                              max_position_embeddings=64, tie_word_embeddings=False),
}


def _model(arch: str, seed: int = 0, dtype=torch.float32):
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(ARCHS[arch]()).eval().to(dtype)


def _calibration(seed: int = 0):
    return calibration.CalibrationSet(np.random.default_rng(seed).integers(1, 96, (4, 24)), 0, ["random"] * 4)


def _ids(seed=1, shape=(2, 11)):
    return torch.randint(0, 96, shape, generator=torch.Generator().manual_seed(seed))


def _quantized(arch: str, config=None, seed=0):
    m = _model(arch, seed)
    config = config or models.QuantConfig(group_size=32)       # the default modes at a tiny model's group size
    models.quantize_model(m, config, _calibration(seed), progress=False)
    return m


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and sa[key].shape == sb[key].shape, key
        assert sa[key].contiguous().view(-1).view(torch.uint8).equal(sb[key].contiguous().view(-1).view(torch.uint8)), key


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_default_mode_round_trip_both_loaders(arch, tmp_path):
    m = _quantized(arch)
    assert set(models.q35_layers(m)) == set(n for n in dict(m.named_modules()) if n.startswith("model.layers.")
                                            and n.rsplit(".", 1)[-1].endswith("proj"))
    out = q35.save_pretrained(m, tmp_path / "q")
    cfg = json.loads((out / "config.json").read_text())
    qc = cfg["quantization_config"]
    assert qc["quant_method"] == "q35" and qc["config"] == models.QuantConfig(group_size=32).to_dict()
    with torch.no_grad():                   # what the file holds: 2-D float tensors (embeddings) in binary16
        for p in m.parameters():
            if p.dim() == 2:
                p.copy_(p.half().float())
    m_reloaded = q35.from_pretrained(out)
    _assert_same_state(m, m_reloaded)
    q35.hf.register()                       # (importing q35.hf registers the quantizer with transformers)
    m_hf = transformers.AutoModelForCausalLM.from_pretrained(str(out))
    _assert_same_state(m, m_hf)
    ids = _ids()
    with torch.no_grad():
        logits = m(ids).logits
        assert torch.equal(logits, m_reloaded(ids).logits) and torch.equal(logits, m_hf(ids).logits)
        g = m_hf.generate(ids[:1], max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert g.shape == (1, ids.shape[1] + 5)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_packed_layer_matches_its_dequantized_weight_in_a_real_forward(arch):
    """In the packed model's own forward pass, each Q35Linear's output equals x @ Ŵ.T + b within SPEC §5."""
    m = _quantized(arch, seed=2)
    seen = {}
    hooks = [layer.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, (inp[0], out)))
             for n, layer in models.q35_layers(m).items()]
    with torch.no_grad():
        m(_ids(3))
    for h in hooks:
        h.remove()
    assert len(seen) == len(models.q35_layers(m))
    for name, (x, y) in seen.items():
        layer = models.q35_layers(m)[name]
        qt = layer.qtensor()
        x2 = x.reshape(-1, layer.in_features).numpy()
        exact = x2.astype(np.float64) @ q35.dequantize(qt).astype(np.float64).T
        xs = x2 if qt.perm is None else x2[:, qt.perm.astype(np.intp)]
        tol = matmul_tolerance(xs, qt, q35.unpack_codes(qt.packed, layer.in_features))
        if layer.bias is not None:
            exact = exact + layer.bias.numpy()
            tol = tol + 2.0 ** -23 * np.abs(exact)
        assert np.all(np.abs(y.reshape(x2.shape[0], -1).numpy() - exact) <= tol), name


def test_half_precision_model_round_trips_to_identical_logits(tmp_path):
    for dtype in (torch.bfloat16, torch.float16):
        m = _model("llama", 5, dtype)
        models.quantize_model(m, models.QuantConfig(group_size=32), _calibration(), progress=False)
        out = q35.save_pretrained(m, tmp_path / str(dtype))
        assert json.loads((out / "config.json").read_text())["quantization_config"]["float_dtype"] == \
            str(dtype).removeprefix("torch.")
        m2 = q35.from_pretrained(out)
        _assert_same_state(m, m2)
        assert m2.model.rotary_emb.inv_freq.dtype == m.model.rotary_emb.inv_freq.dtype
        with torch.no_grad():
            assert torch.equal(m(_ids()).logits, m2(_ids()).logits), dtype


def test_saved_config_drops_a_source_quantization_config(tmp_path):
    m = _quantized("llama")
    m.config.quantization_config = {"quant_method": "gguf", "gguf_file": "x.gguf"}
    qc = json.loads((q35.save_pretrained(m, tmp_path / "q") / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "q35" and "gguf_file" not in qc


def test_unregistered_transformers_refuses_instead_of_loading_random_weights(tmp_path):
    """A plain transformers load (q35's quantizer not registered) must fail loudly: the packed payload is stored
    as each layer's uint8 `weight`, whose shape cannot fit nn.Linear."""
    import subprocess
    import sys

    out = q35.save_pretrained(_quantized("llama"), tmp_path / "q")
    code = ("import transformers; transformers.AutoModelForCausalLM.from_pretrained(%r); print('LOADED')" % str(out))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "LOADED" not in r.stdout
    assert "mismatch" in (r.stderr + r.stdout).lower()


def test_unsupported_architecture_is_one_clear_error():
    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50)
    gpt2 = transformers.AutoModelForCausalLM.from_config(cfg)
    with pytest.raises(ValueError, match=r"unsupported architecture 'gpt2'.*llama, mistral, qwen2"):
        models.quantize_model(gpt2, models.QuantConfig(importance=False, scale_format="f16"))


def test_quantize_model_is_atomic():
    """A bad layer (NaN weight) fails the whole conversion and leaves every layer of the model as it was."""
    m = _model("llama", 7)
    with torch.no_grad():
        m.model.layers[1].mlp.down_proj.weight[3, 5] = float("nan")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match=r"model.layers.1.mlp.down_proj: .*NaN"):
        models.quantize_model(m, models.QuantConfig(group_size=32), _calibration(), progress=False)
    assert not models.q35_layers(m)
    after = m.state_dict()
    assert set(after) == set(before) and all(torch.equal(before[k], after[k], ) or k.endswith("down_proj.weight")
                                             for k in before)


def test_config_needs_calibration_when_it_uses_importance():
    with pytest.raises(ValueError, match="needs calibration"):
        models.quantize_model(_model("llama"), models.QuantConfig(group_size=32))
    with pytest.raises(ValueError, match="needs importance"):
        models.QuantConfig(importance=False, permute=True)


def test_cli_quantize_perplexity_and_generate_on_a_local_model(tmp_path):
    """`q35 quantize --model DIR` on a saved tiny Mistral: options are honoured (never silently ignored) and the
    directory loads back."""
    src = tmp_path / "src"
    _model("mistral", 9).save_pretrained(src)
    from q35 import cli

    out = tmp_path / "out"
    assert cli.main(["quantize", str(out), "--model", str(src), "--group-size", "32", "--scale-format", "f16",
                     "--no-importance"]) == 0
    qc = json.loads((out / "config.json").read_text())["quantization_config"]
    assert qc["config"]["group_size"] == 32 and qc["config"]["scale_format"] == "f16"
    assert {s["group_size"] for s in qc["layers"].values()} == {32}
    assert isinstance(checkpoint.from_pretrained(out).model.layers[0].mlp.up_proj, q35.Q35Linear)
    with pytest.raises(SystemExit):                    # argparse's one-line usage error, before any work
        cli.main(["quantize", str(out), "--model", str(src), "--group-size", "30"])
    assert cli.main(["quantize", str(out), "--model", str(src)]) == 1       # no tokenizer to calibrate: one line
