import Q35.Arith
/-!
# binary16 rounding of a group's zero and scale (SPEC §3)

pyref's `f16_down(x) = floor(x·2^-u)·2^u` and `f16_up(x) = ceil(x·2^-u)·2^u`, where `u = max(e − 11, −24)`
for `(f, e) = frexp(x)`. Everything is stated in integer units of `2^-E`, for any `E ≥ 24` that makes the
binary64 `x` an integer (every binary64 value is an integer multiple of `2^-1074`):

* `x` is an `Int`; the smallest binary16 subnormal `2^-24` is `2^k0` (`k0 = E − 24`);
* the ulp `2^u` that pyref's `_f16_ulp_exponent` picks is `2^k` (`k = u + E`); `f16_ulp_ok k0 k x` states
  what pyref's choice guarantees, and `tests/formal/test_mirror_f16.py` checks that pyref's exponent satisfies it
  over every binary16 value and its binary32/binary64 neighbours;
* the binary16 values are exactly `m·2^(k0+j)` with `|m| ≤ 2048`, `j ≤ 29` and magnitude `≤ 65504`
  (`is_f16`; the mirror checks this against all 65536 bit patterns).
-/
namespace Q35

/-- `pyref.f16_down(x)` with ulp `2^k`: `floor(x / 2^k)·2^k` (`Int` division floors for a positive divisor). -/
def f16_down (k : Nat) (x : Int) : Int := x / 2 ^ k * 2 ^ k

/-- `pyref.f16_up(x)` with ulp `2^k`: `ceil(x / 2^k)·2^k = -(floor(-x / 2^k)·2^k)`. -/
def f16_up (k : Nat) (x : Int) : Int := -(f16_down k (-x))

/-- What pyref's `_f16_ulp_exponent` guarantees for `x` (units `2^-E`, `k0 = E − 24`): `k` is at least the
subnormal exponent and at most that of `[32768, 65536)`, `|x| < 2048·2^k`, and unless `k` is the subnormal
exponent (or `x = 0`), `|x| ≥ 1024·2^k` (`x` lies in the binade whose ulp is `2^k`). -/
def f16_ulp_ok (k0 k : Nat) (x : Int) : Prop :=
  k0 ≤ k ∧ k ≤ k0 + 29 ∧ -(2048 * 2 ^ k) < x ∧ x < 2048 * 2 ^ k ∧
    (k = k0 ∨ x = 0 ∨ 1024 * 2 ^ k ≤ x ∨ x ≤ -(1024 * 2 ^ k))

/-- `|x| ≤ 65504`, the binary16 range (`65504 = 2047·2^5`, and `2^5` is `2^(k0+29)` in these units). -/
def f16_in_range (k0 : Nat) (x : Int) : Prop := -(2047 * 2 ^ (k0 + 29)) ≤ x ∧ x ≤ 2047 * 2 ^ (k0 + 29)

/-- `y` is a finite binary16 value: in range and `y = m·2^(k0+j)` with `|m| ≤ 2048`, `j ≤ 29`. -/
def is_f16 (k0 : Nat) (y : Int) : Prop :=
  f16_in_range k0 y ∧
    ∃ j, j ≤ 29 ∧ y % 2 ^ (k0 + j) = 0 ∧ -2048 ≤ y / 2 ^ (k0 + j) ∧ y / 2 ^ (k0 + j) ≤ 2048

/-- `pyref.f16_down` rounds down by less than one ulp: `f16_down(x) ≤ x < f16_down(x) + 2^k`. -/
theorem f16_down_le (k : Nat) (x : Int) : f16_down k x ≤ x ∧ x < f16_down k x + 2 ^ k := by
  unfold f16_down
  exact floor_bracket (2 ^ k) x (two_pow_pos k)

/-- `pyref.f16_up` rounds up by less than one ulp: `x ≤ f16_up(x) < x + 2^k`. -/
theorem le_f16_up (k : Nat) (x : Int) : x ≤ f16_up k x ∧ f16_up k x < x + 2 ^ k := by
  have h := f16_down_le k (-x)
  unfold f16_up
  omega

