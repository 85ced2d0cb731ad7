"""Input rules of SPEC §7, shared by the reference and the fast path (run before any Fortran call).

Every check either returns a C-contiguous array of the dtype the kernels expect or raises
ValueError/TypeError with a message that names the argument and the problem.
"""
from __future__ import annotations

import numpy as np

from .constants import ACTIVATIONS, F16_MAX, MAX_A8_BLOCK, MAX_PERMUTED_COLUMNS, SCALE_FORMATS, WEIGHTS_PER_BLOCK
from .integers import check_group_size, check_positive_int, is_int
from .qtensor import importance_permutation
from .sizes import effective_group_size, payload_bytes_per_row

__all__ = ["check_weight", "check_group_size", "check_positive_int", "check_a8_block", "check_activations", "check_x",
           "check_codes", "check_scale_format", "check_importance", "check_packed", "check_qtensor",
           "check_mode_flags", "prepare_quantize"]

_FLOAT_KINDS = "f"


def as_array(a, name: str) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch tensor, without importing torch
        a = a.detach().cpu()
        if str(a.dtype) == "torch.bfloat16":
            a = a.float()
        a = a.numpy()
    try:
        return np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be read as an array ({exc})") from None


def first_bad_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _as_float32(a, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    arr = as_array(a, name)
    if arr.dtype.kind not in _FLOAT_KINDS:
        raise TypeError(f"{name}: dtype {arr.dtype} is not a floating-point type (expected float32; "
                        "float16/float64 are converted)")
    if arr.ndim not in ndims:
        raise ValueError(f"{name}: expected {' or '.join(f'{d}-D' for d in ndims)} array, got shape {arr.shape}")
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = first_bad_index(bad)
        raise ValueError(f"{name}: contains NaN or Inf (first at index {idx}: {arr[idx]!r}); "
                         "q35 only encodes finite values")
    return arr


def check_weight(weight) -> np.ndarray:
    w = _as_float32(weight, "weight", (2,))
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise ValueError(f"empty weight matrix (shape {w.shape}): q35 needs at least one row and one column")
    big = np.abs(w) > F16_MAX
    if big.any():
        idx = first_bad_index(big)
        raise ValueError(f"weight: magnitude {float(w[idx]):g} at index {idx} exceeds {F16_MAX:g}, the binary16 "
                         "limit of q35 zeros/scales (rescale the matrix first)")
    return w


def check_a8_block(block) -> int:
    """SPEC §5.1: the activation block is a positive multiple of 16 columns, at most MAX_A8_BLOCK."""
    if not is_int(block):
        raise TypeError(f"a8 block must be an int, got {type(block).__name__}")
    if block <= 0 or block % WEIGHTS_PER_BLOCK or block > MAX_A8_BLOCK:
        raise ValueError(f"a8 block must be a positive multiple of {WEIGHTS_PER_BLOCK} and at most {MAX_A8_BLOCK}, "
                         f"got {block}")
    return int(block)


def check_activations(activations) -> str:
    if activations not in ACTIVATIONS:
        raise ValueError(f"activations must be one of {ACTIVATIONS}, got {activations!r}")
    return activations


def check_x(x, in_features: int) -> np.ndarray:
    xa = _as_float32(x, "x", (1, 2))
    if xa.shape[-1] != in_features:
        raise ValueError(f"x: last dimension {xa.shape[-1]} does not match the weight's in_features {in_features} "
                         f"(x shape {xa.shape})")
    return xa


def check_codes(codes) -> np.ndarray:
    arr = as_array(codes, "codes")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"codes: dtype {arr.dtype} is not an integer type")
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise ValueError(f"codes: expected a non-empty 1-D or 2-D array, got shape {arr.shape}")
    limits = np.where(np.arange(arr.shape[-1]) % 2 == 0, 15, 7)
    bad = (arr < 0) | (arr > limits)
    if bad.any():
        idx = first_bad_index(bad)
        lane = "even (4-bit, 0..15)" if idx[-1] % 2 == 0 else "odd (3-bit, 0..7)"
        raise ValueError(f"codes: value {int(arr[idx])} at index {idx} is out of range for an {lane} lane")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def check_scale_format(scale_format) -> str:
    if scale_format not in SCALE_FORMATS:
        raise ValueError(f"scale_format must be one of {SCALE_FORMATS}, got {scale_format!r}")
    return scale_format


