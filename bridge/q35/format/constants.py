"""The q35 format's constants (SPEC §1, §4, §5.1, §8): code ranges, container geometry, parameter widths."""
from __future__ import annotations

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
