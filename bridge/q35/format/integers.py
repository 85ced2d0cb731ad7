"""Integer arguments: the one rule for a positive count and the one rule for a group size (SPEC §7)."""
from __future__ import annotations

import numpy as np

from .constants import WEIGHTS_PER_BLOCK


def is_int(v) -> bool:
    """A Python or numpy integer, and not a bool (True is an int to Python, never a count to q35)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_positive_int(value, name: str, allow_none: bool = False) -> int | None:
    """`value` as a Python int >= 1 (None passes when allow_none); else one ValueError naming `name`."""
    if value is None and allow_none:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def check_group_size(group_size, in_features: int | None = None) -> int | None:
    """SPEC §7: None or 0 (one group per row), a positive multiple of 16, or (when in_features is given, as for
    sizes and stored tensors) exactly K. Returns None for one group per row, else the int."""
    if group_size is None or (is_int(group_size) and group_size == 0):
        return None
    if not is_int(group_size):
        raise TypeError(f"group_size must be an int or None, got {type(group_size).__name__}")
    if group_size > 0 and (group_size % WEIGHTS_PER_BLOCK == 0 or group_size == in_features):
        return int(group_size)
    row = f", K={in_features}" if in_features is not None else ""
    raise ValueError(f"group_size must be a positive multiple of 16{row} (or None/0 for one group per row), "
                     f"got {group_size}")
