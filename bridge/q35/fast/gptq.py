"""Error-compensating quantization (SPEC §9, GPTQ/OBQ-style) on the Fortran path: `q35.quantize_gptq`.

Given a layer's weight W[N, K] and the Hessian H = XᵀX/n of its calibration inputs (`q35.torch.calibration.collect_stats(
..., hessian=True)`), columns are quantized one at a time in a chosen order and each rounding error is spread over
the columns not yet quantized, weighted by the inverse Hessian's Cholesky factor, so the layer's output error on
calibration-like inputs stays small. The result is an ordinary QTensor (binary16 or compact grids, optional
permutation): every kernel runs it unchanged. Bit for bit the same as `q35.reference.gptq.quantize_gptq`.
"""
from __future__ import annotations

import numpy as np

from ..format import DEFAULT_GROUP_SIZE, QTensor, payload_bytes_per_row
from ..format.gptq_inputs import DEFAULT_DAMP, ORDERS, prepare_gptq
from ..format.integers import check_positive_int
from .codec import binary16_exact
from .extension import check_status, ext, thread_count

__all__ = ["quantize_gptq", "ORDERS", "DEFAULT_DAMP"]


def _check(info: int, damp: float) -> None:
    try:
        check_status(info, "quantize_gptq")
    except ValueError as exc:              # the Hessian's codes: say which damping failed
        raise ValueError(f"{exc} (damp={damp})") from None


def quantize_gptq(weight, hessian, group_size: int | None = DEFAULT_GROUP_SIZE, *, scale_format: str = "compact",
                  importance=None, permute: bool = False, order="lane_act", damp: float = DEFAULT_DAMP,
                  block_size: int = 16, threads: int | None = None) -> QTensor:
    """Quantize W[N, K] with error compensation (SPEC §9).

    hessian: float64 [K, K] second moment of the layer's inputs (symmetric, finite, diagonal >= 0).
    group_size, scale_format ("compact" or "f16"), importance (grid-search weights; default: the Hessian's
    diagonal, i.e. the mean squared activation), permute (important channels on the 4-bit lanes): as
    `q35.quantize`. order: "lane_act" (decreasing diagonal times the lane's squared step: 3-bit lanes count 4x;
    best measured), "act" (decreasing diagonal, GPTQ's act-order), "natural", "odd_first" (3-bit lanes first, so
    the finer 4-bit lanes absorb their error), "odd_first_act", "even_first", or an explicit permutation of the
    stored columns. damp: added to the diagonal as a fraction of its mean. block_size (rows per work unit) and threads
    (default: the usable CPUs; effective when the extension is built with OpenMP) never change the result."""
    bs = check_positive_int(block_size, "block_size")
    nt = thread_count(threads)
    inp = prepare_gptq(weight, hessian, group_size, scale_format, importance, permute, order, damp)
    ut, info = ext.q35_gptq_factor(inp.hessian.T)
    _check(info, damp)
    n_rows, k = inp.weight.shape
    g = inp.group_size
    gk = min(g, k)         # a group wider than the row is one group of K columns (keeps the int32 argument small)
    ng, p = -(-k // g), payload_bytes_per_row(k)
    packed, scales, zeros, row_scales, group_codes, info = ext.q35_gptq_quantize(
        inp.weight.T, ut, inp.order, inp.importance, gk, ng, p, int(scale_format == "compact"), bs, nt)
    _check(info, damp)
    packed = np.ascontiguousarray(packed.T).view(np.uint8)
    if scale_format == "f16":
        return QTensor.from_stored(packed, (n_rows, k), g, scales=binary16_exact(scales.T, "scales"),
                                   zeros=binary16_exact(zeros.T, "zeros"), perm=inp.perm)
    return QTensor.from_stored(packed, (n_rows, k), g, row_scales=binary16_exact(row_scales, "row scales"),
                               group_codes=np.ascontiguousarray(group_codes.T).astype(np.uint16), perm=inp.perm)
