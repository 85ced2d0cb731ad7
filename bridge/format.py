"""The q35 format's vocabulary (SPEC §1, §4, §6, §8): constants, sizes, the QTensor container and the stored
layout of the optional modes. Both the pure-Python reference (`q35.reference`) and the Fortran fast path build
on this module, as ggml-quants.c and its reference build on ggml-common.h; it imports neither of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- constants (SPEC §1, §4) ------------------------------------------------------------------------------
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
SCALE_FORMATS = ("f16", "compact")
SC_MAX, ZP_MAX = 63, 15                   # compact: 6-bit scale code 1..63, 4-bit zero point 0..15 (SPEC §8)
GROUP_CODE_BITS = 10
ROW_SCALE_BITS = 16
PERM_BITS = 16                            # a stored column permutation costs 16 bits per input channel
MAX_PERMUTED_COLUMNS = 2 ** PERM_BITS - 1
# integer-activation matmul (SPEC §5.1): activations quantized to int8 per block of this many columns
DEFAULT_A8_BLOCK = 128
MAX_A8_BLOCK = 4096                       # keeps every kernel sum below 2**31 (SPEC §5.1)
ACTIVATIONS = ("float", "a8")


# --- sizes (SPEC §4, §8) ----------------------------------------------------------------------------------
def _check_sizes(out_features, in_features, group_size) -> None:
    """The size functions' arguments: positive integer shape; group size None/0, K, or a positive multiple of 16."""
    for name, v in (("out_features", out_features), ("in_features", in_features)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    g = group_size
    if g is None or (isinstance(g, (int, np.integer)) and not isinstance(g, (bool, np.bool_))
                     and (g == 0 or g == in_features or (g > 0 and g % WEIGHTS_PER_BLOCK == 0))):
        return
    raise ValueError(f"group_size must be None/0 (one group per row), K={in_features} or a positive multiple of 16, "
                     f"got {g!r}")


def effective_group_size(in_features: int, group_size: int | None) -> int:
    """`None`/0 means one group per row (g = K)."""
    return in_features if not group_size else group_size


def num_groups(in_features: int, group_size: int | None) -> int:
    g = effective_group_size(in_features, group_size)
    return -(-in_features // g)


def payload_bytes_per_row(in_features: int) -> int:
    """P = 7·ceil(K/16) (Lean: `packed_length`)."""
    return BLOCK_BYTES * -(-in_features // WEIGHTS_PER_BLOCK)


def group_code_bytes_per_row(n_groups: int) -> int:
    """Compact group codes: 10 bits per group, a row's codes packed into ceil(10·G/8) bytes (SPEC §8)."""
    return -(-GROUP_CODE_BITS * n_groups // 8)


def encoded_nbytes(out_features: int, in_features: int, group_size: int | None, scale_format: str = "f16",
                   permuted: bool = False) -> dict[str, int]:
    """Serialized bytes of each part (SPEC §4, §8): payload, scales, zeros (or row scales + group codes), perm."""
    _check_sizes(out_features, in_features, group_size)
    n_groups = num_groups(in_features, group_size)
    sizes = {"payload": out_features * payload_bytes_per_row(in_features)}
    if permuted and in_features > MAX_PERMUTED_COLUMNS:
        raise ValueError(f"a permutation of {in_features} columns cannot be stored (uint16, at most "
                         f"{MAX_PERMUTED_COLUMNS})")
    if scale_format == "f16":
        sizes["scales"] = out_features * n_groups * SCALE_BITS // 8
        sizes["zeros"] = out_features * n_groups * ZERO_BITS // 8
    elif scale_format == "compact":
        sizes["row_scales"] = out_features * ROW_SCALE_BITS // 8
        sizes["group_codes"] = out_features * group_code_bytes_per_row(n_groups)
    else:
        raise ValueError(f"scale_format must be one of {SCALE_FORMATS}, got {scale_format!r}")
    sizes["perm"] = in_features * PERM_BITS // 8 if permuted else 0
    sizes["total"] = sum(sizes.values())
    return sizes


def all_in_bits_per_weight(in_features: int, group_size: int | None, scale_format: str = "f16",
                           out_features: int = 1, permuted: bool = False) -> float:
    """Everything stored, per weight: payload + padding + scale/zero storage (+ permutation, which is per matrix,
    so it depends on out_features)."""
    sizes = encoded_nbytes(out_features, in_features, group_size, scale_format, permuted)
    return 8 * sizes["total"] / (out_features * in_features)


# --- the container (SPEC §6) ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class QTensor:
    """A q35-encoded matrix: payload, per-group scales/zeros, shape (N, K) and the effective group size.

    scale_format "f16": scales/zeros are the stored binary16 arrays. "compact": the stored parameters are
    row_scales (binary16 [N]) and group_codes (sc | zp << 6, [N, G]); scales/zeros are their exact binary32
    expansion (d·sc, −zp·d·sc) kept for the kernels and not counted in nbytes. perm (uint16 [K]) is the
    optional column permutation: stored column i holds original column perm[i].
    """
    packed: np.ndarray       # uint8 [N, 7·ceil(K/16)]
    scales: np.ndarray       # float16 [N, G] ("f16") or float32 [N, G] ("compact")
    zeros: np.ndarray
    shape: tuple[int, int]
    group_size: int
    scale_format: str = "f16"
    row_scales: np.ndarray | None = None
    group_codes: np.ndarray | None = None
    perm: np.ndarray | None = None

    def __eq__(self, other) -> bool:
        """Same encoding: equal metadata and bit-identical arrays (same dtypes)."""
        if not isinstance(other, QTensor):
            return NotImplemented
        if (tuple(self.shape), self.group_size, self.scale_format) != \
                (tuple(other.shape), other.group_size, other.scale_format):
            return False
        for field in ("packed", "scales", "zeros", "row_scales", "group_codes", "perm"):
            a, b = getattr(self, field), getattr(other, field)
            if (a is None) != (b is None):
                return False
            if a is not None:
                a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
                if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                    return False
        return True

    __hash__ = None          # mutable arrays inside: not hashable

    @property
    def nbytes(self) -> int:
        """Serialized size: payload + scale storage + permutation (SPEC §4, §8)."""
        return encoded_nbytes(*self.shape, self.group_size, self.scale_format, self.perm is not None)["total"]

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.nbytes / (self.shape[0] * self.shape[1])


# --- stored layout of the optional modes (SPEC §8) --------------------------------------------------------
def expand_compact(row_scales: np.ndarray, group_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact binary32 scales d·sc and zeros −zp·d·sc (17 and 21 significant bits)."""
    d = row_scales.astype(np.float64)[:, None]
    sc, zp = (group_codes & 0x3F).astype(np.float64), (group_codes >> 6).astype(np.float64)
    return (d * sc).astype(np.float32), (-(zp * (d * sc))).astype(np.float32)


def pack_group_code_rows(codes: np.ndarray) -> np.ndarray:
    """[N, G] 10-bit group codes -> [N, ceil(10·G/8)] bytes: each row a little-endian bitstream, code i at bits
    10i..10i+9 (SPEC §8; the vectorised form of the reference's pack_group_codes)."""
    codes = np.asarray(codes, dtype=np.uint16)
    n, g = codes.shape
    bits = ((codes[:, :, None] >> np.arange(GROUP_CODE_BITS, dtype=np.uint16)) & 1).astype(np.uint8)
    bits = bits.reshape(n, g * GROUP_CODE_BITS)
    pad = 8 * group_code_bytes_per_row(g) - bits.shape[1]
    bits = np.concatenate([bits, np.zeros((n, pad), np.uint8)], axis=1)
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_group_code_rows(data: np.ndarray, n_groups: int) -> np.ndarray:
    """Inverse of :func:`pack_group_code_rows`: [N, ceil(10·G/8)] bytes -> [N, G] uint16 codes."""
    data = np.asarray(data, dtype=np.uint8)
    bits = np.unpackbits(data, axis=1, bitorder="little")[:, :n_groups * GROUP_CODE_BITS]
    weights = (1 << np.arange(GROUP_CODE_BITS)).astype(np.uint16)
    return (bits.reshape(data.shape[0], n_groups, GROUP_CODE_BITS).astype(np.uint16) * weights).sum(
        axis=2, dtype=np.uint16)


def importance_permutation(importance: np.ndarray) -> np.ndarray:
    """Columns by decreasing importance (stable), the first half to even (4-bit) slots, the rest to odd slots.
    perm[i] = the original column stored at column i. `importance` must already be validated (1-D, finite)."""
    order = sorted(range(len(importance)), key=lambda c: -float(importance[c]))  # sorted() is stable
    half = -(-len(order) // 2)
    perm = [0] * len(order)
    perm[0::2], perm[1::2] = order[:half], order[half:]
    return np.array(perm, dtype=np.uint16)


def unpermute_columns(stored: np.ndarray, perm) -> np.ndarray:
    """Stored column order -> original column order (`Ŵ[:, perm] = Ŵ_stored`)."""
    if perm is None:
        return stored
    out = np.empty_like(stored)
    out[:, perm.astype(np.intp)] = stored
    return out
