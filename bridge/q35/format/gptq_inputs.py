"""Inputs of the error-compensating quantizer (SPEC §9.1), shared by the reference and the fast path.

Everything here is exact or done once in one place, so `q35.reference.gptq` and the Fortran kernel start from
the same binary64 numbers: the validated Hessian (symmetrised), the stored column order (optional permutation),
the processing order, and the damped Hessian laid out in processing order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .qtensor import importance_permutation
from .sizes import effective_group_size
from .checks import (as_array, first_bad_index, check_group_size, check_importance, check_mode_flags, check_scale_format,
                       check_weight)

ORDERS = ("natural", "act", "lane_act", "odd_first", "odd_first_act", "even_first")
DEFAULT_DAMP = 0.01
SYMMETRY_RTOL = 1e-6     # |H_ij - H_ji| allowed, relative to max_k H_kk (BLAS may not make X^T X bit-symmetric)


@dataclass(frozen=True)
class GptqInputs:
    weight: np.ndarray       # float32 [N, K], stored column order
    group_size: int          # effective
    importance: np.ndarray   # float32 [K], stored order (grid search weights, SPEC §8)
    perm: np.ndarray | None  # uint16 [K] stored -> original column, or None
    order: np.ndarray        # int32 [K]: stored column processed at each position
    hessian: np.ndarray      # float64 [K, K], C order: damped Hessian in processing order (A of SPEC §9.1)


def check_hessian(hessian, k: int) -> np.ndarray:
    """The Hessian H = XᵀX/n of a layer with K inputs: float64 [K, K], finite, symmetric (to SYMMETRY_RTOL),
    non-negative diagonal. Returns the exactly symmetric (H + Hᵀ)·0.5."""
    h = as_array(hessian, "hessian")
    if h.dtype.kind != "f":
        raise TypeError(f"hessian: dtype {h.dtype} is not a floating-point type (expected float64)")
    if h.shape != (k, k):
        raise ValueError(f"hessian: expected shape ({k}, {k}) for a weight with {k} input channels, got {h.shape}")
    h = np.ascontiguousarray(h, dtype=np.float64)
    bad = ~np.isfinite(h)
    if bad.any():
        raise ValueError(f"hessian: contains NaN or Inf (first at index {first_bad_index(bad)})")
    diag = np.diagonal(h)
    if (diag < 0).any():
        raise ValueError(f"hessian: negative diagonal entry at index {first_bad_index(diag < 0)[0]} (not a Gram matrix "
                         "XᵀX: not positive semidefinite)")
    asym = np.abs(h - h.T) > SYMMETRY_RTOL * float(diag.max(initial=0.0))
    if asym.any():
        i, j = first_bad_index(asym)
        raise ValueError(f"hessian: not symmetric (H[{i},{j}] = {h[i, j]!r} but H[{j},{i}] = {h[j, i]!r})")
    return (h + h.T) * 0.5


def check_damp(damp) -> float:
    if isinstance(damp, bool) or not isinstance(damp, (int, float, np.floating, np.integer)) \
            or not np.isfinite(damp) or damp < 0:
        raise ValueError(f"damp must be a finite number >= 0 (fraction of the mean Hessian diagonal), got {damp!r}")
    return float(damp)


def processing_order(order, diag: np.ndarray) -> np.ndarray:
    """SPEC §9.1 step 4: the stored columns in the order they are quantized. `diag` is the (stored-order,
    undamped) Hessian diagonal; sorts are stable, so ties keep column order."""
    k = len(diag)
    cols = np.arange(k)
    by_act = lambda c: sorted(c.tolist(), key=lambda i: -float(diag[i]))  # noqa: E731 - stable sort
    if isinstance(order, str):
        if order == "natural":
            out = cols.tolist()
        elif order == "act":
            out = by_act(cols)
        elif order == "lane_act":   # expected rounding-error energy H_kk·step²: the 3-bit step is twice the 4-bit one
            out = sorted(cols.tolist(), key=lambda i: -(float(diag[i]) * (4.0 if i % 2 else 1.0)))
        elif order == "odd_first":
            out = cols[1::2].tolist() + cols[0::2].tolist()
        elif order == "odd_first_act":
            out = by_act(cols[1::2]) + by_act(cols[0::2])
        elif order == "even_first":
            out = cols[0::2].tolist() + cols[1::2].tolist()
        else:
            raise ValueError(f"order must be one of {ORDERS} or a permutation of 0..K-1, got {order!r}")
        return np.array(out, dtype=np.int32)
    arr = as_array(order, "order")
    if arr.dtype.kind not in "iu" or arr.shape != (k,) or not np.array_equal(np.sort(arr), cols):
        raise ValueError(f"order: an explicit order must be an integer permutation of 0..{k - 1} (stored columns)")
    return arr.astype(np.int32)


def damped_hessian(h: np.ndarray, damp: float) -> np.ndarray:
    """SPEC §9.1 step 5: dead columns (H_kk = 0) get H_kk = 1, then λ = damp·(Σ_k H_kk / K), the sum taken in
    column order, is added to every diagonal entry."""
    hd = h.copy()
    k = hd.shape[0]
    total = 0.0
    for c in range(k):
        if hd[c, c] == 0.0:
            hd[c, c] = 1.0
        total += float(hd[c, c])
    lam = damp * (total / k)
    for c in range(k):
        hd[c, c] = float(hd[c, c]) + lam
    return hd


def prepare_gptq(weight, hessian, group_size, scale_format, importance, permute, order, damp) -> GptqInputs:
    """Validate every input (one clear error each) and build the SPEC §9.1 quantities."""
    w = check_weight(weight)
    k = w.shape[1]
    g = effective_group_size(k, check_group_size(group_size))
    check_scale_format(scale_format)
    h = check_hessian(hessian, k)
    dmp = check_damp(damp)
    check_mode_flags(scale_format, importance, permute)
    imp = check_importance(np.diagonal(h).astype(np.float32) if importance is None else importance, k)
    perm = None
    if permute:
        perm = importance_permutation(imp)
        p = perm.astype(np.intp)
        w, imp, h = np.ascontiguousarray(w[:, p]), np.ascontiguousarray(imp[p]), h[np.ix_(p, p)]
    pi = processing_order(order, np.diagonal(h))
    hd = damped_hessian(h, dmp)
    a = np.ascontiguousarray(hd[np.ix_(pi, pi)])
    return GptqInputs(w, g, imp, perm, pi, a)
