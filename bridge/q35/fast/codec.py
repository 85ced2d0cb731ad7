"""Quantize, dequantize, matmul, pack and unpack (SPEC §3-§5, §8) computed by the Fortran kernels.

Every input is validated by `q35.format.checks` (the rules of SPEC §7) before it reaches Fortran. The results are bit
for bit those of `q35.reference` (the equivalence suite checks it), except `matmul`, which is within SPEC §5's
float32 bound.
"""
from __future__ import annotations

import numpy as np

from ..format import DEFAULT_A8_BLOCK, DEFAULT_GROUP_SIZE, QTensor, num_groups, payload_bytes_per_row, unpermute_columns
from ..format.checks import check_codes, check_packed, check_x, prepare_quantize
from .extension import check_status, default_threads, ext, thread_count
from .gemm import kernel_weights, matmul_kernel

__all__ = ["quantize", "dequantize", "matmul", "pack_codes", "unpack_codes"]


def binary16_exact(a: np.ndarray, what: str) -> np.ndarray:
    """A kernel's float32 output that must hold binary16 values (scales, zeros, row scales), as float16."""
    h = np.ascontiguousarray(a).astype(np.float16)
    if not np.array_equal(h.astype(np.float32), a):
        raise RuntimeError(f"kernel returned {what} that are not binary16 values (kernel bug)")
    return h


def quantize(weight, group_size: int | None = DEFAULT_GROUP_SIZE, *, scale_format: str = "f16",
             importance=None, permute: bool = False) -> QTensor:
    """SPEC §3 ("f16": min-max grid) or §8 ("compact": importance-weighted search); see q35.reference.quantize."""
    w, g, imp, perm = prepare_quantize(weight, group_size, scale_format, importance, permute)
    n_rows, k = w.shape
    ng, p = num_groups(k, g), payload_bytes_per_row(k)
    gk = min(g, k)         # a group wider than the row is one group of K columns (keeps the int32 kernel args small)
    if scale_format == "f16":
        packed, scales, zeros, info = ext.q35_quantize(w.T, gk, ng, p)
        check_status(info, "q35_quantize")
        return QTensor.from_stored(np.ascontiguousarray(packed.T).view(np.uint8), (n_rows, k), g,
                                   scales=binary16_exact(scales.T, "scales"), zeros=binary16_exact(zeros.T, "zeros"),
                                   perm=perm)
    packed, row_scales, group_codes, info = ext.q35_quantize_compact(w.T, imp, gk, ng, p, default_threads())
    check_status(info, "q35_quantize_compact")
    return QTensor.from_stored(np.ascontiguousarray(packed.T).view(np.uint8), (n_rows, k), g,
                               row_scales=binary16_exact(row_scales, "row scales"),
                               group_codes=np.ascontiguousarray(group_codes.T).astype(np.uint16), perm=perm)


def dequantize(qt: QTensor, *, threads: int | None = None) -> np.ndarray:
    """Ŵ[N, K] float32, bit-exact (SPEC §5). threads: rows split over this many threads (None: every CPU this
    process may run on); the result does not depend on it."""
    kw = kernel_weights(qt)
    w, info = ext.q35_dequantize(kw.packed, kw.scales, kw.zeros, kw.shape[1], kw.group_size, thread_count(threads))
    check_status(info, "q35_dequantize")
    return unpermute_columns(np.ascontiguousarray(w.T), qt.perm)


def matmul(x, qt: QTensor, *, activations: str = "float", threads: int | None = None,
           a8_block: int = DEFAULT_A8_BLOCK) -> np.ndarray:
    """y = x @ dequantize(qt).T for x of shape [K] or [B, K]. activations="float" (default): within SPEC §5's
    bound; "a8": int8 activations per block of `a8_block` columns, bit-identical to q35.reference.matmul_a8
    (SPEC §5.1). threads: None = every CPU this process may run on; results do not depend on it."""
    kw = kernel_weights(qt)
    return matmul_kernel(check_x(x, kw.shape[1]), kw, activations=activations, threads=threads, a8_block=a8_block)


def pack_codes(codes) -> np.ndarray:
    """Per-weight codes (1-D row or 2-D rows; even columns 0..15, odd 0..7) -> uint8 payload."""
    arr = check_codes(codes)
    p = payload_bytes_per_row(arr.shape[-1])
    if arr.size == 0:                                   # no rows: an empty payload of the right width
        return np.zeros(arr.shape[:-1] + (p,), dtype=np.uint8)
    rows = arr.reshape(-1, arr.shape[-1]).astype(np.int32)
    packed, info = ext.q35_pack(rows.T, p)
    check_status(info, "q35_pack")
    return np.ascontiguousarray(packed.T).view(np.uint8).reshape(arr.shape[:-1] + (-1,))


def unpack_codes(packed, n: int) -> np.ndarray:
    """uint8 payload (1-D row or 2-D rows of 7·ceil(n/16) bytes) -> per-weight codes (uint8)."""
    arr = check_packed(packed, n)
    if arr.size == 0:
        return np.zeros(arr.shape[:-1] + (int(n),), dtype=np.uint8)
    rows = arr.reshape(-1, arr.shape[-1])
    codes, info = ext.q35_unpack(rows.view(np.int8).T, int(n))
    check_status(info, "q35_unpack")
    return np.ascontiguousarray(codes.T).astype(np.uint8).reshape(arr.shape[:-1] + (int(n),))
