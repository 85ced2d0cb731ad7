import Q35.Codes
/-!
# The half-step error bound (SPEC §3)

For a value inside its group's grid (`z ≤ w ≤ z + 15·s`, which SPEC §3 guarantees up to one binary64
rounding), the even lane reconstructs within `s/2` and the odd lane within `s` (half of its step `2s`).
Stated in the integer units of `Q35.Codes`, with the error doubled on the even lane to stay integral.
-/
namespace Q35

/-- Floor division by `2·s`, written so that `omega` can use it: `2·(s·q) ≤ n < 2·(s·q) + 2·s` for
`q = n / (2·s)` (the `floor` of `pyref.code4`/`pyref.code3`). -/
theorem floor_div_two_mul (n s : Int) (hs : 0 < s) :
    2 * (s * (n / (2 * s))) ≤ n ∧ n < 2 * (s * (n / (2 * s))) + 2 * s := by
  have h1 := Int.emod_add_ediv n (2 * s)
  have h2 := Int.emod_nonneg n (show 2 * s ≠ 0 by omega)
  have h3 := Int.emod_lt_of_pos n (show 0 < 2 * s by omega)
  have h4 := Int.mul_assoc 2 s (n / (2 * s))
  omega

/-- Cancelling a positive factor: `s·q > -s` forces `q ≥ 0` (the lower clamp of `pyref.code4`/`code3`
never fires inside the grid). -/
theorem nonneg_of_mul_gt_neg (s q : Int) (hs : 0 < s) (h : -s < s * q) : 0 ≤ q := by
  by_cases hq : 0 ≤ q
  · exact hq
  · have h' : s * q ≤ s * (-1) := Int.mul_le_mul_of_nonneg_left (by omega) (by omega)
    omega

/-- Cancelling a positive factor: `s·q < s·(k+1)` forces `q ≤ k` (bounds the unclamped code). -/
theorem le_of_mul_lt_mul_succ (s q k : Int) (hs : 0 < s) (h : s * q < s * (k + 1)) : q ≤ k := by
  by_cases hq : q ≤ k
  · exact hq
  · have h' : s * (k + 1) ≤ s * q := Int.mul_le_mul_of_nonneg_left (by omega) (by omega)
    omega

/-- Even lane of SPEC §3: `|w - ŵ| ≤ s/2`, i.e. `-s ≤ 2·(w - ŵ) ≤ s`, for `ŵ` from `pyref.code4` and
`pyref.dequantize_value` (Fortran `q35_quantize` then `q35_dequantize`). -/
theorem quant_error_even (w z s : Int) (column : Nat) (hcol : column % 2 = 0)
    (hs : 0 < s) (hlo : z ≤ w) (hhi : w ≤ z + 15 * s) :
    -s ≤ 2 * (w - dequantize_value (quantize_value w z s column) z s column) ∧
      2 * (w - dequantize_value (quantize_value w z s column) z s column) ≤ s := by
  have hb := floor_div_two_mul (2 * (w - z) + s) s hs
  have hq0 : 0 ≤ (2 * (w - z) + s) / (2 * s) :=
    nonneg_of_mul_gt_neg s ((2 * (w - z) + s) / (2 * s)) hs (by omega)
  have hq15 : (2 * (w - z) + s) / (2 * s) ≤ 15 :=
    le_of_mul_lt_mul_succ s ((2 * (w - z) + s) / (2 * s)) 15 hs (by omega)
  have hc : code4 w z s = (2 * (w - z) + s) / (2 * s) :=
    clamp_of_mem ((2 * (w - z) + s) / (2 * s)) 0 15 hq0 hq15
  have hv : quantize_value w z s column = code4 w z s := by
    unfold quantize_value
    rw [if_pos hcol]
  have hd : dequantize_value (quantize_value w z s column) z s column =
      z + s * ((2 * (w - z) + s) / (2 * s)) := by
    unfold dequantize_value
    rw [hv, lattice_code_even (code4 w z s) column hcol, hc]
  rw [hd]
  omega

/-- Odd lane of SPEC §3: `|w - ŵ| ≤ s` (half of the 3-bit step `2s`), including the clamped case
`t > 14`, for `ŵ` from `pyref.code3` and `pyref.dequantize_value` (Fortran `q35_quantize`,
`q35_dequantize`). -/
theorem quant_error_odd (w z s : Int) (column : Nat) (hcol : column % 2 = 1)
    (hs : 0 < s) (hlo : z ≤ w) (hhi : w ≤ z + 15 * s) :
    -s ≤ w - dequantize_value (quantize_value w z s column) z s column ∧
      w - dequantize_value (quantize_value w z s column) z s column ≤ s := by
  have hb := floor_div_two_mul (w - z + s) s hs
  have hq0 : 0 ≤ (w - z + s) / (2 * s) :=
    nonneg_of_mul_gt_neg s ((w - z + s) / (2 * s)) hs (by omega)
  have hq8 : (w - z + s) / (2 * s) ≤ 8 :=
    le_of_mul_lt_mul_succ s ((w - z + s) / (2 * s)) 8 hs (by omega)
  have hm := Int.mul_left_comm s 2 ((w - z + s) / (2 * s))
  have hv : quantize_value w z s column = code3 w z s := by
    unfold quantize_value
    rw [if_neg (show ¬ (column % 2 = 0) by omega)]
  have hd : dequantize_value (quantize_value w z s column) z s column = z + s * (2 * code3 w z s) := by
    unfold dequantize_value
    rw [hv, lattice_code_odd (code3 w z s) column hcol]
  rw [hd]
  by_cases h7 : (w - z + s) / (2 * s) ≤ 7
  · have hc : code3 w z s = (w - z + s) / (2 * s) :=
      clamp_of_mem ((w - z + s) / (2 * s)) 0 7 hq0 h7
    rw [hc]
    omega
  · have hQ : (w - z + s) / (2 * s) = 8 := by omega
    have hc : code3 w z s = 7 :=
      clamp_of_gt ((w - z + s) / (2 * s)) 0 7 (by omega) (by omega)
    rw [hc]
    rw [hQ] at hb
    omega

/-- SPEC §3's error bound (`quant_error_half_step` in SPEC.md): inside the grid, an even column
reconstructs within half a step (`-s ≤ 2·(w - ŵ) ≤ s`) and an odd column within one step
(`-s ≤ w - ŵ ≤ s`, half of its step `2s`). Covers `pyref.quantize_value` + `pyref.dequantize_value`
and the Fortran `q35_quantize`/`q35_dequantize` pair. -/
theorem quant_error_half_step (w z s : Int) (c0 c1 : Nat) (h0 : c0 % 2 = 0) (h1 : c1 % 2 = 1)
    (hs : 0 < s) (hlo : z ≤ w) (hhi : w ≤ z + 15 * s) :
    (-s ≤ 2 * (w - dequantize_value (quantize_value w z s c0) z s c0) ∧
      2 * (w - dequantize_value (quantize_value w z s c0) z s c0) ≤ s) ∧
    (-s ≤ w - dequantize_value (quantize_value w z s c1) z s c1 ∧
      w - dequantize_value (quantize_value w z s c1) z s c1 ≤ s) :=
  ⟨quant_error_even w z s c0 h0 hs hlo hhi, quant_error_odd w z s c1 h1 hs hlo hhi⟩

end Q35
