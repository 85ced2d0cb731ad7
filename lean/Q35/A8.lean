import Q35.Matmul
/-!
# The integer-activation matmul W3.5·A8 (SPEC §5.1)

Per output, the column range is cut into *pieces* (one weight group × one activation block, at most `A ≤ 4096`
columns). Each piece contributes the exact integers `I_p = Σ q_k·L_k` and `S_p = Σ q_k` (int8 codes
`|q| ≤ 127`, lattice codes `0 ≤ L ≤ 15`), and the float sequence `acc ← acc + dx·(s·I_p + z·S_p)` runs over the
pieces in column order. The Fortran kernel forms `I_p` from int16 sums of 16-column blocks, accumulated in int32.

* `a8_piece_int32_safe`: for every accepted shape the sums fit int32 (and int16 per 16-column block);
* `a8_kernel_sum_exact`: the kernel's wrapping int16-then-int32 accumulation equals the exact sum;
* `a8_products_exact`: `s·I_p` and `z·S_p` are exact in binary64;
* `a8_seq_exact`: with exact operations the step-4 sequence is the product of the quantized activations with the
  dequantized weights, so pyref and the kernel differ from it only by rounding each operation once, in SPEC
  order (the mirror checks that pyref's result is this sequence evaluated in binary64, bit for bit).
-/
namespace Q35

/-- A signed 16-bit machine word's value after an addition (two's complement wrap-around). -/
def wrap16 (x : Int) : Int := (x + 32768) % 65536 - 32768

/-- A signed 32-bit machine word's value after an addition (two's complement wrap-around). -/
def wrap32 (x : Int) : Int := (x + 2147483648) % 4294967296 - 2147483648

/-- The exact sum of a list of integers. -/
def int_sum : List Int → Int
  | [] => 0
  | t :: ts => t + int_sum ts

/-- The kernel's int16 sum of one 16-column block of products `L·q` (Fortran `q35_gemm_a8`). -/
def wrap_sum16 : List Int → Int
  | [] => 0
  | t :: ts => wrap16 (t + wrap_sum16 ts)

/-- The kernel's `I_p` (Fortran `q35_gemm_a8`): the int16 sums of the piece's 16-column blocks, accumulated in
int32. -/
def a8_kernel_sum : List (List Int) → Int
  | [] => 0
  | c :: cs => wrap32 (wrap_sum16 c + a8_kernel_sum cs)

/-- The exact `I_p = Σ_{k∈p} q_k·L(k)` of `pyref.a8.matmul_a8` over the same blocks of products. -/
def chunks_sum : List (List Int) → Int
  | [] => 0
  | c :: cs => int_sum c + chunks_sum cs

/-- One piece of SPEC §5.1 step 4: its activation block scale `dx`, its group's scale `s` and zero `z`, and its
`(q_k, L_k)` pairs. -/
structure A8Piece where
  dx : Int
  s : Int
  z : Int
  xl : List (Int × Int)

/-- SPEC §5.1 step 4 as `pyref.a8.matmul_a8` and Fortran `q35_gemm_a8` evaluate it: over the pieces in column
order, `acc ← acc + dx·(s·I_p + z·S_p)` (`t1 = s·I_p`, `t2 = z·S_p`, `t3 = t1 + t2`, `t4 = dx·t3`,
`acc + t4`), with the binary64 operations `add`/`mul` as parameters. -/
def a8_seq (add mul : Int → Int → Int) (acc : Int) : List A8Piece → Int
  | [] => acc
  | p :: ps => a8_seq add mul (add acc (mul p.dx (add (mul p.s (sum_xl p.xl)) (mul p.z (sum_x p.xl))))) ps

/-- The exact product of the quantized activations with the dequantized weights, piece by piece:
`Σ_p dx_p·Σ_{k∈p} q_k·(z + s·L_k)`. -/
def a8_exact : List A8Piece → Int
  | [] => 0
  | p :: ps => p.dx * group_dot p.z p.s p.xl + a8_exact ps

