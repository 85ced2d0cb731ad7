"""The matrix products (fused float and A8 kernels, tiled BLAS path) and the one place that knows the kernels'
argument layout.

Layout: Python's C-ordered arrays are handed to Fortran as transposed views (W[N, K] is w(k, n), packed[N, P] is
packed(p, n), ...), never copied into the wrong order. :func:`kernel_weights` validates a QTensor once and keeps it
in that layout; :func:`matmul_kernel` then runs the fused kernel with only the cheap checks on x, which is what
`q35.matmul` does on every call and what the torch layer does with its cached weights.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import format as fmt
from ..format.checks import check_a8_block, check_activations, check_qtensor
from .extension import check_status, ext, thread_count


class KernelWeights(NamedTuple):
    """A validated QTensor in the kernels' layout (views of the QTensor's arrays where the dtype allows)."""
    packed: np.ndarray       # int8 (P, N) Fortran view of packed[N, P]
    scales: np.ndarray       # float32 (G, N)
    zeros: np.ndarray        # float32 (G, N)
    shape: tuple[int, int]
    group_size: int
    perm: np.ndarray | None  # intp gather index for x, or None


def kernel_weights(qt: fmt.QTensor) -> KernelWeights:
    """Validate `qt` (SPEC §6) and lay it out for the kernels: done once per weight."""
    check_qtensor(qt)
    perm = None if qt.perm is None else qt.perm.astype(np.intp)
    shape = tuple(int(v) for v in qt.shape)
    # a group wider than the row is one group of K columns: the kernels get min(g, K) (int32 arguments)
    return KernelWeights(qt.packed.view(np.int8).T, np.ascontiguousarray(qt.scales, dtype=np.float32).T,
                         np.ascontiguousarray(qt.zeros, dtype=np.float32).T, shape,
                         min(int(qt.group_size), shape[1]), perm)


# Batches of at least this many rows take the float path as dequantize-a-row-tile-then-BLAS (TILE_ROWS rows at a
# time, so the float32 tile stays cache-resident) instead of the fused kernel, whose cost grows with every row of x
# while the tiles' dequantization is paid once per call. Measured (one thread, interleaved medians,
# `python -m bench.gemv_bench --crossover`, bench/results/bench/crossover.md): with the vectorised dequantize the
# tiled path wins from 4-8 rows on SmolLM2's shapes and from 8 rows on 4096x4096, the fused kernel below.
BLAS_MIN_BATCH = 8
TILE_ROWS = 256
# Above this |x| the float kernel's binary32 group sums could overflow (K·15·|x| must stay below 3.4e38): x is
# scaled by a power of two first (exact for every element that stays normal) and y scaled back.
_FLOAT_SAFE_ABS = 2.0 ** 100


def quantize_activations(x: np.ndarray, block: int = fmt.DEFAULT_A8_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """SPEC §5.1 step 1 for float32 x of shape [K] or [B, K]: (int8 codes like x, float64 block scales [.., nblocks])."""
    block = check_a8_block(block)
    x2 = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, x.shape[-1])
    nab = -(-x2.shape[1] // block)
    q, dx, info = ext.q35_quantize_a8(x2.T, block, nab)
    check_status(info, "q35_quantize_a8")
    return np.ascontiguousarray(q.T).reshape(x.shape), np.ascontiguousarray(dx.T).reshape(x.shape[:-1] + (nab,))


def _numpy_tile_product(x2: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    np.matmul(x2, w, out=out)


def float_tiled_blas(x2: np.ndarray, kw: KernelWeights, nt: int = 1, tile_product=None) -> np.ndarray:
    """The float path for large batches: W_hat in TILE_ROWS-row tiles (dequantized on nt threads) times a BLAS
    product. x2: finite float32 [B, K] in stored column order (matmul_kernel's job). ``tile_product(x2, w, out)``
    writes x2 @ w into out (w: the tile as a Fortran (K, rows) array); default numpy's matmul, whose BLAS keeps its
    own threads (the torch layer passes torch's, so torch.set_num_threads governs it)."""
    n, k = kw.shape
    product = tile_product or _numpy_tile_product
    y = np.empty((x2.shape[0], n), np.float32)
    for n0 in range(0, n, TILE_ROWS):
        n1 = min(n, n0 + TILE_ROWS)
        w, info = ext.q35_dequantize(kw.packed[:, n0:n1], kw.scales[:, n0:n1], kw.zeros[:, n0:n1], k, kw.group_size,
                                     nt)
        check_status(info, "q35_dequantize")
        product(x2, w, y[:, n0:n1])
    return y


def float_fused(x2: np.ndarray, kw: KernelWeights, nt: int = 1, amax: float | None = None) -> np.ndarray:
    """The fused float kernel on nt threads (same x2 contract as float_tiled_blas); x beyond 2**100 in magnitude is
    scaled by a power of two first so that binary32 group sums cannot overflow. amax: max |x2| when the caller
    already has it."""
    if amax is None:
        amax = float(np.max(np.abs(x2))) if x2.size else 0.0
    if amax > _FLOAT_SAFE_ABS:
        e = int(np.frexp(amax)[1]) - 64
        y = float_fused(np.ldexp(x2, -e).astype(np.float32), kw, nt)
        with np.errstate(over="ignore"):
            return np.ldexp(y.astype(np.float64), e).astype(np.float32)
    y, info = ext.q35_gemm(x2.T, kw.packed, kw.scales, kw.zeros, kw.group_size, nt)
    check_status(info, "q35_gemm")
    return np.ascontiguousarray(y.T)


def matmul_kernel(xa: np.ndarray, kw: KernelWeights, *, activations: str = "float", threads: int | None = None,
                  a8_block: int = fmt.DEFAULT_A8_BLOCK, tile_product=None) -> np.ndarray:
    """y = xa @ dequantize(W).T for a float32 C-ordered xa of shape [K] or [B, K] (already checked by
    `validate.check_x` or built by the caller as such); non-finite x is reported by the kernel.

    activations="float" (default): within SPEC §5's bound of the exact product: the fused float32 kernel for
    batches below BLAS_MIN_BATCH rows, dequantized row tiles times numpy's BLAS from there on.
    activations="a8": x quantized to int8 per block of `a8_block` columns, exact integer sums (SPEC §5.1),
    bit-identical to `q35.reference.matmul_a8`. threads (every path: the fused kernels, and the dequantization of
    the BLAS tiles; numpy's BLAS keeps its own threads): output rows are split over this many threads (None: the
    CPUs this process may run on); the result does not depend on it. tile_product: see float_tiled_blas."""
    if xa.dtype != np.float32 or not xa.flags.c_contiguous or xa.ndim not in (1, 2) or xa.shape[-1] != kw.shape[1]:
        raise ValueError(f"matmul_kernel: expected C-contiguous float32 x of shape [{kw.shape[1]}] or "
                         f"[B, {kw.shape[1]}], got {xa.dtype} {xa.shape}")
    check_activations(activations)
    nt = thread_count(threads)
    if xa.ndim == 2 and xa.shape[0] == 0:              # an empty batch: an empty result, as the reference gives
        return np.zeros((0, kw.shape[0]), dtype=np.float32)
    if kw.perm is not None:
        xa = np.ascontiguousarray(xa[..., kw.perm])
    x2 = xa.reshape(-1, kw.shape[1])
    if activations == "a8":
        y, info = ext.q35_gemm_a8(x2.T, kw.packed, kw.scales, kw.zeros, kw.group_size, check_a8_block(a8_block), nt)
        check_status(info, "q35_gemm_a8")
        y = np.ascontiguousarray(y.T)
    else:
        amax = float(np.max(np.abs(x2)))       # one pass over x: NaN/Inf check and the fused kernel's scaling
        if not np.isfinite(amax):
            raise ValueError("matmul_kernel: x contains NaN/Inf")
        if x2.shape[0] >= BLAS_MIN_BATCH:
            y = float_tiled_blas(x2, kw, nt, tile_product)
        else:
            y = float_fused(x2, kw, nt, amax)
    return y[0] if xa.ndim == 1 else y
