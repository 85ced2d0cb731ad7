import Q35.Arith
import Q35.Block
import Q35.Length
import Q35.Pair
/-!
# Whole rows: pairs from columns, zero padding, `pack_row`/`unpack_row` (SPEC §4)

pyref's `pack_row` pads the row's codes with zeros to `16·ceil(K/16)` columns, pairs columns `2i`, `2i+1`
into `encode_pair`, and packs every 8 pair codes into 7 bytes. Since `128^8 = 256^7`, consecutive 56-bit
blocks are the little-endian bytes of the one number `Σ_i pair_i·128^i`; `pack_row` is stated in that form
(`tests/formal/test_mirror_row.py` proves with z3 that pyref's block loop computes exactly it for every row up to
64 columns, and checks longer rows exhaustively on small alphabets). `unpack_row` reads the blocks back,
splits every pair code and keeps the first `n` codes.
-/
namespace Q35

/-- Code `i` of a row, `0` past its end: pyref's zero-padded `padded[i]`. -/
def code_at : List Nat → Nat → Nat
  | [], _ => 0
  | c :: _, 0 => c
  | _ :: cs, i + 1 => code_at cs i

/-- `ceil(K/16)`: the blocks of a row of `K` codes. -/
def row_blocks (k : Nat) : Nat := (k + 15) / 16

/-- `pyref.pack_row`'s `padded`: the codes followed by zero codes up to `16·ceil(K/16)` columns. -/
def pad_row (cs : List Nat) : List Nat := cs ++ List.replicate (16 * row_blocks cs.length - cs.length) 0

/-- `pyref.pack_row`'s `pairs`: `encode_pair(padded[2i], padded[2i+1])`, columns in order. -/
def row_pairs : List Nat → List Nat
  | [] => []
  | [a] => [encode_pair a 0]
  | a :: b :: rest => encode_pair a b :: row_pairs rest

/-- `pyref.pack_row(codes)`: the `P = 7·ceil(K/16)` bytes of the row (`q35_pack` in Fortran). -/
def pack_row (cs : List Nat) : List Nat :=
  to_digits 256 (packed_length cs.length) (from_digits 128 (row_pairs (pad_row cs)))

/-- `pyref.unpack_row`'s split of pair codes into per-column codes (`decode_pair`). -/
def row_codes : List Nat → List Nat
  | [] => []
  | c :: cs => (decode_pair c).1 :: (decode_pair c).2 :: row_codes cs

/-- `pyref.unpack_row(row, n)`: the 8 pair codes of every 7-byte block, split into codes, first `n` kept
(`q35_unpack` in Fortran). -/
def unpack_row (row : List Nat) (n : Nat) : List Nat :=
  (row_codes (to_digits 128 (8 * (row.length / 7)) (from_digits 256 row))).take n

/-- The codes a row may hold (`q35.format.checks.check_codes`): 4-bit codes on even columns, 3-bit on odd ones. -/
def codes_ok : List Nat → Prop
  | [] => True
  | [a] => a < 16
  | a :: b :: rest => a < 16 ∧ b < 8 ∧ codes_ok rest

/-- SPEC §4 pairs from columns: pair `i` of `pyref.pack_row` holds columns `2i` (low 4 bits) and `2i+1`
(high 3 bits), columns past the end reading as the padding code `0`. -/
theorem row_pairs_code_at (l : List Nat) (i : Nat) :
    code_at (row_pairs l) i = encode_pair (code_at l (2 * i)) (code_at l (2 * i + 1)) :=
  match l, i with
  | [], _ => rfl
  | [_], 0 => rfl
  | [_], _ + 1 => rfl
  | _ :: _ :: _, 0 => rfl
  | _ :: _ :: rest, i + 1 => by
    have ih := row_pairs_code_at rest i
    have e : 2 * (i + 1) = 2 * i + 1 + 1 := by omega
    first
    | exact ih
    | (simp only [row_pairs, code_at, e]; exact ih)

/-- `pyref.pack_row` pairs `K` codes into `ceil(K/2)` pair codes. -/
theorem row_pairs_length (l : List Nat) : (row_pairs l).length = (l.length + 1) / 2 :=
  match l with
  | [] => rfl
  | [_] => rfl
  | a :: b :: rest => by
    have ih := row_pairs_length rest
    simp only [row_pairs, List.length_cons]
    omega

/-- The padded row has `16·ceil(K/16)` columns. -/
theorem pad_row_length (cs : List Nat) : (pad_row cs).length = 16 * row_blocks cs.length := by
  unfold pad_row row_blocks
  rw [List.length_append, List.length_replicate]
  omega

/-- SPEC §4: `pyref.pack_row` produces exactly `P = 7·ceil(K/16)` bytes (`packed_length`, the
`payload_bytes_per_row` of `q35.format` and the `P` the bridge passes to Fortran `q35_pack`). -/
theorem pack_row_length (cs : List Nat) : (pack_row cs).length = packed_length cs.length := by
  unfold pack_row
  exact to_digits_length 256 (packed_length cs.length) _

theorem codes_ok_replicate (n : Nat) : codes_ok (List.replicate n 0) :=
  match n with
  | 0 => True.intro
  | 1 => (by decide : (0 : Nat) < 16)
  | n + 2 => And.intro (by decide) (And.intro (by decide) (codes_ok_replicate n))

