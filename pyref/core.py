"""The q35 reference implementation: SPEC.md written as plain Python, one function per definition.

It exists to be obviously right, not fast: scalars are Python ints and binary64 floats, loops are explicit.
Names match the Lean definitions in lean/Q35/*.lean (snake_case in both). numpy is only the container for
inputs and outputs.
"""
from __future__ import annotations

import math

import numpy as np

from q35.format import *  # noqa: F401,F403 - the reference speaks the format's vocabulary (constants, sizes)
from q35.format import (BITS_EVEN, BLOCK_BYTES, DEFAULT_GROUP_SIZE, GROUP_CODE_BITS, HI3, HI4, LO3, LO4, MIN_SCALE,
                        PAIR_BITS, PAIRS_PER_BLOCK, SC_MAX, WEIGHTS_PER_BLOCK, ZP_MAX, QTensor,
                        group_code_bytes_per_row, payload_bytes_per_row, unpermute_columns)
from q35.format.checks import check_codes, check_packed, check_qtensor, check_x, prepare_quantize


# --- binary16 rounding (SPEC §3) ----------------------------------------------------------------------------
def _f16_ulp_exponent(x: float) -> int:
    _, e = math.frexp(x)
    return max(e - 11, -24)


def f16_down(x: float) -> float:
    """Largest binary16 value <= x (|x| <= 65504)."""
    u = _f16_ulp_exponent(x)
    return math.ldexp(float(math.floor(math.ldexp(x, -u))), u)


def f16_up(x: float) -> float:
    """Smallest binary16 value >= x (|x| <= 65504)."""
    u = _f16_ulp_exponent(x)
    return math.ldexp(float(math.ceil(math.ldexp(x, -u))), u)


# --- one group (SPEC §2, §3) --------------------------------------------------------------------------------
def group_params(values: list[float]) -> tuple[float, float]:
    """(zero, scale) of a group: z = f16_down(min), s = max(f16_up((max - z)/15), 2^-24)."""
    z = f16_down(min(values))
    s = max(f16_up((max(values) - z) / 15.0), MIN_SCALE)
    return z, s


def clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def code4(w: float, z: float, s: float) -> int:
    """Even lane: clamp(floor((w - z)/s + 0.5), 0, 15)."""
    t = (w - z) / s
    return clamp(math.floor(t + 0.5), LO4, HI4)


def code3(w: float, z: float, s: float) -> int:
    """Odd lane: clamp(floor((w - z)/s * 0.5 + 0.5), 0, 7)."""
    t = (w - z) / s
    return clamp(math.floor(t * 0.5 + 0.5), LO3, HI3)


def quantize_value(w: float, z: float, s: float, column: int) -> int:
    return code4(w, z, s) if column % 2 == 0 else code3(w, z, s)


def lattice_code(code: int, column: int) -> int:
    """L = q4 on even lanes, 2·q3 on odd lanes (SPEC §2)."""
    return code if column % 2 == 0 else 2 * code


def dequantize_value(code: int, z: float, s: float, column: int) -> float:
    """z + s·L in binary64 (exact), before the final rounding to binary32."""
    return z + s * lattice_code(code, column)


# --- pairs and blocks (SPEC §4) -----------------------------------------------------------------------------
def encode_pair(q4: int, q3: int) -> int:
    return q4 | (q3 << BITS_EVEN)


def decode_pair(c: int) -> tuple[int, int]:
    return c & 0xF, c >> BITS_EVEN


def pack_block(pair_codes: list[int]) -> list[int]:
    """8 pair codes -> 7 bytes: V = Σ c_i·2^(7i), little-endian."""
    v = 0
    for i, c in enumerate(pair_codes):
        v |= int(c) << (PAIR_BITS * i)
    return [(v >> (8 * j)) & 0xFF for j in range(BLOCK_BYTES)]


def unpack_block(block: list[int]) -> list[int]:
    """7 bytes -> 8 pair codes."""
    v = 0
    for j, b in enumerate(block):
        v |= b << (8 * j)
    return [(v >> (PAIR_BITS * i)) & 0x7F for i in range(PAIRS_PER_BLOCK)]