/-- A multiple `q·2^k` with `|q| ≤ 2048` and `k0 ≤ k ≤ k0 + 29`, inside the binary16 range, is binary16. -/
theorem is_f16_of_mul (k0 k : Nat) (q : Int) (hk0 : k0 ≤ k) (hk : k ≤ k0 + 29) (hq1 : -2048 ≤ q)
    (hq2 : q ≤ 2048) (hr : f16_in_range k0 (q * 2 ^ k)) : is_f16 k0 (q * 2 ^ k) := by
  have hP := two_pow_pos k
  have hne : (2 : Int) ^ k ≠ 0 := by omega
  have e : k0 + (k - k0) = k := by omega
  have h1 : q * 2 ^ k % 2 ^ (k0 + (k - k0)) = 0 := by
    rw [e]
    exact Int.mul_emod_left q (2 ^ k)
  have h2 : q * 2 ^ k / 2 ^ (k0 + (k - k0)) = q := by
    rw [e]
    exact Int.mul_ediv_cancel q hne
  unfold is_f16
  exact ⟨hr, k - k0, by omega, h1, by omega, by omega⟩

/-- The quotient `x / 2^k` of `pyref.f16_down` lies in `[-2048, 2047]`, and `f16_down(x)` stays inside the
binary16 range (shared by `f16_down_is_f16` and `f16_up_is_f16`). -/
theorem f16_down_parts (k0 k : Nat) (x : Int) (hk : f16_ulp_ok k0 k x) (hx : f16_in_range k0 x) :
    -2048 ≤ x / 2 ^ k ∧ x / 2 ^ k ≤ 2047 ∧ f16_in_range k0 (f16_down k x) := by
  unfold f16_ulp_ok at hk
  unfold f16_in_range at hx ⊢
  unfold f16_down
  have hP := two_pow_pos k
  have hb := floor_bracket (2 ^ k) x hP
  have e0 : (x / 2 ^ k + 1) * 2 ^ k = x / 2 ^ k * 2 ^ k + 1 * 2 ^ k := Int.add_mul (x / 2 ^ k) 1 (2 ^ k)
  have hq2 := lt_of_mul_lt_mul_pos (2 ^ k) (x / 2 ^ k) 2048 hP (by omega)
  have hq1 := lt_of_mul_lt_mul_pos (2 ^ k) (-2048) (x / 2 ^ k + 1) hP (by omega)
  have e1 : (2 : Int) ^ (k0 + 29) = 2 ^ (k0 + 29 - k) * 2 ^ k := by
    rw [← two_pow_add (k0 + 29 - k) k]
    have e : k0 + 29 - k + k = k0 + 29 := by omega
    rw [e]
  have e2 : (-2047 : Int) * 2 ^ (k0 + 29 - k) * 2 ^ k = -2047 * (2 ^ (k0 + 29 - k) * 2 ^ k) :=
    Int.mul_assoc (-2047) (2 ^ (k0 + 29 - k)) (2 ^ k)
  have hlow := mul_le_floor (2 ^ k) x (-2047 * 2 ^ (k0 + 29 - k)) hP (by rw [e2, ← e1]; omega)
  rw [e2, ← e1] at hlow
  omega

/-- `pyref.f16_down(x)` is a binary16 value (so the stored zero is exact), for every `x` in the binary16
range with pyref's ulp exponent. -/
theorem f16_down_is_f16 (k0 k : Nat) (x : Int) (hk : f16_ulp_ok k0 k x) (hx : f16_in_range k0 x) :
    is_f16 k0 (f16_down k x) := by
  have hp := f16_down_parts k0 k x hk hx
  unfold f16_ulp_ok at hk
  unfold f16_down at hp ⊢
  exact is_f16_of_mul k0 k (x / 2 ^ k) hk.1 hk.2.1 hp.1 (by omega) hp.2.2

/-- `pyref.f16_up(x)` is a binary16 value (so the stored scale is exact), for every `x` in the binary16
range with pyref's ulp exponent. -/
theorem f16_up_is_f16 (k0 k : Nat) (x : Int) (hk : f16_ulp_ok k0 k x) (hx : f16_in_range k0 x) :
    is_f16 k0 (f16_up k x) := by
  have hk' : f16_ulp_ok k0 k (-x) := by
    unfold f16_ulp_ok at hk ⊢
    omega
  have hx' : f16_in_range k0 (-x) := by
    unfold f16_in_range at hx ⊢
    omega
  have hp := f16_down_parts k0 k (-x) hk' hx'
  have hr := le_f16_up k x
  have e : f16_up k x = -((-x) / 2 ^ k) * 2 ^ k := by
    unfold f16_up f16_down
    rw [Int.neg_mul]
  have e3 : -((-x) / 2 ^ k) * 2 ^ k = -((-x) / 2 ^ k * 2 ^ k) := by rw [Int.neg_mul]
  rw [e] at hr ⊢
  unfold f16_ulp_ok at hk
  unfold f16_in_range at hp hx
  unfold f16_down at hp
  exact is_f16_of_mul k0 k (-((-x) / 2 ^ k)) hk.1 hk.2.1 (by omega) (by omega) ⟨by omega, by omega⟩

