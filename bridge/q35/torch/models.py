"""Whole models: quantize the block linears of a LLaMA-architecture transformers model to q35 in place.

:class:`QuantConfig` names a q35 configuration (the default is the best one the tables measured at ≤ 3.6 all-in
bits per weight); :func:`quantize_model` measures what it needs on calibration text (q35.torch.calibration), quantizes
every block linear, and only then swaps the :class:`~q35.torch.layer.Q35Linear` layers in, so a failure leaves the model
unchanged. Embeddings, norms and ``lm_head`` stay float.
"""
from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from .. import fast
from .. import format as fmt
from .config import DEFAULT_CONFIG, QuantConfig
from .layer import Q35Linear

__all__ = ["SUPPORTED_MODEL_TYPES", "quantize_model", "quantize_weight", "block_linears",
           "q35_layers", "set_inference", "model_weight_bytes", "check_supported", "restore_nonpersistent_buffers",
           "nonpersistent_buffer_dtypes"]

# transformers model types whose decoder blocks are LLaMA-like (attention q/k/v/o + gated MLP, all nn.Linear)
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")


def check_supported(model) -> None:
    """One clear error for a model q35 cannot quantize."""
    mtype = getattr(getattr(model, "config", None), "model_type", None)
    if mtype not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"unsupported architecture {mtype!r}: q35 quantizes LLaMA-like decoder models "
                         f"({', '.join(SUPPORTED_MODEL_TYPES)})")
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__} has no model.layers: expected a LLaMA-like causal LM")


def block_linears(model) -> dict[str, nn.Linear]:
    """{full module name: nn.Linear} of every linear layer inside the decoder blocks (model.model.layers)."""
    check_supported(model)
    layers = model.model.layers
    prefix = next(n for n, m in model.named_modules() if m is layers)
    return {f"{prefix}.{name}": mod for name, mod in layers.named_modules() if type(mod) is nn.Linear}


def q35_layers(model) -> dict[str, Q35Linear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, Q35Linear)}


def set_inference(model, activations: str | None = None, threads: int | None = None) -> None:
    """Choose how every Q35Linear of ``model`` computes: ``activations`` "float" (the default, within SPEC §5's
    bound of the exact product) or "a8" (int8 activations, SPEC §5.1); ``threads`` for the kernels."""
    from ..format.checks import check_activations
    if activations is not None:
        check_activations(activations)
    for layer in q35_layers(model).values():
        if activations is not None:
            layer.activations = activations
        layer.threads = threads


def quantize_weight(w: np.ndarray, config: QuantConfig, stats=None) -> fmt.QTensor:
    """One float32 matrix W[N, K] quantized as ``config`` says; ``stats`` is the layer's calibration statistics
    (q35.torch.calibration.LayerStats: importance, and the Hessian for GPTQ) when the configuration needs them."""
    if config.needs_calibration and (stats is None or (config.method == "gptq" and stats.hessian is None)):
        raise ValueError(f"configuration '{config.describe()}' needs calibration statistics"
                         f"{' with the Hessian' if config.method == 'gptq' else ''}")
    importance = stats.importance if (stats is not None and config.importance) else None
    if config.method == "gptq":
        from ..fast import quantize_gptq
        return quantize_gptq(w, stats.hessian, config.group_size, scale_format=config.scale_format,
                             importance=importance, permute=config.permute, **config.gptq)
    return fast.quantize(w, config.group_size, scale_format=config.scale_format, importance=importance,
                         permute=config.permute)