/-- Zero padding keeps a row valid (the padding codes `0` are valid on both lanes). -/
theorem codes_ok_append_zeros (l : List Nat) (n : Nat) (h : codes_ok l) :
    codes_ok (l ++ List.replicate n 0) :=
  match l, h with
  | [], _ => codes_ok_replicate n
  | [_], h =>
    match n with
    | 0 => h
    | m + 1 => And.intro h (And.intro (by decide) (codes_ok_replicate m))
  | a :: b :: rest, h =>
    have h' : a < 16 ∧ b < 8 ∧ codes_ok rest := h
    And.intro h'.1 (And.intro h'.2.1 (codes_ok_append_zeros rest n h'.2.2))

/-- Every pair code of a valid row fits 7 bits. -/
theorem row_pairs_lt (l : List Nat) (h : codes_ok l) : ∀ p ∈ row_pairs l, p < 128 :=
  match l, h with
  | [], _ => by
    intro p hp
    simp [row_pairs] at hp
  | [a], h => by
    have ha : a < 16 := h
    intro p hp
    simp only [row_pairs, List.mem_cons] at hp
    rcases hp with e | hp
    · rw [e]
      unfold encode_pair
      omega
    · simp at hp
  | a :: b :: rest, h => by
    have h' : a < 16 ∧ b < 8 ∧ codes_ok rest := h
    have ih := row_pairs_lt rest h'.2.2
    intro p hp
    simp only [row_pairs, List.mem_cons] at hp
    rcases hp with e | hp
    · rw [e]
      unfold encode_pair
      omega
    · exact ih p hp

/-- Splitting the pair codes of a valid row of even length gives the row back (`decode_pair ∘ encode_pair`
on every pair, in column order). -/
theorem row_codes_row_pairs (l : List Nat) (hok : codes_ok l) (hev : l.length % 2 = 0) :
    row_codes (row_pairs l) = l :=
  match l, hok, hev with
  | [], _, _ => rfl
  | [a], _, hev => by
    have e : [a].length = 1 := rfl
    omega
  | a :: b :: rest, hok, hev => by
    have h' : a < 16 ∧ b < 8 ∧ codes_ok rest := hok
    have hl : (a :: b :: rest).length = rest.length + 1 + 1 := rfl
    have ih := row_codes_row_pairs rest h'.2.2 (by omega)
    simp only [row_pairs, row_codes, decode_encode_pair a b h'.1 h'.2.1, ih]

theorem take_length_append (l r : List Nat) : (l ++ r).take l.length = l := by
  induction l with
  | nil => simp only [List.nil_append, List.length_nil, List.take]
  | cons a l ih => simp only [List.cons_append, List.length_cons, List.take, ih]

theorem take_length_self (l : List Nat) : l.take l.length = l := by
  induction l with
  | nil => simp only [List.length_nil, List.take]
  | cons a l ih => simp only [List.length_cons, List.take, ih]

/-- Unpacking what `pyref.pack_row` wrote gives the first `n` codes of the zero-padded row. -/
theorem unpack_pack_row_take (cs : List Nat) (h : codes_ok cs) (n : Nat) :
    unpack_row (pack_row cs) n = (pad_row cs).take n := by
  have hok : codes_ok (pad_row cs) := codes_ok_append_zeros cs _ h
  have hlen := pad_row_length cs
  have hpl := row_pairs_length (pad_row cs)
  have hnp : (row_pairs (pad_row cs)).length = 8 * row_blocks cs.length := by omega
  have hlt := row_pairs_lt (pad_row cs) hok
  have hrt := row_codes_row_pairs (pad_row cs) hok (by omega)
  have hP : packed_length cs.length = 7 * row_blocks cs.length := rfl
  have hv : from_digits 128 (row_pairs (pad_row cs)) < 256 ^ (7 * row_blocks cs.length) := by
    have h1 := from_digits_lt_128 (row_pairs (pad_row cs)) hlt
    rw [hnp, pow_128_256 (row_blocks cs.length)] at h1
    exact h1
  have hr := to_digits_from_digits_128 (row_pairs (pad_row cs)) hlt
  rw [hnp] at hr
  have hlen7 : (pack_row cs).length / 7 = row_blocks cs.length := by
    rw [pack_row_length, hP]
    omega
  unfold unpack_row
  rw [hlen7]
  unfold pack_row
  rw [hP, from_digits_to_digits_256 (7 * row_blocks cs.length) _ hv, hr, hrt]

/-- SPEC §4 round trip: `pyref.unpack_row(pyref.pack_row(codes), K) = codes` for every valid row of any
length `K` (Fortran `q35_unpack ∘ q35_pack` row by row). -/
theorem unpack_pack_row (cs : List Nat) (h : codes_ok cs) : unpack_row (pack_row cs) cs.length = cs := by
  rw [unpack_pack_row_take cs h cs.length]
  unfold pad_row
  exact take_length_append cs _

/-- SPEC §4 padding: the `16·ceil(K/16) − K` codes after the row in its payload are zero codes. -/
theorem unpack_pack_row_padding (cs : List Nat) (h : codes_ok cs) :
    unpack_row (pack_row cs) (16 * row_blocks cs.length) =
      cs ++ List.replicate (16 * row_blocks cs.length - cs.length) 0 := by
  have e : cs ++ List.replicate (16 * row_blocks cs.length - cs.length) 0 = pad_row cs := rfl
  rw [e, unpack_pack_row_take cs h]
  have e2 := take_length_self (pad_row cs)
  rw [pad_row_length cs] at e2
  exact e2

end Q35