theorem wrap16_of_mem (x : Int) (h1 : -32768 ≤ x) (h2 : x < 32768) : wrap16 x = x := by
  unfold wrap16
  omega

theorem wrap32_of_mem (x : Int) (h1 : -2147483648 ≤ x) (h2 : x < 2147483648) : wrap32 x = x := by
  unfold wrap32
  omega

/-- `|Σ t| ≤ 1905·n` for `n` products `|L·q| ≤ 15·127 = 1905`. -/
theorem int_sum_bound (ts : List Int) (h : ∀ t ∈ ts, -1905 ≤ t ∧ t ≤ 1905) :
    -(1905 * (ts.length : Int)) ≤ int_sum ts ∧ int_sum ts ≤ 1905 * (ts.length : Int) := by
  induction ts with
  | nil =>
    have e0 : ([] : List Int).length = 0 := rfl
    have e1 : int_sum [] = 0 := rfl
    omega
  | cons t ts ih =>
    have ht := h t (by simp)
    have ih' := ih (fun u hu => h u (by simp [hu]))
    have e0 : (t :: ts).length = ts.length + 1 := rfl
    have e1 : int_sum (t :: ts) = t + int_sum ts := rfl
    omega

/-- The kernel's int16 sum of a 16-column block (at most 16 products `|L·q| ≤ 1905`, so every partial sum stays
within `16·1905 = 30480 < 2^15`) is the exact sum. -/
theorem wrap_sum16_exact (ts : List Int) (h : ∀ t ∈ ts, -1905 ≤ t ∧ t ≤ 1905) (hl : ts.length ≤ 16) :
    wrap_sum16 ts = int_sum ts := by
  induction ts with
  | nil => rfl
  | cons t ts ih =>
    have ht := h t (by simp)
    have hts : ∀ u ∈ ts, -1905 ≤ u ∧ u ≤ 1905 := fun u hu => h u (by simp [hu])
    have e0 : (t :: ts).length = ts.length + 1 := rfl
    have hb := int_sum_bound ts hts
    have e1 : wrap_sum16 (t :: ts) = wrap16 (t + wrap_sum16 ts) := rfl
    have e2 : int_sum (t :: ts) = t + int_sum ts := rfl
    rw [e1, e2, ih hts (by omega), wrap16_of_mem (t + int_sum ts) (by omega) (by omega)]

