"""Stored sizes of a q35 encoding (SPEC §4, §8): payload, scale storage and permutation, per part and all-in."""
from __future__ import annotations

from .constants import (BLOCK_BYTES, GROUP_CODE_BITS, MAX_PERMUTED_COLUMNS, PERM_BITS, ROW_SCALE_BITS, SCALE_BITS,
                        SCALE_FORMATS, WEIGHTS_PER_BLOCK, ZERO_BITS)
from .integers import check_group_size, check_positive_int


# --- sizes (SPEC §4, §8) ----------------------------------------------------------------------------------
def _check_sizes(out_features, in_features, group_size) -> None:
    """The size functions' arguments: positive integer shape and a group size by SPEC §7's rule."""
    check_positive_int(out_features, "out_features")
    check_positive_int(in_features, "in_features")
    check_group_size(group_size, in_features)


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


