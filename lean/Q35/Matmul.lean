/-!
# The fused matmul (SPEC §5)

For one group with zero `z`, scale `s`, activations `x_k` and lattice codes `L_k`,
`Σ x_k·(z + s·L_k) = z·Σ x_k + s·Σ x_k·L_k`; a row's dot product is the sum of that over its groups.
Stated over `Int` (exact arithmetic; the float rounding is the tolerance of SPEC §5, checked by tests).
-/
namespace Q35

/-- `Σ x_k·(z + s·L_k)` over a group's `(x_k, L_k)` pairs: `x · dequantize(group)` as `pyref.matmul`
computes it (before rounding). -/
def group_dot (z s : Int) : List (Int × Int) → Int
  | [] => 0
  | p :: rest => p.1 * (z + s * p.2) + group_dot z s rest

/-- `Σ x_k` over a group (computed once per input row by the Fortran `q35_gemv`/`q35_gemm`). -/
def sum_x : List (Int × Int) → Int
  | [] => 0
  | p :: rest => p.1 + sum_x rest

/-- `Σ x_k·L_k` over a group: the integer dot product of the fused kernels. -/
def sum_xl : List (Int × Int) → Int
  | [] => 0
  | p :: rest => p.1 * p.2 + sum_xl rest

/-- One group of a row: zero point, scale and the `(x_k, L_k)` pairs of its columns. -/
structure GroupTerms where
  zero : Int
  scale : Int
  xl : List (Int × Int)

/-- `y_n = Σ_k x_k·ŵ_{n,k}` over the groups of a row (`pyref.matmul`). -/
def row_dot : List GroupTerms → Int
  | [] => 0
  | g :: gs => group_dot g.zero g.scale g.xl + row_dot gs

/-- The fused form of a row: `Σ_groups (z·Σx + s·Σx·L)` (Fortran `q35_gemv`/`q35_gemm`). -/
def fused_row_dot : List GroupTerms → Int
  | [] => 0
  | g :: gs => (g.zero * sum_x g.xl + g.scale * sum_xl g.xl) + fused_row_dot gs

/-- SPEC §5: `Σ x_k·(z + s·L_k) = z·Σ x_k + s·Σ x_k·L_k` for one group — the zero-point term the kernel
must not forget (`pyref.matmul` vs the fused Fortran `q35_gemv`/`q35_gemm`). -/
theorem fused_group_identity (z s : Int) (xl : List (Int × Int)) :
    group_dot z s xl = z * sum_x xl + s * sum_xl xl := by
  induction xl with
  | nil =>
    simp only [group_dot, sum_x, sum_xl]
    all_goals omega
  | cons p rest ih =>
    have e1 : p.1 * (z + s * p.2) = z * p.1 + s * (p.1 * p.2) := by
      rw [Int.mul_add, Int.mul_comm p.1 z, Int.mul_left_comm p.1 s p.2]
    have e2 : z * (p.1 + sum_x rest) = z * p.1 + z * sum_x rest := Int.mul_add z p.1 (sum_x rest)
    have e3 : s * (p.1 * p.2 + sum_xl rest) = s * (p.1 * p.2) + s * sum_xl rest :=
      Int.mul_add s (p.1 * p.2) (sum_xl rest)
    simp only [group_dot, sum_x, sum_xl]
    omega

/-- SPEC §5 summed over the groups of a row: `pyref.matmul`'s `Σ_k x_k·ŵ_k` equals the fused kernels'
`Σ_groups (z·Σx + s·Σx·L)` (Fortran `q35_gemv`/`q35_gemm`). -/
theorem fused_row_identity (gs : List GroupTerms) : row_dot gs = fused_row_dot gs := by
  induction gs with
  | nil => rfl
  | cons g gs ih =>
    have hg := fused_group_identity g.zero g.scale g.xl
    simp only [row_dot, fused_row_dot]
    omega

/-- `|Σ x_k·L_k| ≤ 127·15·K` for int8 activations `|x_k| ≤ 127` and lattice codes `0 ≤ L_k ≤ 15`
(SPEC §5; the integer accumulator of a fused int8 kernel). -/
theorem accumulator_bound (xl : List (Int × Int))
    (h : ∀ p ∈ xl, -127 ≤ p.1 ∧ p.1 ≤ 127 ∧ 0 ≤ p.2 ∧ p.2 ≤ 15) :
    -(127 * 15 * (xl.length : Int)) ≤ sum_xl xl ∧ sum_xl xl ≤ 127 * 15 * (xl.length : Int) := by
  induction xl with
  | nil =>
    simp only [sum_xl, List.length_nil]
    all_goals omega
  | cons p rest ih =>
    have hp := h p (by simp)
    have ih' := ih (fun q hq => h q (by simp [hq]))
    have m1 : p.2 * p.1 ≤ p.2 * 127 := Int.mul_le_mul_of_nonneg_left hp.2.1 hp.2.2.1
    have m2 : p.2 * (-127) ≤ p.2 * p.1 := Int.mul_le_mul_of_nonneg_left hp.1 hp.2.2.1
    have m3 : p.1 * p.2 = p.2 * p.1 := Int.mul_comm p.1 p.2
    simp only [sum_xl, List.length_cons]
    omega

/-- SPEC §5: with int8 activations and lattice codes, the dot product of a row of `K ≤ 1 127 288`
weights fits a signed 32-bit accumulator: `|Σ x_k·L_k| ≤ 127·15·K ≤ 2^31 - 1 = 2147483647`. -/
theorem int32_accumulator_safe (xl : List (Int × Int))
    (h : ∀ p ∈ xl, -127 ≤ p.1 ∧ p.1 ≤ 127 ∧ 0 ≤ p.2 ∧ p.2 ≤ 15) (hk : xl.length ≤ 1127288) :
    -(127 * 15 * (xl.length : Int)) ≤ sum_xl xl ∧ sum_xl xl ≤ 127 * 15 * (xl.length : Int) ∧
      127 * 15 * (xl.length : Int) ≤ 2147483647 := by
  have hb := accumulator_bound xl h
  omega

/-- The bound `K ≤ 1 127 288` of SPEC §5 is the largest: one more weight could overflow int32. -/
theorem int32_bound_tight : 127 * 15 * 1127288 ≤ 2147483647 ∧ 127 * 15 * 1127289 > 2147483647 := by
  decide

end Q35
