"""Error-compensating (GPTQ/OBQ-style) quantization, SPEC §9, as plain Python.

The reference for the Fortran kernel fortran/q35_gptq.f90: the same binary64 operations in the same order (scalar
Python floats, explicit loops, no BLAS, no fused multiply-add), so both produce the same codes, scales and zeros.
Slow (O(K³) Python operations): small shapes only.
"""
from __future__ import annotations

import math

import numpy as np

from q35.format import DEFAULT_GROUP_SIZE, F16_MAX, QTensor
from q35.format.gptq_inputs import DEFAULT_DAMP, prepare_gptq
from q35.format.integers import check_positive_int

from .core import (assemble_qtensor, compact_row_scale, dequantize_value, encode_group_code, group_params, pack_row,
                   quantize_value, search_group)

__all__ = ["quantize_gptq", "cholesky_lower", "lower_inverse", "inverse_upper_factor", "NotPositiveDefinite"]


class NotPositiveDefinite(ValueError):
    pass


class IllConditioned(ValueError):
    pass


def cholesky_lower(b: list[list[float]]) -> list[list[float]]:
    """§9.2: L lower with B = L·Lᵀ; each entry's subtractions in increasing k."""
    k = len(b)
    lo = [[0.0] * k for _ in range(k)]
    for j in range(k):
        d = b[j][j]
        for c in range(j):
            d = d - lo[j][c] * lo[j][c]
        if not d > 0.0:
            raise NotPositiveDefinite(f"pivot {j} is {d!r}")
        lo[j][j] = math.sqrt(d)
        for i in range(j + 1, k):
            t = b[i][j]
            for c in range(j):
                t = t - lo[i][c] * lo[j][c]
            lo[i][j] = t / lo[j][j]
    return lo


def lower_inverse(lo: list[list[float]]) -> list[list[float]]:
    """§9.2: M = L⁻¹ by forward substitution, column by column: x starts at 0, x ← x − L[i][c]·M[c][j] for
    c = j … i−1, then M[i][j] = x / L[i][i]."""
    k = len(lo)
    m = [[0.0] * k for _ in range(k)]
    for j in range(k):
        m[j][j] = 1.0 / lo[j][j]
        for i in range(j + 1, k):
            x = 0.0
            for c in range(j, i):
                x = x - lo[i][c] * m[c][j]
            m[i][j] = x / lo[i][i]
    return m


def inverse_upper_factor(a: list[list[float]]) -> list[list[float]]:
    """§9.2: U upper with A⁻¹ = Uᵀ·U, from the Cholesky factor of A read backwards (B = J·A·J = L·Lᵀ gives
    U = J·L⁻¹·J)."""
    k = len(a)
    b = [[a[k - 1 - p][k - 1 - q] for q in range(k)] for p in range(k)]
    m = lower_inverse(cholesky_lower(b))
    return [[m[k - 1 - p][k - 1 - q] if q >= p else 0.0 for q in range(k)] for p in range(k)]


def _choose_grid(values: list[float], weights: list[float], start: int, d: float | None):
    """§9.3: the grid of a group from its current values: min-max (§3, values clamped to ±65504) or the
    compact search (§8 step 3). Returns (z, s, stored parameter)."""
    if not all(math.isfinite(v) for v in values):
        raise IllConditioned(f"non-finite working value in the group at column {start}")
    if d is None:
        z, s = group_params([min(max(v, -F16_MAX), F16_MAX) for v in values])
        return z, s, (s, z)
    sc, zp = search_group(values, weights, start, d)
    s = d * sc
    return -(zp * s), s, encode_group_code(sc, zp)


def quantize_row(row: list[float], u: list[list[float]], order: list[int], a: list[float], g: int,
                 compact: bool) -> tuple[list[int], list, float | None]:
    """§9.3 for one row: codes, per-group parameters, row scale (compact)."""
    k = len(row)
    v = list(row)
    d = compact_row_scale(row, g) if compact else None
    grids: list = [None] * (-(-k // g))
    codes = [0] * k
    for p, c in enumerate(order):
        j = c // g
        if grids[j] is None:
            grids[j] = _choose_grid(v[j * g:(j + 1) * g], a[j * g:(j + 1) * g], j * g, d)
        z, s, _ = grids[j]
        if not math.isfinite(v[c]):
            raise IllConditioned(f"non-finite working value at column {c}")
        q = quantize_value(v[c], z, s, c)
        codes[c] = q
        e = (v[c] - dequantize_value(q, z, s, c)) / u[p][p]
        urow = u[p]
        for pp in range(p + 1, k):
            cc = order[pp]
            v[cc] = v[cc] - e * urow[pp]
    return codes, [grid[2] for grid in grids], d


def quantize_gptq(weight, hessian, group_size: int | None = DEFAULT_GROUP_SIZE, *, scale_format: str = "compact",
                  importance=None, permute: bool = False, order="lane_act", damp: float = DEFAULT_DAMP,
                  block_size: int = 16, threads: int | None = None) -> QTensor:
    """SPEC §9: quantize W[N, K] column by column in `order`, propagating each rounding error to the columns not
    yet quantized through the upper Cholesky factor of the damped inverse Hessian. block_size and threads only
    mirror the fast path's signature (they never change the result)."""
    check_positive_int(block_size, "block_size")
    check_positive_int(threads, "threads", allow_none=True)
    inp = prepare_gptq(weight, hessian, group_size, scale_format, importance, permute, order, damp)
    try:
        u = inverse_upper_factor(inp.hessian.tolist())
    except NotPositiveDefinite as exc:
        raise ValueError(f"hessian: not positive definite after damping (damp={damp}; {exc}); raise damp") from None
    n_rows, k = inp.weight.shape
    compact = scale_format == "compact"
    order_l, a, g = inp.order.tolist(), inp.importance.astype(np.float64).tolist(), inp.group_size
    rows, params, row_scales = [], [], []
    for row in inp.weight.astype(np.float64).tolist():
        try:
            codes, par, d = quantize_row(row, u, order_l, a, g, compact)
        except IllConditioned as exc:
            raise ValueError(f"hessian: error propagation overflowed ({exc}); the Hessian is too ill-conditioned, "
                             "raise damp") from None
        rows.append(pack_row(codes))
        params.append(par)
        row_scales.append(d)
    return assemble_qtensor(rows, params, row_scales, k, g, compact, inp.perm)