def check_importance(importance, in_features: int | None) -> np.ndarray:
    """Per-input-channel importance (e.g. mean activation²): 1-D, finite, >= 0; None means all ones."""
    if importance is None:
        if in_features is None:
            raise ValueError("importance: required")
        return np.ones(in_features, dtype=np.float32)
    a = _as_float32(importance, "importance", (1,))
    if in_features is not None and a.shape[0] != in_features:
        raise ValueError(f"importance: length {a.shape[0]} does not match in_features {in_features}")
    if (a < 0).any():
        raise ValueError(f"importance: negative value at index {first_bad_index(a < 0)}")
    return a


def check_packed(packed, n: int) -> np.ndarray:
    n = check_positive_int(n, "n (weights per row)")
    arr = as_array(packed, "packed")
    if isinstance(packed, (bytes, bytearray, memoryview)):
        arr = np.frombuffer(packed, dtype=np.uint8)
    if arr.dtype != np.uint8:
        raise TypeError(f"packed: dtype {arr.dtype} is not uint8")
    if arr.ndim not in (1, 2):
        raise ValueError(f"packed: expected 1-D or 2-D array, got shape {arr.shape}")
    want = payload_bytes_per_row(int(n))
    if arr.shape[-1] != want:
        kind = "truncated" if arr.shape[-1] < want else "oversized"
        raise ValueError(f"packed: {kind} payload: {arr.shape[-1]} bytes per row, but {n} weights need "
                         f"7*ceil({n}/16) = {want}")
    return np.ascontiguousarray(arr)