def quantize_model(model, config: QuantConfig = DEFAULT_CONFIG, calibration=None, progress: bool = True) -> dict:
    """Quantize every block linear of ``model`` (in place) and return a summary.

    ``calibration``: precomputed ``{layer name: LayerStats}`` (q35.torch.calibration.collect_stats), or a
    CalibrationSet of token windows to measure them on; needed when ``config.needs_calibration``. Every layer is
    quantized before any is swapped in: on error the model is unchanged.
    """
    targets = block_linears(model)
    if not targets:
        raise ValueError("the model has no nn.Linear layers in its decoder blocks (already quantized?)")
    stats = _layer_stats(model, config, calibration, list(targets), progress)
    new = {}
    for name, lin in _progress(targets.items(), "quantizing block linears", progress, len(targets)):
        w = lin.weight.detach().to("cpu", torch.float32).numpy()
        try:
            qt = quantize_weight(w, config, None if stats is None else stats[name])
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name}: {exc}") from None
        bias = None if lin.bias is None else lin.bias.detach().to("cpu", torch.float32)
        new[name] = Q35Linear.from_qtensor(qt, bias).to(lin.weight.device)
    for name, layer in new.items():           # nothing failed: swap every layer in
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, layer)
    model._q35_config = config
    n_w = sum(m.in_features * m.out_features for m in new.values())
    bits = sum(8 * fmt.encoded_nbytes(m.out_features, m.in_features, m.group_size, m.scale_format,
                                      m.perm is not None)["total"] for m in new.values())
    return {"layers": list(new), "weights": n_w, "bits_per_weight": bits / n_w, "config": config.to_dict()}


def _layer_stats(model, config, calibration, names, progress):
    if not config.needs_calibration:
        return None
    if calibration is None:
        raise ValueError(f"configuration '{config.describe()}' needs calibration statistics: pass calibration="
                         "q35.torch.calibration.calibration_windows(tokenizer) or collected stats")
    if isinstance(calibration, dict):
        missing = [n for n in names if n not in calibration]
        if missing:
            raise ValueError(f"calibration statistics lack layers {missing[:3]}")
        return calibration
    from .calibration import collect_stats
    return collect_stats(model, calibration, names, hessian=config.method == "gptq", progress=progress)


def _progress(items, desc: str, enabled: bool, total: int):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print(desc, file=sys.stderr)
        return items
    return tqdm(items, desc=desc, total=total, unit="layer", file=sys.stderr)


def model_weight_bytes(model) -> dict[str, int]:
    """Bytes of every parameter and buffer (tied tensors counted once), split into q35 layers and the rest."""
    qnames = {f"{n}.{b}" for n, m in q35_layers(model).items() for b, _ in m.named_buffers(recurse=False)}
    seen, q35, other = set(), 0, 0
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


def nonpersistent_buffer_dtypes(model) -> dict[str, str]:
    """{buffer name: dtype} of the buffers a checkpoint does not store (rotary inv_freq): a reload rebuilds them
    and must give them back the dtype they had (float32 after from_pretrained(dtype=bf16), bf16 after .to(bf16))."""
    return {f"{n}.{b}".lstrip("."): str(getattr(m, b).dtype).removeprefix("torch.")
            for n, m in model.named_modules() for b in getattr(m, "_non_persistent_buffers_set", ())
            if getattr(m, b, None) is not None}


def restore_nonpersistent_buffers(model, dtypes: dict[str, str] | None = None) -> None:
    """Rebuild the modules whose non-persistent buffers a meta-device load left uninitialised (rotary
    embeddings) and give each buffer its recorded dtype (``dtypes``, from :func:`nonpersistent_buffer_dtypes`)."""
    for name, mod in list(model.named_modules()):
        if type(mod).__name__.endswith("RotaryEmbedding") and hasattr(mod, "config"):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, type(mod)(config=mod.config))
    for full, dt in (dtypes or {}).items():
        mod_name, _, buf = full.rpartition(".")
        mod = model.get_submodule(mod_name)
        target = getattr(torch, dt, None)
        if buf not in getattr(mod, "_non_persistent_buffers_set", ()) or not isinstance(target, torch.dtype):
            raise ValueError(f"buffer_dtypes: {full!r} -> {dt!r} is not a non-persistent buffer of this model")
        setattr(mod, buf, getattr(mod, buf).to(target))
    leftover = [f"{n}.{b}" for n, m in model.named_modules() for b in getattr(m, "_non_persistent_buffers_set", ())
                if "RotaryEmbedding" not in type(m).__name__]
    if leftover:
        raise ValueError(f"cannot restore non-persistent buffers {leftover[:5]} after loading")