/-- SPEC §5.1 step 3 for the kernel: its int16-then-int32 accumulation of a piece (at most `4096/16 = 256`
blocks of at most 16 products `|L·q| ≤ 1905`) equals the exact integer dot product, which stays within
`30480·256 < 2^31`. -/
theorem a8_kernel_sum_exact (cs : List (List Int))
    (h : ∀ c ∈ cs, c.length ≤ 16 ∧ ∀ t ∈ c, -1905 ≤ t ∧ t ≤ 1905) (hl : cs.length ≤ 256) :
    a8_kernel_sum cs = chunks_sum cs ∧
      -(30480 * (cs.length : Int)) ≤ chunks_sum cs ∧ chunks_sum cs ≤ 30480 * (cs.length : Int) := by
  induction cs with
  | nil =>
    have e0 : ([] : List (List Int)).length = 0 := rfl
    have e1 : a8_kernel_sum [] = 0 := rfl
    have e2 : chunks_sum [] = 0 := rfl
    omega
  | cons c cs ih =>
    have hc := h c (by simp)
    have hcs : ∀ d ∈ cs, d.length ≤ 16 ∧ ∀ t ∈ d, -1905 ≤ t ∧ t ≤ 1905 := fun d hd => h d (by simp [hd])
    have e0 : (c :: cs).length = cs.length + 1 := rfl
    have ih' := ih hcs (by omega)
    have h16 := wrap_sum16_exact c hc.2 hc.1
    have hb := int_sum_bound c hc.2
    have e1 : a8_kernel_sum (c :: cs) = wrap32 (wrap_sum16 c + a8_kernel_sum cs) := rfl
    have e2 : chunks_sum (c :: cs) = int_sum c + chunks_sum cs := rfl
    have hw := wrap32_of_mem (int_sum c + chunks_sum cs) (by omega) (by omega)
    rw [e1, e2, h16, ih'.1, hw]
    omega

/-- `|Σ q_k| ≤ 127·n` for int8 activation codes. -/
theorem sum_x_bound (xl : List (Int × Int)) (h : ∀ p ∈ xl, -127 ≤ p.1 ∧ p.1 ≤ 127) :
    -(127 * (xl.length : Int)) ≤ sum_x xl ∧ sum_x xl ≤ 127 * (xl.length : Int) := by
  induction xl with
  | nil =>
    have e0 : ([] : List (Int × Int)).length = 0 := rfl
    have e1 : sum_x [] = 0 := rfl
    omega
  | cons p rest ih =>
    have hp := h p (by simp)
    have ih' := ih (fun q hq => h q (by simp [hq]))
    have e0 : (p :: rest).length = rest.length + 1 := rfl
    have e1 : sum_x (p :: rest) = p.1 + sum_x rest := rfl
    omega

/-- SPEC §5.1 step 3: for every shape the A8 path accepts (activation blocks `A ≤ 4096`, so a piece has at most
4096 columns; `q35.format.checks.check_a8_block`), int8 codes `|q| ≤ 127` and lattice codes `0 ≤ L ≤ 15`, the piece
sums `I_p` and `S_p` fit a signed 32-bit accumulator (`|I_p| ≤ 127·15·4096 = 7 802 880`). -/
theorem a8_piece_int32_safe (xl : List (Int × Int))
    (h : ∀ p ∈ xl, -127 ≤ p.1 ∧ p.1 ≤ 127 ∧ 0 ≤ p.2 ∧ p.2 ≤ 15) (hl : xl.length ≤ 4096) :
    -2147483647 ≤ sum_xl xl ∧ sum_xl xl ≤ 2147483647 ∧ -(127 * 4096) ≤ sum_x xl ∧ sum_x xl ≤ 127 * 4096 := by
  have h1 := accumulator_bound xl h
  have h2 := sum_x_bound xl (fun p hp => ⟨(h p hp).1, (h p hp).2.1⟩)
  omega

/-- SPEC §5.1 step 4: `t1 = s·I_p` and `t2 = z·S_p` are exact in binary64: a binary16 significand (`≤ 2048`)
times `|I_p| ≤ 127·15·4096` (or `|S_p| ≤ 127·4096`) stays below `2^53`. -/
theorem a8_products_exact (m i : Nat) (hm : m ≤ 2048) (hi : i ≤ 127 * 15 * 4096) : m * i < 2 ^ 53 := by
  have h := Nat.mul_le_mul hm hi
  have e : (2 : Nat) ^ 53 = 9007199254740992 := by decide
  omega

/-- SPEC §5.1: with exact operations, the step-4 sequence in column order computes
`acc + Σ_p dx_p·Σ_{k∈p} q_k·(z + s·L_k)`, the product of the quantized activations with the dequantized
weights (`fused_group_identity` per piece); `pyref.a8.matmul_a8` and the kernel round each of its operations
once, in this order. -/
theorem a8_seq_exact (acc : Int) (ps : List A8Piece) :
    a8_seq (fun a b => a + b) (fun a b => a * b) acc ps = acc + a8_exact ps := by
  induction ps generalizing acc with
  | nil =>
    simp only [a8_seq, a8_exact]
    all_goals omega
  | cons p ps ih =>
    have hg := fused_group_identity p.z p.s p.xl
    have e1 : p.dx * (p.s * sum_xl p.xl + p.z * sum_x p.xl) = p.dx * group_dot p.z p.s p.xl := by
      rw [hg, Int.mul_add, Int.mul_add]
      omega
    simp only [a8_seq, a8_exact]
    rw [ih, e1]
    omega

end Q35