def check_qtensor(qt) -> None:
    """Structure of a QTensor (SPEC §6); raises ValueError naming the failing field."""
    for field in ("packed", "scales", "zeros", "shape", "group_size"):
        if not hasattr(qt, field):
            raise TypeError(f"not a QTensor: missing field {field!r}")
    if not isinstance(qt.shape, (tuple, list)) or len(qt.shape) != 2 or not all(is_int(v) and v > 0 for v in qt.shape):
        raise ValueError(f"QTensor.shape must be (N, K) with integers N, K >= 1, got {qt.shape!r}")
    n_rows, k = (int(v) for v in qt.shape)
    g = qt.group_size
    try:               # a stored group size is effective: never None/0
        ok = is_int(g) and g > 0 and check_group_size(g, k) is not None
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"QTensor.group_size must be a positive multiple of 16 or equal to K={k}, got {g}")
    n_groups = -(-k // int(g))
    want = (n_rows, payload_bytes_per_row(k))
    if not isinstance(qt.packed, np.ndarray) or qt.packed.dtype != np.uint8 or qt.packed.shape != want:
        got = getattr(qt.packed, "shape", None)
        raise ValueError(f"QTensor.packed: expected uint8 array of shape {want}, got "
                         f"{getattr(qt.packed, 'dtype', type(qt.packed))} {got} (truncated or corrupted payload?)")
    fmt = getattr(qt, "scale_format", "f16")
    check_scale_format(fmt)
    param_dtype = np.float16 if fmt == "f16" else np.float32
    for field in ("scales", "zeros"):
        arr = getattr(qt, field)
        if not isinstance(arr, np.ndarray) or arr.dtype != param_dtype or arr.shape != (n_rows, n_groups):
            raise ValueError(f"QTensor.{field}: expected {np.dtype(param_dtype)} array of shape {(n_rows, n_groups)}, "
                             f"got {getattr(arr, 'dtype', type(arr))} {getattr(arr, 'shape', None)}")
        if not np.isfinite(arr).all():
            raise ValueError(f"QTensor.{field}: contains NaN or Inf")
    if not (qt.scales > 0).all():
        raise ValueError("QTensor.scales: every scale must be > 0")
    if fmt == "compact":
        _check_compact(qt, n_rows, n_groups)
    perm = getattr(qt, "perm", None)
    if perm is not None:
        if not isinstance(perm, np.ndarray) or perm.dtype != np.uint16 or perm.shape != (k,) \
                or not np.array_equal(np.sort(perm), np.arange(k)):
            raise ValueError(f"QTensor.perm: expected a uint16 permutation of 0..{k - 1}")
    pad = 2 * (want[1] // 7 * 8) - k  # padded weights at the end of each row
    if pad:
        last_block = qt.packed[:, -7:]
        v = np.zeros(n_rows, dtype=np.uint64)
        for j in range(7):
            v |= last_block[:, j].astype(np.uint64) << np.uint64(8 * j)
        real = 16 - pad  # weights of the last block that are not padding
        used_bits = 7 * (real // 2) + 4 * (real % 2)
        if (v >> np.uint64(used_bits)).any():
            raise ValueError("QTensor.packed: non-zero padding codes (corrupted payload?)")


def _check_compact(qt, n_rows: int, n_groups: int) -> None:
    rs, gc = qt.row_scales, qt.group_codes
    if not isinstance(rs, np.ndarray) or rs.dtype != np.float16 or rs.shape != (n_rows,) \
            or not np.isfinite(rs).all() or not (rs > 0).all():
        raise ValueError(f"QTensor.row_scales: expected finite positive float16 array of shape {(n_rows,)}")
    if not isinstance(gc, np.ndarray) or gc.dtype != np.uint16 or gc.shape != (n_rows, n_groups):
        raise ValueError(f"QTensor.group_codes: expected uint16 array of shape {(n_rows, n_groups)}")
    sc, zp = gc & 0x3F, gc >> 6
    if (sc < 1).any() or (zp > 15).any():
        raise ValueError("QTensor.group_codes: scale codes must be 1..63 and zero points 0..15")
    d = rs.astype(np.float64)[:, None]
    if not (np.array_equal(qt.scales, (d * sc).astype(np.float32))
            and np.array_equal(qt.zeros, (-(zp * (d * sc))).astype(np.float32))):
        raise ValueError("QTensor.scales/zeros: do not match the expansion of row_scales and group_codes")


def check_mode_flags(scale_format, importance, permute) -> None:
    """permute is a bool; importance only weights the compact search or orders a permutation (SPEC §8)."""
    if not isinstance(permute, (bool, np.bool_)):
        raise TypeError(f"permute must be True or False, got {permute!r}")
    if importance is not None and scale_format == "f16" and not permute:
        raise ValueError("importance weights the compact search (SPEC §8); the f16 min-max grid has no search to "
                         "weight (it only orders a permutation): use scale_format='compact', permute=True, or "
                         "importance=None")


def prepare_quantize(weight, group_size, scale_format, importance, permute):
    """Validated inputs of quantize, shared by the reference and the fast path: (W in stored column order,
    effective group size, importance in stored order, perm or None)."""
    w = check_weight(weight)
    g = effective_group_size(w.shape[1], check_group_size(group_size))
    check_scale_format(scale_format)
    check_mode_flags(scale_format, importance, permute)
    if permute and importance is None:
        raise ValueError("permute=True orders channels by importance (SPEC §8): pass importance")
    if permute and w.shape[1] > MAX_PERMUTED_COLUMNS:
        raise ValueError(f"permute=True: {w.shape[1]} columns cannot be permuted (the stored permutation is uint16, "
                         f"at most {MAX_PERMUTED_COLUMNS} columns)")
    imp = check_importance(importance, w.shape[1])
    perm = None
    if permute:
        perm = importance_permutation(imp)
        w, imp = np.ascontiguousarray(w[:, perm]), np.ascontiguousarray(imp[perm])
    return w, g, imp, perm