/-- The core of "nearest": any `m·2^(k0+j)` with `|m| ≤ 2048` and `j ≤ 29` that is `≤ x` is
`≤ pyref.f16_down(x)`. Either it is a multiple of the ulp `2^k` (then floor keeps it), or it lies below the
binade of `x`, which is then `0` or at least `1024·2^k` in magnitude. -/
theorem f16_down_ge_rep (k0 k j : Nat) (x m : Int) (hk : f16_ulp_ok k0 k x) (hj : j ≤ 29)
    (hm1 : -2048 ≤ m) (hm2 : m ≤ 2048) (hy : m * 2 ^ (k0 + j) ≤ x) : m * 2 ^ (k0 + j) ≤ f16_down k x := by
  unfold f16_ulp_ok at hk
  unfold f16_down
  have hP := two_pow_pos k
  by_cases hjk : k ≤ k0 + j
  · have e1 : (2 : Int) ^ (k0 + j) = 2 ^ (k0 + j - k) * 2 ^ k := by
      rw [← two_pow_add (k0 + j - k) k]
      have e : k0 + j - k + k = k0 + j := by omega
      rw [e]
    have e2 : m * 2 ^ (k0 + j) = m * 2 ^ (k0 + j - k) * 2 ^ k := by
      rw [e1, Int.mul_assoc]
    rw [e2] at hy ⊢
    exact mul_le_floor (2 ^ k) x (m * 2 ^ (k0 + j - k)) hP hy
  · have e1 : (2 : Int) ^ k = 2 ^ (k0 + j) * 2 ^ (k - (k0 + j)) := by
      rw [← two_pow_add (k0 + j) (k - (k0 + j))]
      have e : k0 + j + (k - (k0 + j)) = k := by omega
      rw [e]
    have e2 : (2 : Int) ^ (k - (k0 + j)) = 2 ^ (k - (k0 + j) - 1) * 2 := by
      rw [← two_pow_succ (k - (k0 + j) - 1)]
      have e : k - (k0 + j) - 1 + 1 = k - (k0 + j) := by omega
      rw [e]
    have hQ := two_pow_pos (k0 + j)
    have hR := two_pow_pos (k - (k0 + j) - 1)
    have hR2 : 2 ≤ (2 : Int) ^ (k - (k0 + j)) := by
      rw [e2]
      omega
    have hQR : (2 : Int) ^ (k0 + j) * 2 ≤ 2 ^ (k0 + j) * 2 ^ (k - (k0 + j)) :=
      Int.mul_le_mul_of_nonneg_left hR2 (by omega)
    rw [← e1] at hQR
    have hy1 : m * 2 ^ (k0 + j) ≤ 2048 * 2 ^ (k0 + j) := Int.mul_le_mul_of_nonneg_right hm2 (by omega)
    have hy2 : -2048 * 2 ^ (k0 + j) ≤ m * 2 ^ (k0 + j) := Int.mul_le_mul_of_nonneg_right hm1 (by omega)
    have hne : k ≠ k0 := by omega
    rcases hk with ⟨_, _, _, _, hcase⟩
    rcases hcase with h0 | h0 | h0 | h0
    · exact absurd h0 hne
    · have h := mul_le_floor (2 ^ k) x 0 hP (by omega)
      omega
    · have h := mul_le_floor (2 ^ k) x 1024 hP (by omega)
      omega
    · have h := mul_le_floor (2 ^ k) x (-1024) hP (by omega)
      omega

/-- `y = (y / 2^(k0+j))·2^(k0+j)` when `2^(k0+j)` divides `y` (the representation inside `is_f16`). -/
theorem eq_of_emod_eq_zero (y : Int) (n : Nat) (h : y % 2 ^ n = 0) : y = y / 2 ^ n * 2 ^ n := by
  have h1 := Int.emod_add_ediv y (2 ^ n)
  have hc : 2 ^ n * (y / 2 ^ n) = y / 2 ^ n * 2 ^ n := Int.mul_comm (2 ^ n) (y / 2 ^ n)
  omega

