"""q35: a 3.5-bit LLM weight quantizer (SPEC.md), computed by Fortran kernels and checked against a pure-Python
reference.

    import q35
    qt = q35.quantize(w, 128)            # QTensor: packed codes + binary16 scales/zeros
    y = q35.matmul(x, qt)                # fused x @ dequantize(qt).T
    q35.reference.quantize(w, 128)       # the same bits, in pure Python
    qt = q35.quantize_gptq(w, h, 128)    # error-compensating (GPTQ-style, SPEC §9), h = XᵀX/n of the inputs

The torch layer and whole-model functions (`Q35Linear`, `QuantConfig`, `quantize_model`, `save_pretrained`,
`from_pretrained`) are imported on first use, so `import q35` needs only numpy.
"""
from __future__ import annotations

import importlib

from .fast import dequantize, matmul, pack_codes, quantize, unpack_codes
from .format import (DEFAULT_GROUP_SIZE, PAYLOAD_BITS_PER_WEIGHT, QTensor, all_in_bits_per_weight,
                     encoded_nbytes)
from .gptq import quantize_gptq
from .kernels import KernelWeights, kernel_constants, kernel_weights, matmul_kernel

__version__ = "0.2.0"

# name -> submodule that defines it; imported on first attribute access (PEP 562)
_LAZY = {
    "reference": None,
    "Q35Linear": "nn", "dequantize_torch": "nn",
    "QuantConfig": "config", "DEFAULT_CONFIG": "config", "quantize_model": "models", "q35_layers": "models",
    "model_weight_bytes": "models",
    "save_pretrained": "checkpoint", "from_pretrained": "checkpoint",
    "calibration": None, "checkpoint": None, "config": None, "data": None, "hf": None, "models": None, "nn": None,
    "perplexity": None,
}

__all__ = ["QTensor", "quantize", "quantize_gptq", "dequantize", "matmul", "pack_codes", "unpack_codes", "all_in_bits_per_weight",
           "encoded_nbytes", "DEFAULT_GROUP_SIZE", "PAYLOAD_BITS_PER_WEIGHT", "kernel_constants", "KernelWeights",
           "kernel_weights", "matmul_kernel", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'q35' has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
    return module if _LAZY[name] is None else getattr(module, name)
