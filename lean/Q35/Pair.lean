/-!
# Pair codes (SPEC §4)

Columns `2i`, `2i+1` form pair `i`; its 7-bit code is `c = q4 + 16·q3`. pyref writes it with bit
operations (`q4 | q3 << 4`, `(c & 15, c >> 4)`); the arithmetic form is proved equal to them on the
whole domain by `encode_pair_bitwise` / `decode_pair_bitwise`.
-/
namespace Q35

/-- `pyref.encode_pair(q4, q3)`: the 7-bit pair code `q4 + 16·q3` (= `q4 | q3 << 4`). -/
def encode_pair (q4 q3 : Nat) : Nat := q4 + 16 * q3

/-- `pyref.decode_pair(c)`: `(c % 16, c / 16)` (= `(c & 15, c >> 4)`). -/
def decode_pair (c : Nat) : Nat × Nat := (c % 16, c / 16)

/-- Decoding an encoded pair gives it back, for every `q4 < 16`, `q3 < 8` (`pyref.decode_pair ∘
pyref.encode_pair`; Fortran `q35_unpack ∘ q35_pack` on one pair). -/
theorem decode_encode_pair (q4 q3 : Nat) (h4 : q4 < 16) (h3 : q3 < 8) :
    decode_pair (encode_pair q4 q3) = (q4, q3) := by
  have e1 : (q4 + 16 * q3) % 16 = q4 := by omega
  have e2 : (q4 + 16 * q3) / 16 = q3 := by omega
  unfold decode_pair encode_pair
  rw [e1, e2]

/-- Encoding a decoded code gives it back, for every `c < 128` (`pyref.encode_pair ∘ pyref.decode_pair`;
Fortran `q35_pack ∘ q35_unpack` on one pair). -/
theorem encode_decode_pair (c : Nat) (h : c < 128) :
    encode_pair (decode_pair c).1 (decode_pair c).2 = c := by
  simp only [encode_pair, decode_pair]
  omega

/-- Encoding maps `[0,15] × [0,7]` into the 7-bit codes `[0,127]` (`pyref.encode_pair`). -/
theorem encode_pair_range (q4 q3 : Nat) (h4 : q4 < 16) (h3 : q3 < 8) : encode_pair q4 q3 < 128 := by
  unfold encode_pair
  omega

/-- Decoding maps `[0,127]` into `[0,15] × [0,7]` (`pyref.decode_pair`). -/
theorem decode_pair_range (c : Nat) (h : c < 128) : (decode_pair c).1 < 16 ∧ (decode_pair c).2 < 8 := by
  simp only [decode_pair]
  omega

/-- The arithmetic `encode_pair` is pyref's bit expression `q4 | q3 << 4` on the whole domain
(128 cases, checked by `decide`). -/
theorem encode_pair_bitwise :
    ∀ q4 : Nat, q4 < 16 → ∀ q3 : Nat, q3 < 8 → (q4 ||| (q3 <<< 4)) = encode_pair q4 q3 := by
  decide

/-- The arithmetic `decode_pair` is pyref's bit expression `(c & 15, c >> 4)` on the whole domain
(128 cases, checked by `decide`). -/
theorem decode_pair_bitwise : ∀ c : Nat, c < 128 → ((c &&& 15), (c >>> 4)) = decode_pair c := by
  decide

end Q35
