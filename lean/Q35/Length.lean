/-!
# Payload length of a row (SPEC §4)

A row of `K` weights is padded to `16·ceil(K/16)` columns and stored as `ceil(K/16)` blocks of 7 bytes.
-/
namespace Q35

/-- `pyref.payload_bytes_per_row(K)` (and `pyref.validate.packed_row_bytes`): `P = 7·ceil(K/16)`. -/
def packed_length (k : Nat) : Nat := 7 * ((k + 15) / 16)

/-- The Lean formula is pyref's: `7·((K + 15)/16) = 7·(-(-K // 16))` with Python's floor division
(`pyref.payload_bytes_per_row`, the `P` argument the bridge passes to Fortran `q35_pack`). -/
theorem packed_length_eq (k : Nat) : (packed_length k : Int) = 7 * (-((-(k : Int)) / 16)) := by
  unfold packed_length
  omega

/-- `P` is the minimal whole number of 7-byte blocks holding the row: `m` blocks (`7·m` bytes, i.e.
`16·m` weights at 3.5 bits) hold `K` weights iff `P ≤ 7·m` (`pyref.payload_bytes_per_row`,
`pyref.pack_row`). -/
theorem packed_length_minimal (k m : Nat) : k ≤ 16 * m ↔ packed_length k ≤ 7 * m := by
  unfold packed_length
  constructor
  · intro h
    omega
  · intro h
    omega

/-- `P` bytes carry the row's `3.5·K` payload bits with less than one block of padding:
`7·K ≤ 16·P < 7·K + 112` (i.e. `3.5·K ≤ 8·P < 3.5·K + 56`), and `P` is a multiple of 7
(`pyref.payload_bytes_per_row`; SPEC §4 "3.5 bits per weight plus padding"). -/
theorem packed_length_bits (k : Nat) :
    7 * k ≤ 16 * packed_length k ∧ 16 * packed_length k < 7 * k + 112 ∧ packed_length k % 7 = 0 := by
  unfold packed_length
  omega

end Q35
