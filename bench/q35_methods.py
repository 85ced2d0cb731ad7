"""q35 configurations as table methods, quantized on the Fortran path (q35), with honest all-in sizes.

Each method maps one float32 matrix W[N, K] to a `bench.baselines.Quantized`: the dequantized matrix plus the
bytes of every stored array (payload, scales/zeros or row scales + packed group codes, permutation), taken from
the encoder's own size accounting (`q35.encoded_nbytes`, checked against serialized bytes by the tests).
Importance-aware methods need per-input-channel importance (mean squared activation on calibration text), which
`collect_input_importance` measures with forward hooks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

import q35
from bench.baselines import Quantized


@dataclass(frozen=True)
class Q35Config:
    name: str
    group_size: int | None
    scale_format: str = "f16"
    use_importance: bool = False
    permute: bool = False
    perplexity: bool = True     # evaluated in the perplexity table (False: RMSE table only, to bound runtime)

    def describe(self) -> str:
        parts = [f"group {self.group_size or 'row'}",
                 "binary16 scale+zero, min-max (SPEC §3)" if self.scale_format == "f16"
                 else "compact 10-bit group codes, error-minimising search (SPEC §8)"]
        if self.use_importance:
            parts.append("activation-weighted error")
        if self.permute:
            parts.append("important channels on 4-bit lanes (stored permutation)")
        return "; ".join(parts)


# The plain min-max format at several group sizes, then the improvements of SPEC §8 one at a time.
CONFIGS = [
    Q35Config("q35 g64 minmax", 64, perplexity=False),
    Q35Config("q35 g128 minmax", 128),
    Q35Config("q35 row minmax", None),
    Q35Config("q35 g128 compact", 128, "compact"),
    Q35Config("q35 g128 compact+imp", 128, "compact", use_importance=True),
    Q35Config("q35 g192 compact+imp", 192, "compact", use_importance=True),
    Q35Config("q35 g224 compact+imp+perm", 224, "compact", use_importance=True, permute=True),
    Q35Config("q35 g128 compact+imp+perm", 128, "compact", use_importance=True, permute=True),
    Q35Config("q35 g64 compact+imp+perm", 64, "compact", use_importance=True, permute=True),
]
BY_NAME = {c.name: c for c in CONFIGS}


def quantize_matrix(w: np.ndarray, cfg: Q35Config, importance: np.ndarray | None = None) -> Quantized:
    if cfg.use_importance and importance is None:
        raise ValueError(f"{cfg.name} needs calibration importance for this layer")
    qt = q35.quantize(w, cfg.group_size, scale_format=cfg.scale_format,
                         importance=importance if cfg.use_importance else None, permute=cfg.permute)
    sizes = q35.encoded_nbytes(*qt.shape, qt.group_size, cfg.scale_format, qt.perm is not None)
    storage = {k: v for k, v in sizes.items() if k != "total" and v}
    if sizes["total"] != qt.nbytes:
        raise RuntimeError("q35 size accounting disagrees with the QTensor")
    return Quantized(cfg.name, q35.dequantize(qt), storage, cfg.describe())


def method(cfg: Q35Config, importance: Mapping[str, np.ndarray] | None = None) -> Callable[[str, np.ndarray], Quantized]:
    """A (layer name, W) -> Quantized function for one config; importance maps layer names to channel weights."""
    def run(name: str, w: np.ndarray) -> Quantized:
        imp = None if importance is None else importance.get(name)
        return quantize_matrix(w, cfg, imp)
    return run


def collect_input_importance(model, windows, layer_names) -> dict[str, np.ndarray]:
    """Mean squared input activation per input channel of each named nn.Linear, over token windows.

    `windows` is an iterable of 1-D token-id tensors; `layer_names` are module names in model.named_modules().
    """
    import torch

    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    modules = dict(model.named_modules())
    hooks = []

    def make_hook(name):
        def hook(_module, inputs, _output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()
            sums[name] = sums.get(name, 0) + (x * x).sum(0)
            counts[name] = counts.get(name, 0) + x.shape[0]
        return hook

    for name in layer_names:
        hooks.append(modules[name].register_forward_hook(make_hook(name)))
    try:
        with torch.inference_mode():
            for ids in windows:
                model(ids.reshape(1, -1))
    finally:
        for h in hooks:
            h.remove()
    return {name: (sums[name] / counts[name]).float().numpy() for name in layer_names}