/-- `pyref.f16_down(x)` is the nearest binary16 value below `x`: every binary16 `y ≤ x` is `≤ f16_down(x)`. -/
theorem f16_down_nearest (k0 k : Nat) (x y : Int) (hk : f16_ulp_ok k0 k x) (hy : is_f16 k0 y)
    (hyx : y ≤ x) : y ≤ f16_down k x := by
  unfold is_f16 at hy
  rcases hy with ⟨_, j, hj, hmod, hm1, hm2⟩
  have hyq := eq_of_emod_eq_zero y (k0 + j) hmod
  have h := f16_down_ge_rep k0 k j x (y / 2 ^ (k0 + j)) hk hj hm1 hm2 (by omega)
  omega

/-- `pyref.f16_up(x)` is the nearest binary16 value above `x`: every binary16 `y ≥ x` is `≥ f16_up(x)`. -/
theorem f16_up_nearest (k0 k : Nat) (x y : Int) (hk : f16_ulp_ok k0 k x) (hy : is_f16 k0 y)
    (hxy : x ≤ y) : f16_up k x ≤ y := by
  have hk' : f16_ulp_ok k0 k (-x) := by
    unfold f16_ulp_ok at hk ⊢
    omega
  unfold is_f16 at hy
  rcases hy with ⟨_, j, hj, hmod, hm1, hm2⟩
  have hyq := eq_of_emod_eq_zero y (k0 + j) hmod
  have e : -(y / 2 ^ (k0 + j)) * 2 ^ (k0 + j) = -(y / 2 ^ (k0 + j) * 2 ^ (k0 + j)) := by
    rw [Int.neg_mul]
  have h := f16_down_ge_rep k0 k j (-x) (-(y / 2 ^ (k0 + j))) hk' hj (by omega) (by omega) (by omega)
  unfold f16_up
  omega

/-- `pyref.group_params`' zero `z = f16_down(min)` (ulp exponent `kz` of the group minimum `m`). -/
def group_zero (kz : Nat) (m : Int) : Int := f16_down kz m

/-- `pyref.group_params`' scale `s = max(f16_up(q), 2^-24)` for the binary64 quotient `q = (M − z)/15`
(ulp exponent `ks` of `q`; `2^-24` is `2^k0`). -/
def group_scale (k0 ks : Nat) (q : Int) : Int := max (f16_up ks q) (2 ^ k0)

/-- SPEC §3: the grid of `pyref.group_params` contains its group. `z ≤ min`, and `z + 15·s ≥ max` up to the
two binary64 roundings of `q = (M − z)/15` (hypothesis `hq`, checked exactly by the mirror for pyref's `q`):
`(2^52 − 1)·(M − z) ≤ 2^52·15·s`. This discharges the premise `z ≤ w ≤ z + 15·s` of
`quant_error_half_step` for every value of the group, up to that relative `2^-52`. -/
theorem grid_covers_group (k0 kz ks : Nat) (m M q : Int)
    (hq : 4503599627370495 * (M - group_zero kz m) ≤ 4503599627370496 * (15 * q)) :
    group_zero kz m ≤ m ∧
      4503599627370495 * (M - group_zero kz m) ≤ 4503599627370496 * (15 * group_scale k0 ks q) := by
  have hz := f16_down_le kz m
  have hs := le_f16_up ks q
  have hmax := Int.le_max_left (f16_up ks q) (2 ^ k0)
  unfold group_zero group_scale at hq ⊢
  omega

/-- The zero and scale of `pyref.group_params` are binary16 values (the binary16 arrays store them exactly)
and the scale is positive. -/
theorem group_params_f16 (k0 kz ks : Nat) (m q : Int) (hz : f16_ulp_ok k0 kz m) (hm : f16_in_range k0 m)
    (hs : f16_ulp_ok k0 ks q) (hq : f16_in_range k0 q) :
    is_f16 k0 (group_zero kz m) ∧ is_f16 k0 (group_scale k0 ks q) ∧ 0 < group_scale k0 ks q := by
  have h0 := f16_down_is_f16 k0 kz m hz hm
  have h1 := f16_up_is_f16 k0 ks q hs hq
  have hp0 := two_pow_pos k0
  have e := two_pow_add k0 29
  have e29 : (2 : Int) ^ 29 = 536870912 := by decide
  rw [e29] at e
  have h2 := is_f16_of_mul k0 k0 1 (Nat.le_refl k0) (by omega) (by omega) (by omega)
    ⟨by omega, by omega⟩
  rw [Int.one_mul] at h2
  have hmax := Int.le_max_right (f16_up ks q) (2 ^ k0)
  unfold group_zero group_scale
  refine ⟨h0, ?_, by omega⟩
  rw [Int.max_def]
  split
  · exact h2
  · exact h1

end Q35
