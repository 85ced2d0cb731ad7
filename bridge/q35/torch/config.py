"""q35 configurations: how a whole model's block linears are quantized (no torch needed to read or write one).

:data:`DEFAULT_CONFIG` is what ``q35 quantize`` uses: the best configuration the tables measured at ≤ 3.6 all-in
bits per weight (docs/quality.md: the row "q35 g224 gptq lane_act+perm", 3.599 bpw on SmolLM2): SPEC §9
error compensation in "lane_act" order, compact grids of 224 columns, importance permutation, calibration on the
default 8,192 tokens.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from .. import format as fmt
from ..format.integers import check_group_size, check_positive_int

__all__ = ["QuantConfig", "DEFAULT_CONFIG", "METHODS"]

# how each group's grid is chosen: "minmax" (SPEC §3, binary16 scale and zero from the group's range), "search"
# (SPEC §8, compact grids chosen by an importance-weighted error search), "gptq" (SPEC §9, either grid with error
# compensation)
METHODS = ("minmax", "search", "gptq")
_GRID_OF = {"minmax": "f16", "search": "compact"}


@dataclass(frozen=True)
class QuantConfig:
    """One q35 configuration for every block linear.

    method "minmax": SPEC §3 (scale_format "f16": each group's range gives its binary16 scale and zero); "search":
    SPEC §8 (scale_format "compact": error-minimising search, weighted by each input channel's mean squared
    activation when ``importance``); "gptq": SPEC §9 error compensation with per-layer Hessians, on either grid. ``permute`` stores a permutation that puts the most important channels on
    the 4-bit lanes (SPEC §8). Calibration runs on ``calib_windows_per_doc`` windows of each calibration text.
    """
    method: str = "gptq"
    group_size: int | None = 224
    scale_format: str = "compact"
    importance: bool = True
    permute: bool = True
    gptq: dict = field(default_factory=lambda: {"order": "lane_act", "damp": 0.01})   # q35.quantize_gptq options
    calib_windows_per_doc: int = 2

    def __post_init__(self):
        check_group_size(self.group_size)
        for flag in ("importance", "permute"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        if not isinstance(self.gptq, dict):
            raise ValueError(f"gptq options must be a mapping, got {type(self.gptq).__name__}")
        check_positive_int(self.calib_windows_per_doc, "calib_windows_per_doc")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.scale_format not in fmt.SCALE_FORMATS:
            raise ValueError(f"scale_format must be one of {fmt.SCALE_FORMATS}, got {self.scale_format!r}")
        if _GRID_OF.get(self.method, self.scale_format) != self.scale_format:
            raise ValueError(f"method {self.method!r} works on scale_format {_GRID_OF[self.method]!r}, got "
                             f"{self.scale_format!r} (min-max: 'f16'; search: 'compact'; gptq: either)")
        if self.permute and not self.importance:
            raise ValueError("permute=True orders channels by importance: it needs importance=True (SPEC §8)")
        if self.importance and self.scale_format == "f16" and not self.permute:
            raise ValueError("importance weights the compact search (SPEC §8); the f16 min-max mode has no search "
                             "to weight: use scale_format='compact', permute=True or importance=False")

    @property
    def needs_calibration(self) -> bool:
        return self.importance or self.method == "gptq"

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "QuantConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown q35 configuration fields {sorted(unknown)}")
        d = dict(d)
        if d.get("method") == "search" and d.get("scale_format", cls.scale_format) == "f16":
            d["method"] = "minmax"        # q35 0.2 called the min-max mode "search"; its checkpoints still load
        return cls(**d)

    def describe(self) -> str:
        parts = [self.method, f"group {self.group_size or 'row'}", self.scale_format]
        if self.importance:
            parts.append("importance-weighted")
        if self.permute:
            parts.append("permuted")
        return ", ".join(parts)


DEFAULT_CONFIG = QuantConfig()