def pack_row(codes: list[int]) -> list[int]:
    """Per-weight codes of one row -> P = 7·ceil(K/16) bytes (padding codes 0)."""
    padded = list(codes) + [0] * (-len(codes) % WEIGHTS_PER_BLOCK)
    pairs = [encode_pair(padded[2 * i], padded[2 * i + 1]) for i in range(len(padded) // 2)]
    out: list[int] = []
    for b in range(0, len(pairs), PAIRS_PER_BLOCK):
        out += pack_block(pairs[b:b + PAIRS_PER_BLOCK])
    return out


def unpack_row(row: list[int], n: int) -> list[int]:
    """P bytes -> the first n per-weight codes."""
    codes: list[int] = []
    for b in range(0, len(row), BLOCK_BYTES):
        for c in unpack_block(row[b:b + BLOCK_BYTES]):
            codes += decode_pair(c)
    return codes[:n]


def pack_codes(codes) -> np.ndarray:
    """Per-weight codes (1-D row or 2-D rows; even columns 0..15, odd 0..7) -> uint8 payload."""
    arr = check_codes(codes)
    rows = [pack_row(r) for r in arr.reshape(-1, arr.shape[-1]).tolist()]
    out = np.array(rows, dtype=np.uint8).reshape(arr.shape[:-1] + (payload_bytes_per_row(arr.shape[-1]),))
    return out


def unpack_codes(packed, n: int) -> np.ndarray:
    """uint8 payload (1-D row or 2-D rows of 7·ceil(n/16) bytes) -> per-weight codes (uint8)."""
    arr = check_packed(packed, n)
    rows = [unpack_row(r, n) for r in arr.reshape(-1, arr.shape[-1]).tolist()]
    return np.array(rows, dtype=np.uint8).reshape(arr.shape[:-1] + (n,))


# --- compact scales, importance search, permutation (SPEC §8) ------------------------------------------------
def sq(v: float) -> float:
    return v * v


def compact_row_scale(row: list[float], g: int) -> float:
    """d = max(f16_up(max_j s0_j / 63), 2^-24) with s0_j = (max(M_j, 0) - min(m_j, 0)) / 15."""
    s0 = [(max(max(row[i:i + g]), 0.0) - min(min(row[i:i + g]), 0.0)) / 15.0 for i in range(0, len(row), g)]
    return max(f16_up(max(s0) / SC_MAX), MIN_SCALE)


def group_error(values: list[float], weights: list[float], start: int, z: float, s: float) -> float:
    """Σ a_k·(w_k − ŵ_k)² in binary64, in column order."""
    err = 0.0
    for i, (w, a) in enumerate(zip(values, weights)):
        err += a * sq(w - dequantize_value(quantize_value(w, z, s, start + i), z, s, start + i))
    return err


def search_group(values: list[float], weights: list[float], start: int, d: float) -> tuple[int, int]:
    """(sc, zp) minimising the importance-weighted squared error over the candidate grid of SPEC §8."""
    lo_v, hi_v = min(min(values), 0.0), max(max(values), 0.0)
    c0 = clamp(math.ceil((hi_v - lo_v) / 15.0 / d), 1, SC_MAX)
    best, best_err = (c0, 0), math.inf
    for sc in range(max(1, (5 * c0) // 8), min(SC_MAX, c0 + 1) + 1):
        s = d * sc
        zc = math.floor(8.0 - (lo_v + hi_v) / (2.0 * s))
        for zp in range(max(0, min(ZP_MAX, zc - 1)), min(ZP_MAX, max(0, zc + 1)) + 1):
            err = group_error(values, weights, start, -(zp * s), s)
            if err < best_err:
                best, best_err = (sc, zp), err
    return best


def encode_group_code(sc: int, zp: int) -> int:
    return sc | (zp << 6)


def decode_group_code(c: int) -> tuple[int, int]:
    return c & 0x3F, c >> 6


def pack_group_codes(codes: list[int]) -> list[int]:
    """A row's 10-bit group codes as a little-endian bitstream of ceil(10·G/8) bytes."""
    v = 0
    for i, c in enumerate(codes):
        v |= int(c) << (GROUP_CODE_BITS * i)
    return [(v >> (8 * j)) & 0xFF for j in range(group_code_bytes_per_row(len(codes)))]


def unpack_group_codes(data: list[int], n_groups: int) -> list[int]:
    v = 0
    for j, b in enumerate(data):
        v |= b << (8 * j)
    return [(v >> (GROUP_CODE_BITS * i)) & 0x3FF for i in range(n_groups)]


# --- whole matrices (SPEC §3–§6, §8) ------------------------------------------------------------------------
def quantize(weight, group_size: int | None = DEFAULT_GROUP_SIZE, *, scale_format: str = "f16",
             importance=None, permute: bool = False) -> QTensor:
    """SPEC §3 (scale_format "f16": min-max grid, binary16 scale and zero) or §8 ("compact": importance-weighted
    search over 6-bit scale codes and 4-bit zero points). permute=True stores importance_permutation(importance)."""
    w, g, imp, perm = prepare_quantize(weight, group_size, scale_format, importance, permute)
    n_rows, k = w.shape
    a = imp.astype(np.float64).tolist()
    rows, params, row_scales = [], [], []
    for row in w.astype(np.float64).tolist():
        codes, row_params = [], []
        d = compact_row_scale(row, g) if scale_format == "compact" else None
        for start in range(0, k, g):
            values = row[start:start + g]
            if d is None:
                z, s = group_params(values)
                row_params.append((s, z))
            else:
                sc, zp = search_group(values, a[start:start + g], start, d)
                s = d * sc
                z = -(zp * s)
                row_params.append(encode_group_code(sc, zp))
            codes += [quantize_value(v, z, s, start + i) for i, v in enumerate(values)]
        rows.append(pack_row(codes))
        params.append(row_params)
        row_scales.append(d)
    return assemble_qtensor(rows, params, row_scales, k, g, scale_format == "compact", perm)


def assemble_qtensor(rows: list[list[int]], params: list, row_scales: list, k: int, g: int, compact: bool,
                     perm) -> QTensor:
    """A QTensor from per-row results: packed rows, each row's (scale, zero) pairs ("f16") or group codes
    ("compact") and its row scale d (compact only)."""
    packed = np.array(rows, dtype=np.uint8).reshape(len(rows), payload_bytes_per_row(k))
    if not compact:
        par = np.array(params, dtype=np.float64)
        return QTensor.from_stored(packed, (len(rows), k), g, scales=par[..., 0].astype(np.float16),
                                   zeros=par[..., 1].astype(np.float16), perm=perm)
    return QTensor.from_stored(packed, (len(rows), k), g, row_scales=np.array(row_scales, dtype=np.float16),
                               group_codes=np.array(params, dtype=np.uint16), perm=perm)


def dequantize_rows(qt: QTensor) -> list[list[float]]:
    """ŵ (in stored column order) as binary64 values that are exactly the binary32 results (SPEC §5)."""
    check_qtensor(qt)
    n_rows, k = qt.shape
    out = []
    for n in range(n_rows):
        codes = unpack_row(qt.packed[n].tolist(), k)
        s_row, z_row = qt.scales[n].astype(np.float64).tolist(), qt.zeros[n].astype(np.float64).tolist()
        out.append([float(np.float32(dequantize_value(c, z_row[col // qt.group_size], s_row[col // qt.group_size], col)))
                    for col, c in enumerate(codes)])
    return out


def dequantize(qt: QTensor) -> np.ndarray:
    stored = np.array(dequantize_rows(qt), dtype=np.float32).reshape(qt.shape)
    return unpermute_columns(stored, qt.perm)


def matmul(x, qt: QTensor) -> np.ndarray:
    """y = x @ dequantize(qt).T: each entry is math.fsum of exact binary64 products, rounded to binary32."""
    w_hat = dequantize_rows(qt)
    xa = check_x(x, qt.shape[1])
    if qt.perm is not None:
        xa = xa[..., qt.perm.astype(np.intp)]
    out = [[math.fsum(xv * wv for xv, wv in zip(xrow, wrow)) for wrow in w_hat]
           for xrow in xa.reshape(-1, qt.shape[1]).astype(np.float64).tolist()]
    with np.errstate(over="ignore"):
        y = np.array(out, dtype=np.float32)
    return y.reshape(xa.shape[:-1] + (qt.shape[0],))
