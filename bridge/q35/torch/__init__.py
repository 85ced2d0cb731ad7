"""`q35.torch`: q35 in PyTorch and transformers — the packed linear layer (`layer`), whole models (`models`,
`loading`), configurations (`config`), calibration statistics (`calibration`), checkpoints (`checkpoint`) and the
transformers quantizer (`hf`). Names are imported on first use; `q35.torch.config` needs no torch.
"""
from __future__ import annotations

import importlib

_LAZY = {
    **dict.fromkeys(["Q35Linear", "dequantize_torch"], "layer"),
    **dict.fromkeys(["QuantConfig", "DEFAULT_CONFIG", "METHODS"], "config"),
    **dict.fromkeys(["quantize_model", "q35_layers", "block_linears", "set_inference", "model_weight_bytes"],
                    "models"),
    **dict.fromkeys(["save_pretrained", "from_pretrained"], "checkpoint"),
    **dict.fromkeys(["collect_stats", "calibration_windows"], "calibration"),
    **dict.fromkeys(["load_float_model", "load_smollm2"], "loading"),
}
_MODULES = ("layer", "models", "loading", "config", "calibration", "checkpoint", "hf")
__all__ = [*_LAZY, *_MODULES]


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"q35.torch.{name}")
    if name not in _LAZY:
        raise AttributeError(f"module 'q35.torch' has no attribute {name!r}")
    return getattr(importlib.import_module(f"q35.torch.{_LAZY[name]}"), name)
