"""The q35 container (SPEC §6) and the stored layout of the optional modes (SPEC §8): compact grids, permutation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import GROUP_CODE_BITS
from .sizes import encoded_nbytes, group_code_bytes_per_row

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

    @classmethod
    def from_stored(cls, packed: np.ndarray, shape, group_size: int, *, scales: np.ndarray | None = None,
                    zeros: np.ndarray | None = None, row_scales: np.ndarray | None = None,
                    group_codes: np.ndarray | None = None, perm: np.ndarray | None = None) -> "QTensor":
        """The one way to assemble a QTensor from stored arrays (quantizers, reference, torch layer, loaders):
        "f16" from binary16 `scales` and `zeros`; "compact" from `row_scales` (binary16) and `group_codes`
        (uint16 sc | zp << 6), whose exact binary32 expansion it computes. Validation is
        `q35.format.checks.check_qtensor`'s job."""
        shape = tuple(int(v) for v in shape)
        if row_scales is None:
            return cls(packed, scales, zeros, shape, group_size, "f16", perm=perm)
        s, z = expand_compact(row_scales, group_codes)
        return cls(packed, s, z, shape, group_size, "compact", row_scales, group_codes, perm)

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
