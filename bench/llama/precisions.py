"""Weight precisions of the benchmark: converting a model's block linears, the INT4 module, and how each precision
is named and how many bits per weight it stores (all-in, from the format table bench.formats).

Only the linears inside the transformer blocks change; embeddings, norms and lm_head keep the model dtype.
"""
from __future__ import annotations

import functools

from q35.torch.config import DEFAULT_CONFIG

from bench.formats import get_format, q35_format, shapes_bits_per_weight, torch_int4_group

from .models import block_linear_shapes

__all__ = ["PRECISIONS", "GPU_PRECISIONS", "LABEL", "DESCRIPTION", "FORMAT", "Q35_FORMAT", "bits_per_weight",
           "labelled", "block_linears", "int4_module", "convert", "weight_bytes"]

PRECISIONS = ("fp32", "bf16", "int8", "int4", "q35")
GPU_PRECISIONS = ("fp16", "bf16", "q35")
# q35 is benchmarked as deployed: the configuration `q35 quantize` uses (q35.torch.config.DEFAULT_CONFIG)
Q35_FORMAT = q35_format(DEFAULT_CONFIG.group_size, DEFAULT_CONFIG.scale_format, DEFAULT_CONFIG.permute)
LABEL = {"fp32": "FP32", "fp16": "FP16", "bf16": "BF16", "int8": "INT8 dynamic", "int4": "INT4 weight-only",
         "q35": Q35_FORMAT.label}
DESCRIPTION = {
    "fp32": "float32 weights and activations",
    "fp16": "float16 weights and activations",
    "bf16": "bfloat16 weights and activations (whole model)",
    "int8": "torch.ao dynamic quantization: int8 weights (per-channel scale), activations quantized to int8 on the "
            "fly per batch",
    "int4": "weight-only: 4-bit weights (asymmetric min-max, group 128 or 64/32 dividing K, bf16 scale and zero), "
            "bf16 activations, torch's CPU int4 kernel",
    "q35": f"q35 weight-only as `q35 quantize` writes it ({DEFAULT_CONFIG.describe()}; calibrated on the default "
           "calibration text), loaded with q35.from_pretrained; float32 activations, fused Fortran kernel "
           "(tiled dequantize + BLAS from 8 rows on; kernels on torch's thread count)"}
# the storage format of each precision's block linears (bench.formats ids)
FORMAT = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "int8-torch-dynamic", "int4": "int4-torch",
          "q35": Q35_FORMAT.id}


@functools.lru_cache(maxsize=None)
def bits_per_weight(precision: str, model: str) -> float:
    """All-in bits per weight of ``precision`` over ``model``'s block linears (codes + scales + zeros + padding)."""
    return shapes_bits_per_weight(get_format(FORMAT[precision]), block_linear_shapes(model))


def labelled(precision: str, model: str) -> str:
    """'q35 g128 (3.78 bpw)': the precision's name with its all-in bits per weight on this model."""
    return f"{LABEL[precision]} ({bits_per_weight(precision, model):.3g} bpw)"


def block_linears(model):
    import torch

    return [(n, m) for n, m in model.named_modules() if n.startswith("model.layers.") and type(m) is torch.nn.Linear]


