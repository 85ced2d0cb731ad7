"""Whole models: swap a transformers LLaMA-architecture model's block linears for :class:`q35.nn.Q35Linear`,
count its bytes, and save/load it as one safetensors file.

* :func:`quantize_model` converts every ``nn.Linear`` inside ``model.model.layers`` (the transformer blocks:
  q/k/v/o and gate/up/down in LLaMA); embeddings, norms and ``lm_head`` stay as they are.
* :func:`save_quantized` / :func:`load_quantized`: one safetensors file with the buffers and the metadata (q35 format
  version, group size, the quantized layers with their shapes, the model config). Loading gives back the same
  bits (tests check every tensor).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from . import format as fmt
from .nn import Q35Linear

__all__ = ["quantize_model", "save_quantized", "load_quantized", "read_metadata", "q35_layers",
           "model_weight_bytes", "restore_nonpersistent_buffers", "FORMAT_VERSION"]

FORMAT_VERSION = 1          # SPEC.md: "The q35 format, version 1"
METADATA_FORMAT = "q35"     # safetensors metadata "format" key


def _blocks(model) -> nn.Module:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError("expected a transformers LLaMA-architecture model with model.model.layers")
    return layers


def q35_layers(model) -> dict[str, Q35Linear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, Q35Linear)}


def quantize_model(model, group_size: int | None = fmt.DEFAULT_GROUP_SIZE, prefill_rows: int | None = None,
                   verbose: bool = False) -> list[str]:
    """Replace every nn.Linear inside model.model.layers by a Q35Linear (in place). Returns the replaced names."""
    layers = _blocks(model)
    prefix = next(n for n, m in model.named_modules() if m is layers)
    targets = [(name, mod) for name, mod in layers.named_modules() if type(mod) is nn.Linear]
    done = []
    t0 = time.perf_counter()
    for name, mod in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = layers.get_submodule(parent_name) if parent_name else layers
        setattr(parent, attr, Q35Linear.from_linear(mod, group_size, prefill_rows))
        done.append(f"{prefix}.{name}")
        if verbose and len(done) % 50 == 0:
            print(f"  quantized {len(done)}/{len(targets)} linears ({time.perf_counter() - t0:.1f} s)",
                  file=sys.stderr)
    model._q35 = {"group_size": group_size, "layers": done}
    return done


def model_weight_bytes(model) -> dict[str, int]:
    """Bytes of every parameter and buffer (tied tensors counted once), split into q35 layers and the rest."""
    seen, q35, other = set(), 0, 0
    qnames = {f"{n}.{b}" for n in q35_layers(model) for b in ("packed", "scales", "zeros", "bias")}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        nb = t.numel() * t.element_size()
        if name in qnames:
            q35 += nb
        else:
            other += nb
    return {"q35": q35, "other": other, "total": q35 + other}


def _config_dict(model) -> dict:
    cfg = model.config.to_dict()
    return json.loads(json.dumps(cfg, default=str))


def save_quantized(model, path) -> Path:
    """Write the quantized model's state (tied tensors once) to a safetensors file with q35 metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    qs = q35_layers(model)
    if not qs:
        raise ValueError("model has no Q35Linear layers: run quantize_model first")
    tensors, seen = {}, {}
    aliases = {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.numel(), t.dtype) if t.numel() else None
        if key is not None and key in seen:
            aliases[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        tensors[name] = t.detach().to("cpu").contiguous()
    layers = {name: {"shape": [m.out_features, m.in_features], "group_size": m.group_size,
                     "bias": m.bias is not None} for name, m in qs.items()}
    group_sizes = sorted({m.group_size for m in qs.values()})
    meta = {
        "format": METADATA_FORMAT,
        "q35_format_version": str(FORMAT_VERSION),
        "group_size": str(getattr(model, "_q35", {}).get("group_size", group_sizes[0]) or 0),   # 0 = per row
        "q35_layers": json.dumps(layers, sort_keys=True),
        "aliases": json.dumps(aliases, sort_keys=True),
        "config": json.dumps(_config_dict(model), sort_keys=True),
        "architecture": type(model).__name__,
        "torch_dtype": "float32",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def read_metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if meta.get("format") != METADATA_FORMAT:
        raise ValueError(f"{path}: not a q35 safetensors file (metadata format={meta.get('format')!r})")
    if int(meta.get("q35_format_version", -1)) != FORMAT_VERSION:
        raise ValueError(f"{path}: q35 format version {meta.get('q35_format_version')} is not supported "
                         f"(this build reads version {FORMAT_VERSION})")
    return meta


def load_quantized(path, prefill_rows: int | None = None):
    """Rebuild the model saved by :func:`save_quantized` (same bits), in eval mode, on CPU."""
    import transformers
    from safetensors.torch import load_file

    meta = read_metadata(path)
    cfg_dict = json.loads(meta["config"])
    config = transformers.AutoConfig.for_model(cfg_dict.pop("model_type"), **cfg_dict)
    arch = getattr(transformers, meta.get("architecture", "LlamaForCausalLM"))
    with torch.device("meta"):
        model = arch(config)
    layers = json.loads(meta["q35_layers"])
    for name, spec in layers.items():
        parent_name, _, attr = name.rpartition(".")
        n, k = spec["shape"]
        setattr(model.get_submodule(parent_name), attr,
                Q35Linear(k, n, spec["bias"], spec["group_size"], prefill_rows))
    state = load_file(str(path))
    for alias, target in json.loads(meta.get("aliases", "{}")).items():
        state[alias] = state[target]
    model = model.to_empty(device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    # non-persistent buffers (e.g. rotary inv_freq) are not in the file: recompute them from the config
    missing = [m for m in missing if not _is_nonpersistent(model, m)]
    if missing or unexpected:
        raise ValueError(f"{path}: state does not match the model (missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]})")
    restore_nonpersistent_buffers(model)
    if getattr(config, "tie_word_embeddings", False) and hasattr(model, "tie_weights"):
        model.tie_weights()
    model._q35 = {"group_size": int(meta["group_size"]) or None, "layers": list(layers)}
    model.eval()
    return model


def _is_nonpersistent(model, name: str) -> bool:
    mod_name, _, buf = name.rpartition(".")
    mod = model.get_submodule(mod_name) if mod_name else model
    return buf in getattr(mod, "_non_persistent_buffers_set", set())


def restore_nonpersistent_buffers(model) -> None:
    """Rebuild the modules whose non-persistent buffers to_empty left uninitialised (rotary embeddings)."""
    for name, mod in list(model.named_modules()):
        if type(mod).__name__.endswith("RotaryEmbedding") and hasattr(mod, "config"):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, type(mod)(config=mod.config))
    leftover = [f"{n}.{b}" for n, m in model.named_modules() for b in getattr(m, "_non_persistent_buffers_set", ())
                if "RotaryEmbedding" not in type(m).__name__]
    if leftover:
        raise ValueError(f"cannot restore non-persistent buffers {leftover[:5]} after loading")
