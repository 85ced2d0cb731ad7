/-!
# Codes and the lattice (SPEC §2, §3)

The real-valued quantizer of SPEC §3 is stated over integers: the group's values, zero and scale are
binary16/binary32 numbers, so after multiplying by a common power of two they are integers `w`, `z`,
`s` (this scaling does not change `t = (w - z) / s`). With `s > 0`:

* `floor(t + 1/2) = floor((2·(w - z) + s) / (2·s))` (even lane, `pyref.code4`),
* `floor(t/2 + 1/2) = floor((w - z + s) / (2·s))` (odd lane, `pyref.code3`),

where `/` on `Int` is floor division for a positive divisor. (The binary64 rounding of `t` itself is
the "up to binary64 rounding" of SPEC §3 and is covered by the tests, not here.)
-/
namespace Q35

/-- `pyref.clamp(v, lo, hi)`: `lo if v < lo else hi if v > hi else v` (Fortran: `min(max(..))` in
`q35_quantize`). -/
def clamp (v lo hi : Int) : Int := if v < lo then lo else if v > hi then hi else v

/-- `pyref.code4(w, z, s)` in integer units: `clamp(floor((w - z)/s + 1/2), 0, 15)` (even lane). -/
def code4 (w z s : Int) : Int := clamp ((2 * (w - z) + s) / (2 * s)) 0 15

/-- `pyref.code3(w, z, s)` in integer units: `clamp(floor((w - z)/s · 1/2 + 1/2), 0, 7)` (odd lane). -/
def code3 (w z s : Int) : Int := clamp ((w - z + s) / (2 * s)) 0 7

/-- `pyref.quantize_value(w, z, s, column)`: parity of the global column picks the code width. -/
def quantize_value (w z s : Int) (column : Nat) : Int :=
  if column % 2 = 0 then code4 w z s else code3 w z s

/-- `pyref.lattice_code(code, column)`: `L = q4` on even lanes, `L = 2·q3` on odd lanes (SPEC §2). -/
def lattice_code (code : Int) (column : Nat) : Int :=
  if column % 2 = 0 then code else 2 * code

/-- `pyref.dequantize_value(code, z, s, column)`: `ŵ = z + s·L` (SPEC §2, §5; Fortran `q35_dequantize`). -/
def dequantize_value (code z s : Int) (column : Nat) : Int := z + s * lattice_code code column

/-- Clamping never leaves the code range: `lo ≤ clamp v lo hi ≤ hi` whenever `lo ≤ hi`
(`pyref.clamp`; the clamp in the Fortran `q35_quantize`). -/
theorem clamp_in_range (v lo hi : Int) (h : lo ≤ hi) : lo ≤ clamp v lo hi ∧ clamp v lo hi ≤ hi := by
  by_cases h1 : v < lo
  · have e : clamp v lo hi = lo := by
      unfold clamp
      rw [if_pos h1]
    rw [e]
    omega
  · by_cases h2 : v > hi
    · have e : clamp v lo hi = hi := by
        unfold clamp
        rw [if_neg h1, if_pos h2]
      rw [e]
      omega
    · have e : clamp v lo hi = v := by
        unfold clamp
        rw [if_neg h1, if_neg h2]
      rw [e]
      omega

/-- A value already inside `[lo, hi]` is left unchanged by `pyref.clamp`. -/
theorem clamp_of_mem (v lo hi : Int) (h1 : lo ≤ v) (h2 : v ≤ hi) : clamp v lo hi = v := by
  unfold clamp
  rw [if_neg (show ¬ (v < lo) by omega), if_neg (show ¬ (v > hi) by omega)]

/-- A value above `hi` is clamped to `hi` by `pyref.clamp` (the odd lane's `t > 14` case of SPEC §3). -/
theorem clamp_of_gt (v lo hi : Int) (h1 : lo ≤ hi) (h2 : hi < v) : clamp v lo hi = hi := by
  unfold clamp
  rw [if_neg (show ¬ (v < lo) by omega), if_pos (show v > hi by omega)]

/-- Every even-lane code lies in `[0, 15]` (`pyref.code4`; Fortran `q35_quantize`, even columns). -/
theorem code4_range (w z s : Int) : 0 ≤ code4 w z s ∧ code4 w z s ≤ 15 :=
  clamp_in_range ((2 * (w - z) + s) / (2 * s)) 0 15 (by omega)

/-- Every odd-lane code lies in `[0, 7]` (`pyref.code3`; Fortran `q35_quantize`, odd columns). -/
theorem code3_range (w z s : Int) : 0 ≤ code3 w z s ∧ code3 w z s ≤ 7 :=
  clamp_in_range ((w - z + s) / (2 * s)) 0 7 (by omega)

/-- On an even column the lattice code is the 4-bit code itself (`pyref.lattice_code`). -/
theorem lattice_code_even (code : Int) (column : Nat) (h : column % 2 = 0) :
    lattice_code code column = code := by
  unfold lattice_code
  rw [if_pos h]

/-- On an odd column the lattice code is twice the 3-bit code (`pyref.lattice_code`). -/
theorem lattice_code_odd (code : Int) (column : Nat) (h : column % 2 = 1) :
    lattice_code code column = 2 * code := by
  unfold lattice_code
  rw [if_neg (show ¬ (column % 2 = 0) by omega)]

/-- Both lanes live on one lattice: `0 ≤ L ≤ 15` for the code `pyref.quantize_value` gives any value on
any column (SPEC §2; the integer operand of the fused kernels in `fortran/q35_matmul.f90`). -/
theorem lattice_code_range (w z s : Int) (column : Nat) :
    0 ≤ lattice_code (quantize_value w z s column) column ∧
      lattice_code (quantize_value w z s column) column ≤ 15 := by
  by_cases h : column % 2 = 0
  · have e : quantize_value w z s column = code4 w z s := by
      unfold quantize_value
      rw [if_pos h]
    rw [e, lattice_code_even (code4 w z s) column h]
    exact code4_range w z s
  · have e : quantize_value w z s column = code3 w z s := by
      unfold quantize_value
      rw [if_neg h]
    rw [e, lattice_code_odd (code3 w z s) column (by omega)]
    have hr := code3_range w z s
    omega

end Q35
