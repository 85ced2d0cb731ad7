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
from q35.torch import checkpoint, models
from strategies import matmul_tolerance
from tiny_models import ARCHS, assert_same_state, calibration_set, ids, quantized, tiny_model

@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_default_mode_round_trip_both_loaders(arch, tmp_path):
    m = quantized(arch)
    assert set(models.q35_layers(m)) == set(n for n in dict(m.named_modules()) if n.startswith("model.layers.")
                                            and n.rsplit(".", 1)[-1].endswith("proj"))
    out = q35.save_pretrained(m, tmp_path / "q")
    cfg = json.loads((out / "config.json").read_text())
    qc = cfg["quantization_config"]
    assert qc["quant_method"] == "q35" and qc["config"] == q35.QuantConfig(group_size=32).to_dict()
    with torch.no_grad():                   # what the file holds: 2-D float tensors (embeddings) in binary16
        for p in m.parameters():
            if p.dim() == 2:
                p.copy_(p.half().float())
    m_reloaded = q35.from_pretrained(out)
    assert_same_state(m, m_reloaded)
    q35.torch.hf.register()                       # (importing q35.torch.hf registers the quantizer with transformers)
    m_hf = transformers.AutoModelForCausalLM.from_pretrained(str(out))
    assert_same_state(m, m_hf)
    x = ids()
    with torch.no_grad():
        logits = m(x).logits
        assert torch.equal(logits, m_reloaded(x).logits) and torch.equal(logits, m_hf(x).logits)
        g = m_hf.generate(x[:1], max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert g.shape == (1, x.shape[1] + 5)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_packed_layer_matches_its_dequantized_weight_in_a_real_forward(arch):
    """In the packed model's own forward pass, each Q35Linear's output equals x @ Ŵ.T + b within SPEC §5."""
    m = quantized(arch, seed=2)
    seen = {}
    hooks = [layer.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, (inp[0], out)))
             for n, layer in models.q35_layers(m).items()]
    with torch.no_grad():
        m(ids(3))
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
        m = tiny_model("llama", 5, dtype)
        models.quantize_model(m, q35.QuantConfig(group_size=32), calibration_set(), progress=False)
        out = q35.save_pretrained(m, tmp_path / str(dtype))
        assert json.loads((out / "config.json").read_text())["quantization_config"]["float_dtype"] == \
            str(dtype).removeprefix("torch.")
        m2 = q35.from_pretrained(out)
        assert_same_state(m, m2)
        assert m2.model.rotary_emb.inv_freq.dtype == m.model.rotary_emb.inv_freq.dtype
        with torch.no_grad():
            assert torch.equal(m(ids()).logits, m2(ids()).logits), dtype


def test_saved_config_drops_a_source_quantization_config(tmp_path):
    m = quantized("llama")
    m.config.quantization_config = {"quant_method": "gguf", "gguf_file": "x.gguf"}
    qc = json.loads((q35.save_pretrained(m, tmp_path / "q") / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "q35" and "gguf_file" not in qc


def test_unregistered_transformers_refuses_instead_of_loading_random_weights(tmp_path):
    """A plain transformers load (q35's quantizer not registered) must fail loudly: the packed payload is stored
    as each layer's uint8 `weight`, whose shape cannot fit nn.Linear."""
    import subprocess
    import sys

    out = q35.save_pretrained(quantized("llama"), tmp_path / "q")
    code = ("import transformers; transformers.AutoModelForCausalLM.from_pretrained(%r); print('LOADED')" % str(out))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "LOADED" not in r.stdout
    assert "mismatch" in (r.stderr + r.stdout).lower()


def test_unsupported_architecture_is_one_clear_error():
    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50)
    gpt2 = transformers.AutoModelForCausalLM.from_config(cfg)
    with pytest.raises(ValueError, match=r"unsupported architecture 'gpt2'.*llama, mistral, qwen2"):
        models.quantize_model(gpt2, q35.QuantConfig(importance=False, permute=False, scale_format="f16"))


def test_quantize_model_is_atomic():
    """A bad layer (NaN weight) fails the whole conversion and leaves every layer of the model as it was."""
    m = tiny_model("llama", 7)
    with torch.no_grad():
        m.model.layers[1].mlp.down_proj.weight[3, 5] = float("nan")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match=r"model.layers.1.mlp.down_proj: .*NaN"):
        models.quantize_model(m, q35.QuantConfig(group_size=32), calibration_set(), progress=False)
    assert not models.q35_layers(m)
    after = m.state_dict()
    assert set(after) == set(before) and all(torch.equal(before[k], after[k], ) or k.endswith("down_proj.weight")
                                             for k in before)


def test_config_needs_calibration_when_it_uses_importance():
    with pytest.raises(ValueError, match="needs calibration"):
        models.quantize_model(tiny_model("llama"), q35.QuantConfig(group_size=32))
    with pytest.raises(ValueError, match="needs importance"):
        q35.QuantConfig(importance=False, permute=True)


def test_cli_quantize_on_a_local_model(tmp_path):
    """`q35 quantize --model DIR` on a saved tiny Mistral: options are honoured (never silently ignored) and the
    directory loads back."""
    src = tmp_path / "src"
    tiny_model("mistral", 9).save_pretrained(src)
    from q35 import cli

    out = tmp_path / "out"
    assert cli.main(["quantize", str(out), "--model", str(src), "--method", "minmax", "--group-size", "32",
                     "--scale-format", "f16", "--no-importance"]) == 0
    qc = json.loads((out / "config.json").read_text())["quantization_config"]
    assert qc["config"]["group_size"] == 32 and qc["config"]["scale_format"] == "f16"
    assert {s["group_size"] for s in qc["layers"].values()} == {32}
    assert isinstance(checkpoint.from_pretrained(out).model.layers[0].mlp.up_proj, q35.Q35Linear)
    with pytest.raises(SystemExit):                    # argparse's one-line usage error, before any work
        cli.main(["quantize", str(out), "--model", str(src), "--group-size", "30"])
    assert cli.main(["quantize", str(out), "--model", str(src)]) == 1       # no tokenizer to calibrate: one line