def int4_module():
    import torch

    class Int4Linear(torch.nn.Module):
        """Weight-only INT4 (asymmetric RTN per group) through aten._weight_int4pack_mm_for_cpu, bf16 activations."""

        def __init__(self, linear, group_size: int):
            super().__init__()
            w = linear.weight.detach().float()
            n, k = w.shape
            g = group_size
            wg = w.reshape(n, k // g, g)
            lo, hi = wg.amin(-1, keepdim=True), wg.amax(-1, keepdim=True)
            scale = ((hi - lo) / 15).clamp(min=1e-8)
            q = torch.clamp(torch.round((wg - lo) / scale), 0, 15).to(torch.int32).reshape(n, k)
            zero = lo + 8 * scale                    # dequant = (q - 8) * scale + zero  (torchao convention)
            self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
            sz = torch.stack([scale.reshape(n, k // g), zero.reshape(n, k // g)], -1).transpose(0, 1)
            self.register_buffer("scales_and_zeros", sz.contiguous().to(torch.bfloat16))
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().to(torch.bfloat16))
            self.in_features, self.out_features, self.group_size = k, n, g

        def forward(self, x):
            lead = x.shape[:-1]
            y = torch._weight_int4pack_mm_for_cpu(x.reshape(-1, self.in_features).to(torch.bfloat16), self.packed,
                                                  self.group_size, self.scales_and_zeros)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*lead, self.out_features).to(x.dtype)

    return Int4Linear


def _to_int8_dynamic(model, device: str) -> dict:
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if device != "cpu":
        raise RuntimeError("INT8 dynamic quantization runs on CPU only")
    names = {n: per_channel_dynamic_qconfig for n, _ in block_linears(model)}
    quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)
    return {"kernel": f"torch.ao dynamic quantized linear (engine {torch.backends.quantized.engine})"}


def _to_int4(model, device: str) -> dict:
    import torch

    if device != "cpu":
        raise RuntimeError("the INT4 CPU kernel runs on CPU only")
    if not hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"):
        raise RuntimeError("torch has no aten._weight_int4pack_mm_for_cpu")
    cls = int4_module()
    model.to(torch.bfloat16)
    gsz = set()
    for name, mod in block_linears(model):
        g = torch_int4_group(mod.in_features)
        gsz.add(g)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, cls(mod, g))
    return {"kernel": "aten._weight_int4pack_mm_for_cpu (bf16 activations)", "group_sizes": sorted(gsz)}


def _to_q35(model, device: str) -> dict:
    """The deployed format on a model without a q35 directory (the synthetic one, random weights: speed and memory
    only): the same group size, compact scales and permutation, with the §8 search on random-token importance
    instead of GPTQ (whose Hessians at LLaMA-7B width would take minutes and change nothing that is measured)."""
    import dataclasses

    import numpy as np

    from q35.torch.calibration import CalibrationSet
    from q35.torch.models import quantize_model

    config = dataclasses.replace(DEFAULT_CONFIG, method="search", gptq={})
    vocab = model.config.vocab_size
    calib = CalibrationSet(np.random.default_rng(0).integers(0, vocab, (4, 128)), None, ["random tokens"] * 4)
    quantize_model(model, config, calib, progress=False)
    if device != "cpu":
        model.to(device)
    return {"kernel": "fused Fortran kernel" if device == "cpu" else "unfused torch unpack",
            "config": config.describe()}


def convert(model, precision: str, device: str) -> dict:
    """Convert ``model`` in place to ``precision``; returns notes (kernel, group sizes)."""
    import torch

    if precision == "fp32":
        return {}
    if precision in ("fp16", "bf16"):
        model.to(torch.float16 if precision == "fp16" else torch.bfloat16)
        return {}
    if precision == "int8":
        return _to_int8_dynamic(model, device)
    if precision == "int4":
        return _to_int4(model, device)
    if precision == "q35":
        return _to_q35(model, device)
    raise ValueError(f"unknown precision {precision}")


def weight_bytes(model) -> dict:
    """Bytes of all weights (tied once) and of the block linears alone, including quantized packed params."""
    import torch

    seen, total, block = set(), 0, 0
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.data_ptr() in seen or "inv_freq" in name:
            continue
        seen.add(t.data_ptr())
        nb = t.numel() * t.element_size()
        total += nb
        if name.startswith("model.layers.") and any(s in name for s in ("proj.",)):
            block += nb
    for name, mod in model.named_modules():       # dynamic-quantized linears hide their weights in packed params
        if hasattr(mod, "_packed_params") and hasattr(mod, "weight") and callable(mod.weight):
            w = mod.weight()
            nb = w.numel() * w.element_size()
            if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                nb += w.q_per_channel_scales().numel() * 8 + w.q_per_channel_zero_points().numel() * 8
            b = mod.bias()
            nb += 0 if b is None else b.numel() * b.element_size()
            total += nb
            block += nb
    return {"weight_bytes": total, "block_linear_bytes": block}
