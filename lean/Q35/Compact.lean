import Q35.Arith
import Q35.Block
import Q35.Codes
/-!
# Compact scale storage: the group-code bitstream, exact binary32 expansion, the search (SPEC §8)

* A row's `G` ten-bit group codes are stored as a little-endian bitstream of `ceil(10·G/8)` bytes, code `i`
  at bits `10i … 10i+9`: the change of base `1024 → 256` of `Block.lean`, with a byte count that is not a
  whole number of codes.
* The expanded grid `s = d·sc`, `z = −zp·s` is exact in binary32: `d` is a binary16 value (`m·2^e`,
  `m ≤ 2048`), so `d·sc` and `zp·d·sc` have integer significands below `2^24`.
* The search keeps the first candidate with the strictly smallest error, so its result is never worse than
  any candidate it tries, and the centred candidate `(c0, clamp(zc, 0, 15))` is always among them.
-/
namespace Q35

/-- `pyref.group_code_bytes_per_row(G)` (`q35.format`): `ceil(10·G/8)` bytes for `G` ten-bit codes. -/
def group_code_bytes (g : Nat) : Nat := (10 * g + 7) / 8

/-- `pyref.pack_group_codes(codes)`: `v = Σ c_i·2^(10i)` (`v |= c << 10i`), then the bytes
`(v >> 8j) & 0xFF` for `j < ceil(10·G/8)`. -/
def pack_group_codes (cs : List Nat) : List Nat := to_digits 256 (group_code_bytes cs.length) (from_digits 1024 cs)

/-- `pyref.unpack_group_codes(data, G)`: `v = Σ b_j·2^(8j)`, then `(v >> 10i) & 0x3FF` for `i < G`. -/
def unpack_group_codes (data : List Nat) (g : Nat) : List Nat := to_digits 1024 g (from_digits 256 data)

/-- The bitstream of `pyref.pack_group_codes` has exactly `ceil(10·G/8)` bytes, the fewest that hold
`10·G` bits (`q35.format.group_code_bytes_per_row`, the size counted by `encoded_nbytes`). -/
theorem pack_group_codes_length (cs : List Nat) :
    (pack_group_codes cs).length = group_code_bytes cs.length ∧
      10 * cs.length ≤ 8 * group_code_bytes cs.length ∧ 8 * group_code_bytes cs.length < 10 * cs.length + 8 := by
  have h := to_digits_length 256 (group_code_bytes cs.length) (from_digits 1024 cs)
  unfold pack_group_codes
  unfold group_code_bytes at h ⊢
  omega

/-- Ten-bit digits: the value of `G` codes `< 1024` is `< 2^(10·G)`. -/
theorem from_digits_lt_1024 (ds : List Nat) (h : ∀ d ∈ ds, d < 1024) :
    from_digits 1024 ds < 2 ^ (10 * ds.length) := by
  induction ds with
  | nil => decide
  | cons d ds ih =>
    have hd : d < 1024 := h d (by simp)
    have ih' := ih (fun x hx => h x (by simp [hx]))
    have e : 10 * (ds.length + 1) = 10 * ds.length + 10 := by omega
    have e10 : (2 : Nat) ^ 10 = 1024 := by decide
    have hp := nat_pow_add 2 (10 * ds.length) 10
    rw [e10] at hp
    simp only [from_digits, List.length_cons, e, hp]
    omega

