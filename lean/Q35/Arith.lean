/-!
# Arithmetic helpers (powers of two, floor multiples)

General facts the format proofs use. Each is proved from core lemmas whose exact statement matters only
here (`Int.pow_succ`, `Int.emod_add_ediv`, `Int.emod_lt_of_pos`, `Int.mul_le_mul_of_nonneg_right`,
`Nat.pow_succ`, …), restated in the form the later `rw`/`omega` steps need. `omega` treats a power
`2 ^ k` with a variable exponent, and any product of two non-constant terms, as an opaque atom, so products
are always brought into one syntactic shape before it runs.
-/
namespace Q35

/-- `2^(n+1) = 2^n·2` in `Int` (core's `Int.pow_succ`, stated in the form the rewrites below use). -/
theorem two_pow_succ (n : Nat) : (2 : Int) ^ (n + 1) = 2 ^ n * 2 := Int.pow_succ 2 n

/-- `b^(n+1) = b^n·b` in `Nat` (definitional: `Nat.pow` recurses on the exponent). -/
theorem nat_pow_succ (b n : Nat) : b ^ (n + 1) = b ^ n * b := rfl

/-- Powers of two are positive. -/
theorem two_pow_pos (k : Nat) : (0 : Int) < 2 ^ k := by
  induction k with
  | zero => decide
  | succ n ih =>
    rw [two_pow_succ n]
    omega

/-- `2^(a+b) = 2^a·2^b` in `Int`. -/
theorem two_pow_add (a b : Nat) : (2 : Int) ^ (a + b) = 2 ^ a * 2 ^ b := by
  induction b with
  | zero =>
    have e : (2 : Int) ^ 0 = 1 := by decide
    rw [Nat.add_zero, e, Int.mul_one]
  | succ n ih =>
    rw [← Nat.add_assoc, two_pow_succ (a + n), two_pow_succ n, ih, Int.mul_assoc]

/-- `b^(m+n) = b^m·b^n` in `Nat`. -/
theorem nat_pow_add (b m n : Nat) : b ^ (m + n) = b ^ m * b ^ n := by
  induction n with
  | zero => rw [Nat.add_zero, Nat.pow_zero, Nat.mul_one]
  | succ n ih => rw [← Nat.add_assoc, nat_pow_succ b (m + n), nat_pow_succ b n, ih, Nat.mul_assoc]

/-- Powers of two are positive (`Nat`). -/
theorem nat_two_pow_pos (n : Nat) : 0 < 2 ^ n := by
  induction n with
  | zero => decide
  | succ n ih =>
    rw [nat_pow_succ 2 n]
    omega

/-- `2^a ≤ 2^b` for `a ≤ b` (`Nat`). -/
theorem nat_two_pow_le (a b : Nat) (h : a ≤ b) : 2 ^ a ≤ 2 ^ b := by
  have e1 := nat_pow_add 2 a (b - a)
  have e2 : a + (b - a) = b := by omega
  rw [e2] at e1
  have hp : 1 ≤ 2 ^ (b - a) := nat_two_pow_pos (b - a)
  have hm : 2 ^ a * 1 ≤ 2 ^ a * 2 ^ (b - a) := Nat.mul_le_mul (Nat.le_refl (2 ^ a)) hp
  omega

/-- `256^n = 2^(8n)`: `n` bytes hold `8n` bits. -/
theorem pow_256 (n : Nat) : (256 : Nat) ^ n = 2 ^ (8 * n) := by
  induction n with
  | zero => decide
  | succ n ih =>
    have e : 8 * (n + 1) = 8 * n + 8 := by omega
    have e8 : (2 : Nat) ^ 8 = 256 := by decide
    rw [e, nat_pow_succ 256 n, ih, nat_pow_add 2 (8 * n) 8, e8]

/-- `128^(8n) = 256^(7n)`: `8n` seven-bit digits and `7n` bytes span the same `56n` bits. -/
theorem pow_128_256 (n : Nat) : (128 : Nat) ^ (8 * n) = 256 ^ (7 * n) := by
  induction n with
  | zero => decide
  | succ n ih =>
    have e1 : 8 * (n + 1) = 8 * n + 8 := by omega
    have e2 : 7 * (n + 1) = 7 * n + 7 := by omega
    have e3 : (128 : Nat) ^ 8 = 256 ^ 7 := by decide
    rw [e1, e2, nat_pow_add 128 (8 * n) 8, nat_pow_add 256 (7 * n) 7, ih, e3]

/-- Cancelling a positive factor on the right: `a·P < b·P` with `P > 0` forces `a < b`. -/
theorem lt_of_mul_lt_mul_pos (P a b : Int) (hP : 0 < P) (h : a * P < b * P) : a < b := by
  by_cases hab : a < b
  · exact hab
  · have h' : b * P ≤ a * P := Int.mul_le_mul_of_nonneg_right (by omega) (by omega)
    omega

/-- `x / P·P` is the multiple of `P > 0` just below `x`: `x / P·P ≤ x < x / P·P + P`. -/
theorem floor_bracket (P x : Int) (hP : 0 < P) : x / P * P ≤ x ∧ x < x / P * P + P := by
  have h1 := Int.emod_add_ediv x P
  have h2 := Int.emod_nonneg x (show P ≠ 0 by omega)
  have h3 := Int.emod_lt_of_pos x hP
  have hc : P * (x / P) = x / P * P := Int.mul_comm P (x / P)
  omega

/-- `x / P·P` is the largest multiple of `P > 0` not above `x`: every `t·P ≤ x` is `≤ x / P·P`. -/
theorem mul_le_floor (P x t : Int) (hP : 0 < P) (h : t * P ≤ x) : t * P ≤ x / P * P := by
  have hb := floor_bracket P x hP
  by_cases ht : t ≤ x / P
  · exact Int.mul_le_mul_of_nonneg_right ht (by omega)
  · have h5 : (x / P + 1) * P ≤ t * P := Int.mul_le_mul_of_nonneg_right (by omega) (by omega)
    have h6 : (x / P + 1) * P = x / P * P + 1 * P := Int.add_mul (x / P) 1 P
    omega

end Q35
