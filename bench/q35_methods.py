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
from q35.torch.config import QuantConfig
from q35.torch.models import quantize_weight


@dataclass(frozen=True)
class TableMethod:
    """A q35 configuration (the library's QuantConfig, as `q35 quantize` takes it) as a row of the tables."""
    name: str
    config: QuantConfig
    perplexity: bool = True     # evaluated in the perplexity table (False: RMSE table only, to bound runtime)
    heldout: bool = False       # also evaluated on the held-out text (the targets' candidates)

    @property
    def calibrated(self) -> bool:
        return self.config.needs_calibration

    def describe(self) -> str:
        c = self.config
        parts = [f"group {c.group_size or 'row'}",
                 "binary16 scale+zero, min-max (SPEC §3)" if c.scale_format == "f16"
                 else "compact 10-bit group codes, error-minimising search (SPEC §8)"]
        if c.method == "gptq":
            parts.append(f"GPTQ error compensation (SPEC §9, order {c.gptq['order']}, damp {c.gptq['damp']}; grid "
                         "search weighted by the Hessian diagonal)")
        elif c.importance:
            parts.append("activation-weighted error")
        if c.permute:
            parts.append("important channels on 4-bit lanes (stored permutation)")
        return "; ".join(parts)


def _row(name: str, group_size, scale_format="f16", importance=False, permute=False, gptq_order=None,
         **table) -> TableMethod:
    method = "gptq" if gptq_order else {"f16": "minmax", "compact": "search"}[scale_format]
    # GPTQ rows weight the grid search by the calibration's mean squared activation, as `q35 quantize` does
    config = QuantConfig(method, group_size, scale_format, importance or bool(gptq_order), permute,
                         {"order": gptq_order or "lane_act", "damp": 0.01})
    return TableMethod(name, config, **table)


# The plain min-max format, then the improvements of SPEC §8 one at a time, then GPTQ (SPEC §9). Rows marked
# perplexity=False stay in the RMSE table only (ablations; keeps `make tables` inside its time budget).
CONFIGS = [
    _row("q35 g64 minmax", 64, perplexity=False),
    _row("q35 g128 minmax", 128),
    _row("q35 row minmax", None, perplexity=False),
    _row("q35 g128 compact", 128, "compact", perplexity=False),
    _row("q35 g128 compact+imp", 128, "compact", importance=True, perplexity=False),
    _row("q35 g192 compact+imp", 192, "compact", importance=True),
    _row("q35 g224 compact+imp+perm", 224, "compact", importance=True, permute=True, perplexity=False),
    _row("q35 g64 compact+imp+perm", 64, "compact", importance=True, permute=True),
    _row("q35 g192 gptq natural", 192, "compact", gptq_order="natural", perplexity=False),
    _row("q35 g192 gptq odd_first", 192, "compact", gptq_order="odd_first", perplexity=False),
    _row("q35 g192 gptq act", 192, "compact", gptq_order="act", perplexity=False),
    _row("q35 g192 gptq lane_act", 192, "compact", gptq_order="lane_act", perplexity=False),
    _row("q35 g224 gptq lane_act+perm", 224, "compact", permute=True, gptq_order="lane_act", heldout=True),
    _row("q35 g64 gptq lane_act+perm", 64, "compact", permute=True, gptq_order="lane_act"),
]
BY_NAME = {c.name: c for c in CONFIGS}


def quantize_matrix(w: np.ndarray, method: TableMethod, stats=None) -> Quantized:
    """One matrix through the library's own per-layer quantizer (q35.torch.models.quantize_weight, what
    `q35 quantize` runs), so a row of the tables is what a user gets; ``stats`` is the layer's LayerStats."""
    try:
        qt = quantize_weight(w, method.config, stats)
    except ValueError as exc:
        raise ValueError(f"{method.name}: {exc}") from None
    sizes = q35.encoded_nbytes(*qt.shape, qt.group_size, qt.scale_format, qt.perm is not None)
    storage = {k: v for k, v in sizes.items() if k != "total" and v}
    if sizes["total"] != qt.nbytes:
        raise RuntimeError("q35 size accounting disagrees with the QTensor")
    return Quantized(method.name, q35.dequantize(qt), storage, method.describe())


def method(cfg: TableMethod, stats: Mapping | None = None) -> Callable[[str, np.ndarray], Quantized]:
    """A (layer name, W) -> Quantized function for one row; stats maps layer names to calibration statistics
    (q35.torch.calibration.LayerStats)."""
    def run(name: str, w: np.ndarray) -> Quantized:
        return quantize_matrix(w, cfg, None if stats is None else stats.get(name))
    return run
