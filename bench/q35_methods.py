"""q35 configurations as table methods, quantized on the Fortran path (q35), with honest all-in sizes.

Each method maps one float32 matrix W[N, K] to a `bench.baselines.Quantized`: the dequantized matrix plus the
bytes of every stored array (payload, scales/zeros or row scales + packed group codes, permutation), taken from
the encoder's own size accounting (`q35.encoded_nbytes`, checked against serialized bytes by the tests).
Calibrated methods need each layer's statistics from q35.torch.calibration.collect_stats (importance = mean squared
activation per input channel; Hessian XᵀX/n for the error-compensating quantizer of SPEC §9).
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
    gptq: bool = False          # error-compensating quantizer (SPEC §9) with the layer's calibration Hessian
    order: str = "lane_act"     # GPTQ processing order (SPEC §9.1)
    damp: float = 0.01
    heldout: bool = False       # also evaluated on the held-out text (the targets' candidates)

    @property
    def calibrated(self) -> bool:
        return self.use_importance or self.gptq

    def describe(self) -> str:
        parts = [f"group {self.group_size or 'row'}",
                 "binary16 scale+zero, min-max (SPEC §3)" if self.scale_format == "f16"
                 else "compact 10-bit group codes, error-minimising search (SPEC §8)"]
        if self.gptq:
            parts.append(f"GPTQ error compensation (SPEC §9, order {self.order}, damp {self.damp}; grid search "
                         "weighted by the Hessian diagonal)")
        elif self.use_importance:
            parts.append("activation-weighted error")
        if self.permute:
            parts.append("important channels on 4-bit lanes (stored permutation)")
        return "; ".join(parts)


# The plain min-max format, then the improvements of SPEC §8 one at a time, then GPTQ (SPEC §9). Rows marked
# perplexity=False stay in the RMSE table only (ablations; keeps `make tables` inside its time budget).
CONFIGS = [
    Q35Config("q35 g64 minmax", 64, perplexity=False),
    Q35Config("q35 g128 minmax", 128),
    Q35Config("q35 row minmax", None, perplexity=False),
    Q35Config("q35 g128 compact", 128, "compact", perplexity=False),
    Q35Config("q35 g128 compact+imp", 128, "compact", use_importance=True, perplexity=False),
    Q35Config("q35 g192 compact+imp", 192, "compact", use_importance=True),
    Q35Config("q35 g224 compact+imp+perm", 224, "compact", use_importance=True, permute=True, perplexity=False),
    Q35Config("q35 g64 compact+imp+perm", 64, "compact", use_importance=True, permute=True),
    Q35Config("q35 g192 gptq natural", 192, "compact", gptq=True, order="natural", perplexity=False),
    Q35Config("q35 g192 gptq odd_first", 192, "compact", gptq=True, order="odd_first", perplexity=False),
    Q35Config("q35 g192 gptq act", 192, "compact", gptq=True, order="act", perplexity=False),
    Q35Config("q35 g192 gptq lane_act", 192, "compact", gptq=True, order="lane_act", perplexity=False),
    Q35Config("q35 g224 gptq lane_act+perm", 224, "compact", gptq=True, permute=True, heldout=True),
    Q35Config("q35 g64 gptq lane_act+perm", 64, "compact", gptq=True, permute=True),
]
BY_NAME = {c.name: c for c in CONFIGS}


def quantize_matrix(w: np.ndarray, cfg: Q35Config, stats=None) -> Quantized:
    """One matrix; ``stats`` is the layer's q35.torch.calibration.LayerStats (importance, Hessian) when calibrated."""
    if cfg.calibrated and (stats is None or (cfg.gptq and stats.hessian is None)):
        raise ValueError(f"{cfg.name} needs calibration statistics{' with the Hessian' if cfg.gptq else ''}")
    if cfg.gptq:
        # importance as q35.torch.models passes it (the calibration's mean squared activation = diag H up to rounding),
        # so `q35 quantize` with the same configuration reproduces this row
        qt = q35.quantize_gptq(w, stats.hessian, cfg.group_size, scale_format=cfg.scale_format,
                               importance=stats.importance, permute=cfg.permute, order=cfg.order, damp=cfg.damp)
    else:
        qt = q35.quantize(w, cfg.group_size, scale_format=cfg.scale_format,
                          importance=stats.importance if cfg.use_importance else None, permute=cfg.permute)
    sizes = q35.encoded_nbytes(*qt.shape, qt.group_size, cfg.scale_format, qt.perm is not None)
    storage = {k: v for k, v in sizes.items() if k != "total" and v}
    if sizes["total"] != qt.nbytes:
        raise RuntimeError("q35 size accounting disagrees with the QTensor")
    return Quantized(cfg.name, q35.dequantize(qt), storage, cfg.describe())


def method(cfg: Q35Config, stats: Mapping | None = None) -> Callable[[str, np.ndarray], Quantized]:
    """A (layer name, W) -> Quantized function for one config; stats maps layer names to calibration statistics
    (q35.torch.calibration.LayerStats)."""
    def run(name: str, w: np.ndarray) -> Quantized:
        return quantize_matrix(w, cfg, None if stats is None else stats.get(name))
    return run
