/-!
# Blocks: 8 pair codes ↔ 7 bytes (SPEC §4)

A block's 56-bit value is `V = Σ c_i·2^(7i)` (pair 0 in the least significant bits) and its bytes are
`V` little-endian. Both directions are changes of base between base 128 (eight 7-bit digits) and base
256 (seven 8-bit digits) of the same number `V < 2^56`:

* `from_digits b [d₀, d₁, …] = d₀ + b·(d₁ + b·(…))` is pyref's loop `v |= d << (w·i)` for `b = 2^w`
  and digits `< b` (disjoint bit fields, so `|` is `+`);
* `to_digits b n v = [v % b, v / b % b, …]` (n digits) is pyref's `[(v >> (w·i)) & (b - 1) for i < n]`.

`tests/formal/test_mirror_block.py` proves with z3, over all 2^56 inputs, that these are exactly pyref's
bit-level `pack_block`/`unpack_block`.
-/
namespace Q35

/-- Little-endian value of base-`b` digits (pyref: `v |= d << (w*i)` with `b = 2^w`). -/
def from_digits (b : Nat) : List Nat → Nat
  | [] => 0
  | d :: ds => d + b * from_digits b ds

/-- The `n` least significant base-`b` digits of `v`, least significant first
(pyref: `[(v >> (w*i)) & (2^w - 1) for i in range(n)]` with `b = 2^w`). -/
def to_digits (b : Nat) : Nat → Nat → List Nat
  | 0, _ => []
  | n + 1, v => v % b :: to_digits b n (v / b)

/-- `pyref.pack_block`: 8 pair codes → the 7 little-endian bytes of `V = Σ c_i·2^(7i)`. -/
def pack_block (pair_codes : List Nat) : List Nat := to_digits 256 7 (from_digits 128 pair_codes)

/-- `pyref.unpack_block`: 7 bytes → 8 pair codes (`V = Σ b_j·2^(8j)`, code `i` = bits `7i … 7i+6`). -/
def unpack_block (block : List Nat) : List Nat := to_digits 128 8 (from_digits 256 block)

/-- `to_digits b n v` has exactly `n` digits (`pyref.pack_block` returns 7 bytes, `unpack_block` 8 codes). -/
theorem to_digits_length (b n v : Nat) : (to_digits b n v).length = n := by
  induction n generalizing v with
  | zero => simp only [to_digits, List.length_nil]
  | succ n ih => simp only [to_digits, List.length_cons, ih]

/-- `pyref.pack_block` always yields `BLOCK_BYTES = 7` bytes (Fortran `q35_pack`, 7 bytes per block). -/
theorem pack_block_length (cs : List Nat) : (pack_block cs).length = 7 :=
  to_digits_length 256 7 (from_digits 128 cs)

/-- `pyref.unpack_block` always yields `PAIRS_PER_BLOCK = 8` pair codes (Fortran `q35_unpack`). -/
theorem unpack_block_length (bs : List Nat) : (unpack_block bs).length = 8 :=
  to_digits_length 128 8 (from_digits 256 bs)

/-- Seven-bit digits: the value of `n` pair codes `< 128` is `< 128^n` (fits the 56-bit block). -/
theorem from_digits_lt_128 (ds : List Nat) (h : ∀ d ∈ ds, d < 128) :
    from_digits 128 ds < 128 ^ ds.length := by
  induction ds with
  | nil => decide
  | cons d ds ih =>
    have hd : d < 128 := h d (by simp)
    have ih' := ih (fun x hx => h x (by simp [hx]))
    have hp : (128 : Nat) ^ (ds.length + 1) = 128 ^ ds.length * 128 := rfl
    simp only [from_digits, List.length_cons]
    omega

/-- Eight-bit digits: the value of `n` bytes is `< 256^n`. -/
theorem from_digits_lt_256 (ds : List Nat) (h : ∀ d ∈ ds, d < 256) :
    from_digits 256 ds < 256 ^ ds.length := by
  induction ds with
  | nil => decide
  | cons d ds ih =>
    have hd : d < 256 := h d (by simp)
    have ih' := ih (fun x hx => h x (by simp [hx]))
    have hp : (256 : Nat) ^ (ds.length + 1) = 256 ^ ds.length * 256 := rfl
    simp only [from_digits, List.length_cons]
    omega

