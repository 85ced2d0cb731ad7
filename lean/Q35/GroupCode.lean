import Q35.Codes
/-!
# Compact scale storage (SPEC §8)

A group's 10-bit code is `c = sc + 64·zp` (pyref: `sc | zp << 6`) with scale code `sc ∈ [1, 63]` and zero
point `zp ∈ [0, 15]`; the grid is `s = d·sc`, `z = -zp·s`, so `ŵ = s·(L - zp)`.
-/
namespace Q35

/-- `pyref.encode_group_code(sc, zp)`: `sc + 64·zp` (= `sc | zp << 6`). -/
def encode_group_code (sc zp : Nat) : Nat := sc + 64 * zp

/-- `pyref.decode_group_code(c)`: `(c % 64, c / 64)` (= `(c & 0x3F, c >> 6)`). -/
def decode_group_code (c : Nat) : Nat × Nat := (c % 64, c / 64)

/-- Decoding an encoded group code gives `(sc, zp)` back for `sc < 64`
(`pyref.decode_group_code ∘ pyref.encode_group_code`; Fortran `q35_quantize_compact` output). -/
theorem decode_encode_group_code (sc zp : Nat) (hsc : sc < 64) :
    decode_group_code (encode_group_code sc zp) = (sc, zp) := by
  have e1 : (sc + 64 * zp) % 64 = sc := by omega
  have e2 : (sc + 64 * zp) / 64 = zp := by omega
  unfold decode_group_code encode_group_code
  rw [e1, e2]

/-- Encoding a decoded code gives it back (`pyref.encode_group_code ∘ pyref.decode_group_code`). -/
theorem encode_decode_group_code (c : Nat) :
    encode_group_code (decode_group_code c).1 (decode_group_code c).2 = c := by
  simp only [encode_group_code, decode_group_code]
  omega

/-- Every valid `(sc, zp)` (`1 ≤ sc ≤ 63`, `zp ≤ 15`) has a nonzero code that fits in 10 bits
(`pyref.GROUP_CODE_BITS = 10`, the compact bitstream of SPEC §8). -/
theorem group_code_range (sc zp : Nat) (h1 : 1 ≤ sc) (h2 : sc ≤ 63) (h3 : zp ≤ 15) :
    1 ≤ encode_group_code sc zp ∧ encode_group_code sc zp < 1024 := by
  unfold encode_group_code
  omega

/-- The arithmetic group code is pyref's bit expression `sc | zp << 6` on the whole domain
(1024 cases, checked by `decide`). -/
theorem group_code_bitwise :
    ∀ sc : Nat, sc < 64 → ∀ zp : Nat, zp < 16 → (sc ||| (zp <<< 6)) = encode_group_code sc zp := by
  decide

/-- SPEC §8's compact grid: with `z = -(zp·s)`, `ŵ = z + s·L = s·(L - zp)` on every column
(`pyref.expand_compact` + `pyref.dequantize_value`; Fortran `q35_dequantize` on the expanded zeros). -/
theorem compact_dequantize (code s : Int) (zp : Nat) (column : Nat) :
    dequantize_value code (-((zp : Int) * s)) s column = s * (lattice_code code column - (zp : Int)) := by
  have e1 := Int.mul_sub s (lattice_code code column) (zp : Int)
  have e2 := Int.mul_comm (zp : Int) s
  unfold dequantize_value
  omega

end Q35
