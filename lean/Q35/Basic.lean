/-!
# Format constants (SPEC §1, §4)

Mirrors the constants of `q35.format` (bridge/q35/format/constants.py) and those compiled into the Fortran kernels
(`bridge.kernel_constants()`).
-/
namespace Q35

/-- Even lane (4-bit) code range, `pyref.LO4`/`pyref.HI4`. -/
def LO4 : Nat := 0
def HI4 : Nat := 15
/-- Odd lane (3-bit) code range, `pyref.LO3`/`pyref.HI3`. -/
def LO3 : Nat := 0
def HI3 : Nat := 7
def BITS_EVEN : Nat := 4
def BITS_ODD : Nat := 3
/-- Bits of one pair code (`pyref.PAIR_BITS`). -/
def PAIR_BITS : Nat := 7
def PAIRS_PER_BLOCK : Nat := 8
/-- Bytes of one block of 8 pair codes (`pyref.BLOCK_BYTES`). -/
def BLOCK_BYTES : Nat := 7
def WEIGHTS_PER_BLOCK : Nat := 16
/-- Lattice codes lie in `[0, LATTICE_MAX]` (`pyref.LATTICE_MAX`). -/
def LATTICE_MAX : Nat := 15

/-- The format constants of `q35.format` and of the Fortran kernels (`q35_constants`) are consistent:
a pair is 4 + 3 bits, 8 pairs fill exactly 7 bytes, a block holds 16 weights, and both lanes' lattice
codes (`q4` and `2·q3`) fit in `[0, LATTICE_MAX]`. -/
theorem format_constants :
    HI4 = 15 ∧ HI3 = 7 ∧ LO4 = 0 ∧ LO3 = 0 ∧ PAIR_BITS = BITS_EVEN + BITS_ODD ∧
    HI4 + 1 = 2 ^ BITS_EVEN ∧ HI3 + 1 = 2 ^ BITS_ODD ∧
    8 * BLOCK_BYTES = PAIR_BITS * PAIRS_PER_BLOCK ∧ WEIGHTS_PER_BLOCK = 2 * PAIRS_PER_BLOCK ∧
    HI4 ≤ LATTICE_MAX ∧ 2 * HI3 ≤ LATTICE_MAX := by
  decide

end Q35