/-- Reading back the 7-bit digits of a value built from 7-bit digits returns them
(pyref's `unpack_block` extraction `(v >> 7i) & 0x7F` after its `v |= c << 7i`). -/
theorem to_digits_from_digits_128 (ds : List Nat) (h : ∀ d ∈ ds, d < 128) :
    to_digits 128 ds.length (from_digits 128 ds) = ds := by
  induction ds with
  | nil => simp only [List.length_nil, to_digits]
  | cons d ds ih =>
    have hd : d < 128 := h d (by simp)
    have ih' := ih (fun x hx => h x (by simp [hx]))
    have e1 : (d + 128 * from_digits 128 ds) % 128 = d := by omega
    have e2 : (d + 128 * from_digits 128 ds) / 128 = from_digits 128 ds := by omega
    simp only [List.length_cons, from_digits, to_digits, e1, e2, ih']

/-- Reading back the bytes of a value built from bytes returns them
(pyref's `pack_block` extraction `(v >> 8j) & 0xFF` after `unpack_block`'s `v |= b << 8j`). -/
theorem to_digits_from_digits_256 (ds : List Nat) (h : ∀ d ∈ ds, d < 256) :
    to_digits 256 ds.length (from_digits 256 ds) = ds := by
  induction ds with
  | nil => simp only [List.length_nil, to_digits]
  | cons d ds ih =>
    have hd : d < 256 := h d (by simp)
    have ih' := ih (fun x hx => h x (by simp [hx]))
    have e1 : (d + 256 * from_digits 256 ds) % 256 = d := by omega
    have e2 : (d + 256 * from_digits 256 ds) / 256 = from_digits 256 ds := by omega
    simp only [List.length_cons, from_digits, to_digits, e1, e2, ih']

/-- Any `v < 256^n` is the value of its own `n` bytes (the 7 bytes of `pyref.pack_block` lose nothing). -/
theorem from_digits_to_digits_256 (n v : Nat) (h : v < 256 ^ n) :
    from_digits 256 (to_digits 256 n v) = v := by
  induction n generalizing v with
  | zero =>
    have hp : (256 : Nat) ^ 0 = 1 := rfl
    have hv : v = 0 := by omega
    subst hv
    simp only [to_digits, from_digits]
  | succ n ih =>
    have hp : (256 : Nat) ^ (n + 1) = 256 ^ n * 256 := rfl
    have hq : v / 256 < 256 ^ n := by omega
    simp only [to_digits, from_digits, ih (v / 256) hq]
    omega

/-- Any `v < 128^n` is the value of its own `n` seven-bit digits (`pyref.unpack_block`'s 8 codes lose
nothing of a 56-bit value). -/
theorem from_digits_to_digits_128 (n v : Nat) (h : v < 128 ^ n) :
    from_digits 128 (to_digits 128 n v) = v := by
  induction n generalizing v with
  | zero =>
    have hp : (128 : Nat) ^ 0 = 1 := rfl
    have hv : v = 0 := by omega
    subst hv
    simp only [to_digits, from_digits]
  | succ n ih =>
    have hp : (128 : Nat) ^ (n + 1) = 128 ^ n * 128 := rfl
    have hq : v / 128 < 128 ^ n := by omega
    simp only [to_digits, from_digits, ih (v / 128) hq]
    omega

/-- Unpacking the 7 bytes made from any 8 pair codes `< 128` gives the codes back
(`pyref.unpack_block ∘ pyref.pack_block`; Fortran `q35_unpack ∘ q35_pack` on one block). -/
theorem unpack_pack_block (cs : List Nat) (hlen : cs.length = 8) (hc : ∀ c ∈ cs, c < 128) :
    unpack_block (pack_block cs) = cs := by
  have hv : from_digits 128 cs < 256 ^ 7 := by
    have h := from_digits_lt_128 cs hc
    rw [hlen] at h
    have e : (128 : Nat) ^ 8 = 256 ^ 7 := by decide
    omega
  have hr := to_digits_from_digits_128 cs hc
  rw [hlen] at hr
  unfold unpack_block pack_block
  rw [from_digits_to_digits_256 7 (from_digits 128 cs) hv]
  exact hr

/-- Packing the 8 codes unpacked from any 7 bytes gives the bytes back: every 7-byte string is a valid
block and the encoding is a bijection (`pyref.pack_block ∘ pyref.unpack_block`; Fortran
`q35_pack ∘ q35_unpack` on one block). -/
theorem pack_unpack_block (bs : List Nat) (hlen : bs.length = 7) (hb : ∀ b ∈ bs, b < 256) :
    pack_block (unpack_block bs) = bs := by
  have hv : from_digits 256 bs < 128 ^ 8 := by
    have h := from_digits_lt_256 bs hb
    rw [hlen] at h
    have e : (256 : Nat) ^ 7 = 128 ^ 8 := by decide
    omega
  have hr := to_digits_from_digits_256 bs hb
  rw [hlen] at hr
  unfold pack_block unpack_block
  rw [from_digits_to_digits_128 8 (from_digits 256 bs) hv]
  exact hr

end Q35
