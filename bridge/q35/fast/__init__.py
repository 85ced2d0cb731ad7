"""`q35.fast`: the q35 API (SPEC.md) computed by the Fortran kernels, bit for bit the results of `q35.reference`
(matmul: within SPEC §5's bound; matmul with int8 activations: bit for bit).

Importing it loads the compiled extension (`q35.fast.extension`), with one clear ImportError when it is missing.
"""
from .codec import dequantize, matmul, pack_codes, quantize, unpack_codes
from .extension import default_threads, kernel_constants
from .gptq import quantize_gptq
from .gemm import KernelWeights, kernel_weights, matmul_kernel

__all__ = ["quantize", "quantize_gptq", "dequantize", "matmul", "pack_codes", "unpack_codes", "kernel_constants",
           "KernelWeights", "kernel_weights", "matmul_kernel", "default_threads"]
