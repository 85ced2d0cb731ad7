"""`q35.format`: the q35 format's vocabulary (SPEC §1, §4, §6, §8) — constants, sizes, the QTensor container, the
stored layout of the optional modes — and its input rules (`q35.format.checks`, SPEC §7). Both the pure-Python
reference (`q35.reference`) and the Fortran fast path (`q35.fast`) build on it, as ggml-quants.c and its
reference build on ggml-common.h; it imports neither of them, nor torch, nor the compiled extension.
"""
from .constants import (ACTIVATIONS, BITS_EVEN, BITS_ODD, BLOCK_BYTES, DEFAULT_A8_BLOCK, DEFAULT_GROUP_SIZE,
                        F16_MAX, GROUP_CODE_BITS, HI3, HI4, LATTICE_MAX, LO3, LO4, MAX_A8_BLOCK,
                        MAX_PERMUTED_COLUMNS, MIN_SCALE, PAIR_BITS, PAIRS_PER_BLOCK, PAYLOAD_BITS_PER_WEIGHT,
                        PERM_BITS, ROW_SCALE_BITS, SC_MAX, SCALE_BITS, SCALE_FORMATS, WEIGHTS_PER_BLOCK, ZERO_BITS,
                        ZP_MAX)
from .qtensor import (QTensor, expand_compact, importance_permutation, pack_group_code_rows, unpack_group_code_rows,
                      unpermute_columns)
from .sizes import (all_in_bits_per_weight, effective_group_size, encoded_nbytes, group_code_bytes_per_row,
                    num_groups, payload_bytes_per_row)

__all__ = ["ACTIVATIONS", "BITS_EVEN", "BITS_ODD", "BLOCK_BYTES", "DEFAULT_A8_BLOCK", "DEFAULT_GROUP_SIZE", "F16_MAX",
           "GROUP_CODE_BITS", "HI3", "HI4", "LATTICE_MAX", "LO3", "LO4", "MAX_A8_BLOCK", "MAX_PERMUTED_COLUMNS",
           "MIN_SCALE", "PAIR_BITS", "PAIRS_PER_BLOCK", "PAYLOAD_BITS_PER_WEIGHT", "PERM_BITS", "ROW_SCALE_BITS",
           "SC_MAX", "SCALE_BITS", "SCALE_FORMATS", "WEIGHTS_PER_BLOCK", "ZERO_BITS", "ZP_MAX",
           "QTensor", "expand_compact", "importance_permutation", "pack_group_code_rows", "unpack_group_code_rows",
           "unpermute_columns", "all_in_bits_per_weight", "effective_group_size", "encoded_nbytes",
           "group_code_bytes_per_row", "num_groups", "payload_bytes_per_row"]
