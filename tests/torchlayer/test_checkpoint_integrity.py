"""Regression tests of past file defects: a q35 model directory that was corrupted, edited or swapped never
loads silently; malformed metadata is one ValueError naming the field; nothing is allocated for a size the
metadata merely claims."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import q35
from q35.torch import checkpoint
from tiny_models import assert_same_state, quantized

WEIGHTS, CONFIG = checkpoint.WEIGHTS_NAME, checkpoint.CONFIG_NAME


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny LLaMA (tied embeddings) in the default mode plus a permutation, saved once; tests work on copies."""
    model = quantized("llama", q35.QuantConfig(group_size=32, permute=True), seed=11)
    out = q35.save_pretrained(model, tmp_path_factory.mktemp("saved") / "q")
    return out, q35.from_pretrained(out)


@pytest.fixture
def copy(saved, tmp_path):
    out = tmp_path / "q"
    shutil.copytree(saved[0], out)
    return out


def _flip_tensor_bit(path, name, index, bit):
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])
    start = 8 + header_len + header[name]["data_offsets"][0]
    data = bytearray(raw)
    data[start + index] ^= 1 << bit
    path.write_bytes(bytes(data))


def _edit_config(path, edit):
    cfg = json.loads((path / CONFIG).read_text())
    edit(cfg)
    (path / CONFIG).write_text(json.dumps(cfg))


TENSORS = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.row_scales",
           "model.layers.0.mlp.up_proj.group_codes", "model.layers.1.self_attn.o_proj.perm",
           "model.norm.weight", "model.layers.0.input_layernorm.weight", "model.embed_tokens.weight",
           "model.layers.1.self_attn.v_proj.weight"]


@pytest.mark.parametrize("name", TENSORS)
@pytest.mark.parametrize("bit", [0, 4, 7])
def test_every_single_bit_flip_is_detected(copy, name, bit):
    _flip_tensor_bit(copy / WEIGHTS, name, 1, bit)
    with pytest.raises(ValueError, match=f"tensor {name} is corrupted"):
        q35.from_pretrained(copy)


def test_group_size_edit_with_the_same_group_count_is_detected(copy):
    def edit(cfg):
        spec = cfg["quantization_config"]["layers"]["model.layers.0.self_attn.q_proj"]
        assert spec["group_size"] == 32 and spec["shape"][1] == 64      # 2 groups of 32, or of 48
        spec["group_size"] = 48
    _edit_config(copy, edit)
    with pytest.raises(ValueError, match="config.json does not match"):
        q35.from_pretrained(copy)


def test_alias_to_another_layer_is_refused_even_unverified(copy):
    st = load_file(str(copy / WEIGHTS))
    del st["model.layers.0.self_attn.o_proj.weight"]
    save_file(st, str(copy / WEIGHTS), metadata={"format": "q35", "q35_format_version": "1"})
    _edit_config(copy, lambda cfg: cfg["quantization_config"]["aliases"].update(
        {"model.layers.0.self_attn.o_proj.weight": "model.layers.0.self_attn.q_proj.weight"}))
    with pytest.raises(ValueError, match="is not a pair of tied tensors"):
        q35.from_pretrained(copy, verify=False)


def test_swapped_tensors_are_detected(copy):
    st = load_file(str(copy / WEIGHTS))
    a, b = "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight"
    st[a], st[b] = st[b], st[a]
    meta = dict(json.loads((copy / WEIGHTS).read_bytes()[8:8 + int.from_bytes((copy / WEIGHTS).read_bytes()[:8],
                                                                               "little")])["__metadata__"])
    save_file(st, str(copy / WEIGHTS), metadata=meta)
    with pytest.raises(ValueError, match="corrupted"):
        q35.from_pretrained(copy)


@pytest.mark.parametrize("edit", [lambda c: c.update(rms_norm_eps=1e-3), lambda c: c.update(rope_theta=5.0),
                                  lambda c: c["quantization_config"]["config"].update(permute=False)])
def test_config_edits_are_detected(copy, edit):
    _edit_config(copy, edit)
    with pytest.raises(ValueError, match="config.json does not match"):
        q35.from_pretrained(copy)


def test_claimed_huge_shapes_are_refused_before_any_allocation(copy):
    """The file is ~100 KB; a layer spec claiming [100000, 60000] (~2.6 GB packed) must be refused without trying
    to allocate it: run under an address-space limit of current + 1 GiB."""
    _edit_config(copy, lambda c: c["quantization_config"]["layers"]["model.layers.0.mlp.up_proj"].update(
        shape=[100000, 60000]))
    code = ("import resource, sys, torch, q35\n"
            "vm = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))\n"
            "try:\n    q35.from_pretrained(sys.argv[1], verify=False)\n"
            "except ValueError as e:\n    print('ValueError:', e)\n")
    r = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True)
    assert r.returncode == 0 and "ValueError:" in r.stdout and "disagree with the model config" in r.stdout, \
        r.stdout + r.stderr[-2000:]


MALFORMED = [
    ("missing group_size", lambda c: c["quantization_config"]["layers"]["model.layers.0.mlp.up_proj"].pop(
        "group_size"), r"layers\['model.layers.0.mlp.up_proj'\]: missing field 'group_size'"),
    ("missing model_type", lambda c: c.pop("model_type"), "missing field 'model_type'"),
    ("string number", lambda c: c["quantization_config"]["layers"]["model.layers.0.mlp.up_proj"].update(
        group_size="1.0"), r"group_size: expected an integer, got '1.0'"),
    ("list for a mapping", lambda c: c["quantization_config"].update(layers=[1, 2]), "layers: expected dict"),
    ("typo in a layer name", lambda c: c["quantization_config"]["layers"].update(
        {"model.layers.0.senf_attn.q_proj": c["quantization_config"]["layers"].pop(
            "model.layers.0.self_attn.q_proj")}), "'model.layers.0.senf_attn.q_proj' is not a block linear"),
    ("unknown architecture", lambda c: c.update(model_type="pipeline"), "model_type 'pipeline' is not a supported"),
    ("wrong method", lambda c: c["quantization_config"].update(quant_method="gptq"), "quant_method: 'gptq'"),
    ("future version", lambda c: c["quantization_config"].update(format_version=2), "format_version: 2"),
    ("bad q35 config", lambda c: c["quantization_config"]["config"].update(group_size=30), "multiple of 16"),
    ("bool shape", lambda c: c["quantization_config"]["layers"]["model.layers.0.mlp.up_proj"].update(
        shape=[True, 64]), r"shape: expected \[N, K\]"),
]


@pytest.mark.parametrize("what,edit,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_metadata_is_one_valueerror_naming_the_field(copy, what, edit, message):
    _edit_config(copy, edit)
    with pytest.raises(ValueError, match=message):
        q35.from_pretrained(copy, verify=False)


@pytest.mark.parametrize("keep", [0, 7, 100, 5000, -1000])
def test_truncated_weights_file_is_one_clear_error(copy, keep):
    raw = (copy / WEIGHTS).read_bytes()
    (copy / WEIGHTS).write_bytes(raw[:keep] if keep >= 0 else raw[:len(raw) + keep])
    with pytest.raises(ValueError, match="truncated or corrupted|not a q35"):
        q35.from_pretrained(copy)


def test_unverified_load_still_checks_structure_and_is_identical(saved):
    out, reference = saved
    assert_same_state(reference, q35.from_pretrained(out, verify=False))
    with torch.no_grad():
        assert torch.isfinite(reference(torch.arange(5)[None]).logits).all()
