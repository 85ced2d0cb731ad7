"""q35: a 3.5-bit LLM weight quantizer (SPEC.md), computed by Fortran kernels and checked against a pure-Python
reference.

    import q35
    qt = q35.quantize(w, 128)            # QTensor: packed codes + binary16 scales/zeros
    y = q35.matmul(x, qt)                # fused x @ dequantize(qt).T
    q35.reference.quantize(w, 128)       # the same bits, in pure Python
    qt = q35.quantize_gptq(w, h, 128)    # error-compensating (GPTQ-style, SPEC §9), h = XᵀX/n of the inputs

The layers, lowest first: `q35.format` (the vocabulary and input rules), `q35.reference` (pure Python) and
`q35.fast` (the compiled kernels), `q35.torch` (layer, whole models, checkpoints, calibration, transformers),
`q35.eval` (perplexity), `q35.cli`. Everything is imported on first use: `import q35` needs only numpy, and
`q35.format` and `q35.reference` work where the compiled extension is missing.
"""
from __future__ import annotations

import importlib

from . import _aliases
from .format import (DEFAULT_GROUP_SIZE, PAYLOAD_BITS_PER_WEIGHT, QTensor, all_in_bits_per_weight,
                     encoded_nbytes)

__version__ = "0.3.0"

_aliases.register()          # `import q35.nn` & co. (0.2 names) keep working for one release

# name -> the module that defines it, imported on first attribute access (PEP 562)
_LAZY = {
    **dict.fromkeys(["quantize", "quantize_gptq", "dequantize", "matmul", "pack_codes", "unpack_codes",
                     "kernel_constants", "KernelWeights", "kernel_weights", "matmul_kernel"], "q35.fast"),
    **dict.fromkeys(["Q35Linear", "dequantize_torch"], "q35.torch.layer"),
    **dict.fromkeys(["QuantConfig", "DEFAULT_CONFIG"], "q35.torch.config"),
    **dict.fromkeys(["quantize_model", "q35_layers", "model_weight_bytes"], "q35.torch.models"),
    **dict.fromkeys(["save_pretrained", "from_pretrained"], "q35.torch.checkpoint"),
}
_SUBPACKAGES = ("format", "reference", "fast", "torch", "eval", "fetch", "cli")

__all__ = ["QTensor", "all_in_bits_per_weight", "encoded_nbytes", "DEFAULT_GROUP_SIZE", "PAYLOAD_BITS_PER_WEIGHT",
           *_LAZY, *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"q35.{name}")
    if name in _aliases.ALIASES:
        return importlib.import_module(f"q35.{name}")
    raise AttributeError(f"module 'q35' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
