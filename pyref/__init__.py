"""Pure-Python reference of the q35 format (SPEC.md). Same API as `bridge`, slow and obviously right."""
from .q35 import *  # noqa: F401,F403
from .q35 import (QTensor, all_in_bits_per_weight, dequantize, encoded_nbytes, matmul, pack_codes, quantize,
                  unpack_codes)

__all__ = ["QTensor", "quantize", "dequantize", "matmul", "pack_codes", "unpack_codes",
           "all_in_bits_per_weight", "encoded_nbytes"]
