"""The integer-activation matmul (W3.5·A8) of SPEC §5.1, written as plain Python: exact integer sums and a fixed
sequence of binary64 operations, so that any implementation that follows SPEC §5.1 returns the same bits.

Names follow SPEC §5.1: `quantize_activations` (per-block int8 codes and block scales), `a8_pieces` (the column
ranges on which one integer sum is taken), `matmul_a8` (the whole product).
"""
from __future__ import annotations

import math

import numpy as np

from q35.format import DEFAULT_A8_BLOCK, MAX_A8_BLOCK, WEIGHTS_PER_BLOCK, QTensor
from q35.format.checks import check_a8_block, check_qtensor, check_x

from .core import lattice_code, unpack_row

A8_MAX = 127     # activation codes lie in [-127, 127]


def quantize_block(values: list[float]) -> tuple[list[int], float]:
    """One activation block (binary32 values as binary64): codes q = clamp(floor(x·(127/m) + 0.5), -127, 127)
    with m = max|x|, and the block scale dx = m / 127 (both quotients rounded once in binary64); m = 0 gives
    codes 0 and dx = 0."""
    m = max(abs(v) for v in values)
    if m == 0.0:
        return [0] * len(values), 0.0
    inv = A8_MAX / m
    codes = [max(-A8_MAX, min(A8_MAX, math.floor(v * inv + 0.5))) for v in values]
    return codes, m / A8_MAX


def quantize_activations(x_row: list[float], block: int) -> tuple[list[int], list[float]]:
    """A row of x -> (codes for every column, one scale per block of `block` columns from column 0)."""
    codes: list[int] = []
    scales: list[float] = []
    for start in range(0, len(x_row), block):
        c, dx = quantize_block(x_row[start:start + block])
        codes += c
        scales.append(dx)
    return codes, scales


def a8_pieces(k: int, group_size: int, block: int) -> list[tuple[int, int, int, int]]:
    """(first column, end column, weight group, activation block) of every intersection of a weight group with an
    activation block, in column order."""
    bounds = sorted(set(range(0, k, group_size)) | set(range(0, k, block)) | {k})
    return [(c0, c1, c0 // group_size, c0 // block) for c0, c1 in zip(bounds[:-1], bounds[1:])]


def matmul_a8(x, qt: QTensor, block: int = DEFAULT_A8_BLOCK) -> np.ndarray:
    """y = x @ W_hat.T with int8 activations (SPEC §5.1). Per output: acc = 0.0 (binary64); for each piece in
    column order, with I = Σ q·L and S = Σ q (exact integers): acc = acc + dx·(s·I + z·S), each operation
    rounded once in binary64 (s·I and z·S are exact); y = f32(acc)."""
    check_qtensor(qt)
    block = check_a8_block(block)
    n_rows, k = qt.shape
    xa = check_x(x, k)
    if qt.perm is not None:
        xa = xa[..., qt.perm.astype(np.intp)]
    pieces = a8_pieces(k, qt.group_size, block)
    lattice = [[lattice_code(c, col) for col, c in enumerate(unpack_row(qt.packed[n].tolist(), k))]
               for n in range(n_rows)]
    s_rows, z_rows = qt.scales.astype(np.float64).tolist(), qt.zeros.astype(np.float64).tolist()
    out = []
    for x_row in xa.reshape(-1, k).astype(np.float64).tolist():
        q, dx = quantize_activations(x_row, block)
        sums = [sum(q[c0:c1]) for c0, c1, _, _ in pieces]
        y_row = []
        for n in range(n_rows):
            acc = 0.0
            for (c0, c1, j, a), xs in zip(pieces, sums):
                isum = sum(qc * lc for qc, lc in zip(q[c0:c1], lattice[n][c0:c1]))
                acc = acc + dx[a] * (s_rows[n][j] * isum + z_rows[n][j] * xs)
            y_row.append(acc)
        out.append(y_row)
    with np.errstate(over="ignore"):
        y = np.array(out, dtype=np.float32)
    return y.reshape(xa.shape[:-1] + (n_rows,))


assert MAX_A8_BLOCK * A8_MAX * 15 * 128 < 2**31 and MAX_A8_BLOCK % WEIGHTS_PER_BLOCK == 0
