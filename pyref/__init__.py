"""`q35.reference`: the pure-Python reference of the q35 format (SPEC.md), same API as `q35`, slow and
obviously right. Its function names match the Lean definitions in lean/Q35/*.lean."""
from .a8 import a8_pieces, matmul_a8, quantize_activations  # noqa: F401
from .core import *  # noqa: F401,F403
from . import gptq
from .gptq import quantize_gptq
from .core import (QTensor, all_in_bits_per_weight, dequantize, encoded_nbytes, matmul, pack_codes, quantize,
                   unpack_codes)

__all__ = ["QTensor", "quantize", "quantize_gptq", "gptq", "dequantize", "matmul", "matmul_a8", "pack_codes",
           "unpack_codes", "all_in_bits_per_weight", "encoded_nbytes"]