/-- Reading back the ten-bit digits of a value built from ten-bit digits returns them. -/
theorem to_digits_from_digits_1024 (ds : List Nat) (h : ∀ d ∈ ds, d < 1024) :
    to_digits 1024 ds.length (from_digits 1024 ds) = ds := by
  induction ds with
  | nil => simp only [List.length_nil, to_digits]
  | cons d ds ih =>
    have hd : d < 1024 := h d (by simp)
    have ih' := ih (fun x hx => h x (by simp [hx]))
    have e1 : (d + 1024 * from_digits 1024 ds) % 1024 = d := by omega
    have e2 : (d + 1024 * from_digits 1024 ds) / 1024 = from_digits 1024 ds := by omega
    simp only [List.length_cons, from_digits, to_digits, e1, e2, ih']

/-- SPEC §8: the group-code bitstream round trip, `pyref.unpack_group_codes(pyref.pack_group_codes(cs), G) = cs`
for every list of codes `< 1024` (Fortran `q35_quantize_compact`'s codes, serialized by `q35.models`). -/
theorem unpack_pack_group_codes (cs : List Nat) (h : ∀ c ∈ cs, c < 1024) :
    unpack_group_codes (pack_group_codes cs) cs.length = cs := by
  have h1 := from_digits_lt_1024 cs h
  have h2 := nat_two_pow_le (10 * cs.length) (8 * group_code_bytes cs.length) (by unfold group_code_bytes; omega)
  have h3 := pow_256 (group_code_bytes cs.length)
  have hv : from_digits 1024 cs < 256 ^ group_code_bytes cs.length := by omega
  unfold unpack_group_codes pack_group_codes
  rw [from_digits_to_digits_256 (group_code_bytes cs.length) (from_digits 1024 cs) hv]
  exact to_digits_from_digits_1024 cs h

/-- `y ≥ 0` is a binary32 value, in units where the smallest binary32 subnormal `2^-149` is `2^k0`:
`y = m·2^(k0+j)` with `m < 2^24` and `j ≤ 253` (`(2^24 − 1)·2^104` is the largest binary32). -/
def is_f32 (k0 : Nat) (y : Nat) : Prop := ∃ j, j ≤ 253 ∧ y % 2 ^ (k0 + j) = 0 ∧ y / 2 ^ (k0 + j) < 16777216

/-- `q·2^(k0+j)` with `q < 2^24` and `j ≤ 253` is a binary32 value. -/
theorem is_f32_of_mul (k0 j q : Nat) (hj : j ≤ 253) (hq : q < 16777216) : is_f32 k0 (q * 2 ^ (k0 + j)) := by
  have hP := nat_two_pow_pos (k0 + j)
  have h1 : q * 2 ^ (k0 + j) % 2 ^ (k0 + j) = 0 := Nat.mul_mod_left q (2 ^ (k0 + j))
  have h2 : q * 2 ^ (k0 + j) / 2 ^ (k0 + j) = q := Nat.mul_div_cancel q hP
  unfold is_f32
  exact ⟨j, hj, h1, by omega⟩

/-- `q35.format.expand_compact`'s scale `s = d·sc` (magnitudes in the units of `is_f32`). -/
def compact_scale (d sc : Nat) : Nat := d * sc

/-- `q35.format.expand_compact`'s zero magnitude `zp·(d·sc)` (the stored zero is its negation). -/
def compact_zero (d sc zp : Nat) : Nat := zp * (d * sc)

/-- SPEC §8: the compact grid expands exactly into binary32. For a binary16 row scale `d = m·2^(k0+125+j)`
(`m ≤ 2048`, `j ≤ 29`: the binary16 values in units of `2^-149`), a scale code `sc ≤ 63` and a zero point
`zp ≤ 15`, both `s = d·sc` and `|z| = zp·s` are binary32 values (`q35.format.expand_compact`, the
`scales`/`zeros` the kernels read). -/
theorem compact_grid_exact (k0 j m sc zp d : Nat) (hd : d = m * 2 ^ (k0 + (125 + j))) (hj : j ≤ 29)
    (hm : m ≤ 2048) (hsc : sc ≤ 63) (hzp : zp ≤ 15) :
    is_f32 k0 (compact_scale d sc) ∧ is_f32 k0 (compact_zero d sc zp) := by
  unfold compact_scale compact_zero
  have hms : m * sc ≤ 2048 * 63 := Nat.mul_le_mul hm hsc
  have hzms : zp * (m * sc) ≤ 15 * (2048 * 63) := Nat.mul_le_mul hzp hms
  have e1 : d * sc = m * sc * 2 ^ (k0 + (125 + j)) := by
    rw [hd, Nat.mul_right_comm m (2 ^ (k0 + (125 + j))) sc]
  have e2 : zp * (d * sc) = zp * (m * sc) * 2 ^ (k0 + (125 + j)) := by
    rw [e1, ← Nat.mul_assoc zp (m * sc) (2 ^ (k0 + (125 + j)))]
  rw [e2, e1]
  exact ⟨is_f32_of_mul k0 (125 + j) (m * sc) (by omega) (by omega),
    is_f32_of_mul k0 (125 + j) (zp * (m * sc)) (by omega) (by omega)⟩

/-- `clamp v lo hi = lo` below the range (`pyref.clamp`). -/
theorem clamp_of_lt (v lo hi : Int) (h : v < lo) : clamp v lo hi = lo := by
  unfold clamp
  rw [if_pos h]

/-- The centred zero point `clamp(zc, 0, 15)` lies in `pyref.search_group`'s zero-point range
`max(0, min(15, zc − 1)) … min(15, max(0, zc + 1))`. -/
theorem clamp_between (v : Int) :
    max 0 (min 15 (v - 1)) ≤ clamp v 0 15 ∧ clamp v 0 15 ≤ min 15 (max 0 (v + 1)) := by
  by_cases h1 : v < 0
  · rw [clamp_of_lt v 0 15 h1]
    omega
  · by_cases h2 : 15 < v
    · rw [clamp_of_gt v 0 15 (by omega) h2]
      omega
    · rw [clamp_of_mem v 0 15 (by omega) (by omega)]
      omega

/-- `lo, lo + 1, …` (`n` integers; `range(lo, lo + n)`). -/
def int_range_n (lo : Int) : Nat → List Int
  | 0 => []
  | n + 1 => lo :: int_range_n (lo + 1) n

/-- Python's `range(lo, hi + 1)`: the integers `lo … hi`, ascending (empty when `hi < lo`). -/
def int_range (lo hi : Int) : List Int := int_range_n lo (hi + 1 - lo).toNat

theorem mem_int_range_n (x lo : Int) (n : Nat) (h1 : lo ≤ x) (h2 : x < lo + n) : x ∈ int_range_n lo n := by
  induction n generalizing lo with
  | zero => omega
  | succ n ih =>
    simp only [int_range_n, List.mem_cons]
    by_cases hx : x = lo
    · exact Or.inl hx
    · exact Or.inr (ih (lo + 1) (by omega) (by omega))

/-- Every integer of `lo … hi` is in `int_range lo hi`. -/
theorem mem_int_range (x lo hi : Int) (h1 : lo ≤ x) (h2 : x ≤ hi) : x ∈ int_range lo hi := by
  have h := Int.toNat_of_nonneg (show 0 ≤ hi + 1 - lo by omega)
  unfold int_range
  exact mem_int_range_n x lo (hi + 1 - lo).toNat h1 (by omega)

/-- `pyref.search_group`'s scale codes, ascending: `max(1, ⌊5·c0/8⌋) … min(63, c0 + 1)`. -/
def sc_candidates (c0 : Int) : List Int := int_range (max 1 (5 * c0 / 8)) (min 63 (c0 + 1))

/-- `pyref.search_group`'s zero points for one scale code, ascending: `max(0, min(15, zc − 1)) …
min(15, max(0, zc + 1))` around the centring zero point `zc`. -/
def zp_candidates (zc : Int) : List Int := int_range (max 0 (min 15 (zc - 1))) (min 15 (max 0 (zc + 1)))

/-- `(sc, zp)` for every `zp` of a list, in order. -/
def pairs_with (sc : Int) : List Int → List (Int × Int)
  | [] => []
  | zp :: zps => (sc, zp) :: pairs_with sc zps

/-- The grids `pyref.search_group` tries, in its loop order: for each scale code `sc`, the zero points around
`zc sc = floor(8 − (lo + hi)/(2·d·sc))` (a function of `sc`, computed in binary64 by pyref). -/
def search_candidates (zc : Int → Int) : List Int → List (Int × Int)
  | [] => []
  | sc :: scs => pairs_with sc (zp_candidates (zc sc)) ++ search_candidates zc scs

/-- `pyref.search_group`'s loop: keep the first candidate whose error `e` is strictly smaller. -/
def keep_best (e : Int × Int → Int) : Int × Int → List (Int × Int) → Int × Int
  | best, [] => best
  | best, c :: cs => keep_best e (if e c < e best then c else best) cs

/-- The result of the loop over a candidate list (pyref's initial `(c0, 0)` when there is none). -/
def search_from (e : Int × Int → Int) (default : Int × Int) : List (Int × Int) → Int × Int
  | [] => default
  | c :: cs => keep_best e c cs

/-- `pyref.search_group(values, weights, start, d)` for the weighted error `e(sc, zp)` of each grid, the
ceiling scale code `c0` and the centring zero points `zc`. -/
def search_group (e : Int × Int → Int) (c0 : Int) (zc : Int → Int) : Int × Int :=
  search_from e (c0, 0) (search_candidates zc (sc_candidates c0))

theorem mem_pairs_with (sc zp : Int) (zps : List Int) (h : zp ∈ zps) : (sc, zp) ∈ pairs_with sc zps := by
  induction zps with
  | nil => simp at h
  | cons z zps ih =>
    simp only [pairs_with, List.mem_cons]
    rcases List.mem_cons.mp h with e | h'
    · exact Or.inl (by rw [e])
    · exact Or.inr (ih h')

theorem mem_search_candidates (zc : Int → Int) (scs : List Int) (sc zp : Int) (h1 : sc ∈ scs)
    (h2 : zp ∈ zp_candidates (zc sc)) : (sc, zp) ∈ search_candidates zc scs := by
  induction scs with
  | nil => simp at h1
  | cons s scs ih =>
    simp only [search_candidates, List.mem_append]
    rcases List.mem_cons.mp h1 with e | h1'
    · rw [← e]
      exact Or.inl (mem_pairs_with sc zp _ h2)
    · exact Or.inr (ih h1')

/-- The loop never ends above its start or above any candidate it visits. -/
theorem keep_best_le (e : Int × Int → Int) (best : Int × Int) (cs : List (Int × Int)) :
    e (keep_best e best cs) ≤ e best ∧ ∀ c ∈ cs, e (keep_best e best cs) ≤ e c := by
  induction cs generalizing best with
  | nil => exact ⟨Int.le_refl (e best), fun c hc => by simp at hc⟩
  | cons c cs ih =>
    have e1 : keep_best e best (c :: cs) = keep_best e (if e c < e best then c else best) cs := rfl
    rw [e1]
    by_cases hc : e c < e best
    · rw [if_pos hc]
      have h := ih c
      refine ⟨by omega, fun d hd => ?_⟩
      rcases List.mem_cons.mp hd with ed | hd'
      · rw [ed]
        exact h.1
      · exact h.2 d hd'
    · rw [if_neg hc]
      have h := ih best
      refine ⟨h.1, fun d hd => ?_⟩
      rcases List.mem_cons.mp hd with ed | hd'
      · rw [ed]
        omega
      · exact h.2 d hd'

theorem search_from_le (e : Int × Int → Int) (default c : Int × Int) (cands : List (Int × Int))
    (h : c ∈ cands) : e (search_from e default cands) ≤ e c := by
  cases cands with
  | nil => simp at h
  | cons d ds =>
    have hk := keep_best_le e d ds
    have e1 : search_from e default (d :: ds) = keep_best e d ds := rfl
    rw [e1]
    rcases List.mem_cons.mp h with ed | h'
    · rw [ed]
      exact hk.1
    · exact hk.2 c h'

/-- SPEC §8: `pyref.search_group` never returns a grid with a larger weighted error than the centred
candidate `(c0, clamp(zc c0, 0, 15))`, whatever the error function (the binary64 sums of
`pyref.group_error`) and the centring zero points; `1 ≤ c0 ≤ 63` as pyref clamps it. -/
theorem search_group_le_centred (e : Int × Int → Int) (c0 : Int) (zc : Int → Int) (h1 : 1 ≤ c0)
    (h2 : c0 ≤ 63) : e (search_group e c0 zc) ≤ e (c0, clamp (zc c0) 0 15) := by
  have hsc : c0 ∈ sc_candidates c0 := by
    unfold sc_candidates
    exact mem_int_range c0 _ _ (by omega) (by omega)
  have hb := clamp_between (zc c0)
  have hzp : clamp (zc c0) 0 15 ∈ zp_candidates (zc c0) := by
    unfold zp_candidates
    exact mem_int_range _ _ _ hb.1 hb.2
  unfold search_group
  exact search_from_le e (c0, 0) _ _ (mem_search_candidates zc _ c0 _ hsc hzp)

end Q35
