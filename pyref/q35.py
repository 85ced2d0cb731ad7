"""The q35 reference implementation: SPEC.md written as plain Python, one function per definition.

It exists to be obviously right, not fast: scalars are Python ints and binary64 floats, loops are explicit.
Names match the Lean definitions in lean/Q35/*.lean (snake_case in both). numpy is only the container for
inputs and outputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .validate import check_codes, check_group_size, check_qtensor, check_weight, check_x

# --- format constants (SPEC §1, §4) -------------------------------------------------------------------------
LO4, HI4 = 0, 15          # 4-bit code range, even lanes
LO3, HI3 = 0, 7           # 3-bit code range, odd lanes
BITS_EVEN, BITS_ODD = 4, 3
PAIR_BITS = BITS_EVEN + BITS_ODD          # 7
PAIRS_PER_BLOCK = 8
BLOCK_BYTES = PAIR_BITS * PAIRS_PER_BLOCK // 8   # 7
WEIGHTS_PER_BLOCK = 2 * PAIRS_PER_BLOCK          # 16
PAYLOAD_BITS_PER_WEIGHT = 8 * BLOCK_BYTES / WEIGHTS_PER_BLOCK  # 3.5
SCALE_BITS = ZERO_BITS = 16               # binary16 scale and zero per group
DEFAULT_GROUP_SIZE = 128
F16_MAX = 65504.0
MIN_SCALE = 2.0 ** -24                    # smallest positive binary16 subnormal
LATTICE_MAX = 15                          # lattice codes L lie in [0, 15]


# --- sizes (SPEC §4) ----------------------------------------------------------------------------------------
def effective_group_size(in_features: int, group_size: int | None) -> int:
    """`None`/0 means one group per row (g = K)."""
    return in_features if not group_size else group_size


def num_groups(in_features: int, group_size: int | None) -> int:
    g = effective_group_size(in_features, group_size)
    return -(-in_features // g)


def payload_bytes_per_row(in_features: int) -> int:
    """P = 7·ceil(K/16) (Lean: `packed_length`)."""
    return BLOCK_BYTES * -(-in_features // WEIGHTS_PER_BLOCK)


def encoded_nbytes(out_features: int, in_features: int, group_size: int | None) -> dict[str, int]:
    groups = out_features * num_groups(in_features, group_size)
    sizes = {"payload": out_features * payload_bytes_per_row(in_features),
             "scales": groups * SCALE_BITS // 8, "zeros": groups * ZERO_BITS // 8}
    sizes["total"] = sum(sizes.values())
    return sizes


def all_in_bits_per_weight(in_features: int, group_size: int | None) -> float:
    """56·ceil(K/16)/K + 32·ceil(K/g)/K: payload, padding, scale and zero, per weight."""
    sizes = encoded_nbytes(1, in_features, group_size)
    return 8 * sizes["total"] / in_features


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
        v |= c << (PAIR_BITS * i)
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
    from .validate import check_packed
    arr = check_packed(packed, n)
    rows = [unpack_row(r, n) for r in arr.reshape(-1, arr.shape[-1]).tolist()]
    return np.array(rows, dtype=np.uint8).reshape(arr.shape[:-1] + (n,))


# --- whole matrices (SPEC §3–§6) ----------------------------------------------------------------------------
@dataclass(frozen=True)
class QTensor:
    """A q35-encoded matrix: payload, binary16 scales/zeros, shape (N, K) and the effective group size."""
    packed: np.ndarray       # uint8 [N, 7·ceil(K/16)]
    scales: np.ndarray       # float16 [N, G]
    zeros: np.ndarray        # float16 [N, G]
    shape: tuple[int, int]
    group_size: int

    @property
    def nbytes(self) -> int:
        return int(self.packed.nbytes + self.scales.nbytes + self.zeros.nbytes)

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.nbytes / (self.shape[0] * self.shape[1])


def quantize(weight, group_size: int | None = DEFAULT_GROUP_SIZE) -> QTensor:
    w = check_weight(weight)
    n_rows, k = w.shape
    g = effective_group_size(k, check_group_size(group_size))
    rows, scales, zeros = [], [], []
    for row in w.astype(np.float64).tolist():
        codes, row_s, row_z = [], [], []
        for start in range(0, k, g):
            values = row[start:start + g]
            z, s = group_params(values)
            codes += [quantize_value(v, z, s, start + i) for i, v in enumerate(values)]
            row_s.append(s)
            row_z.append(z)
        rows.append(pack_row(codes))
        scales.append(row_s)
        zeros.append(row_z)
    return QTensor(np.array(rows, dtype=np.uint8).reshape(n_rows, payload_bytes_per_row(k)),
                   np.array(scales, dtype=np.float16), np.array(zeros, dtype=np.float16), (n_rows, k), g)


def dequantize_rows(qt: QTensor) -> list[list[float]]:
    """ŵ as binary64 values that are exactly the binary32 results (SPEC §5)."""
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
    return np.array(dequantize_rows(qt), dtype=np.float32).reshape(qt.shape)


def matmul(x, qt: QTensor) -> np.ndarray:
    """y = x @ dequantize(qt).T: each entry is math.fsum of exact binary64 products, rounded to binary32."""
    w_hat = dequantize_rows(qt)
    xa = check_x(x, qt.shape[1])
    out = [[math.fsum(xv * wv for xv, wv in zip(xrow, wrow)) for wrow in w_hat]
           for xrow in xa.reshape(-1, qt.shape[1]).astype(np.float64).tolist()]
    with np.errstate(over="ignore"):
        y = np.array(out, dtype=np.float32)
    return y.reshape(xa.shape[:-1] + (qt.shape[0],))
