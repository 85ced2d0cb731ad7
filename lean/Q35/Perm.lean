/-!
# The stored column permutation (SPEC §8)

`perm[i]` is the original column stored at column `i`. pyref quantizes `W[:, perm]` (`gather`),
`dequantize` scatters the stored columns back (`Ŵ[:, perm] = Ŵ_stored`, read back by `scatter_at`) and
`matmul` gathers `x[..., perm]` before the kernel (`dot_gather`). A row is a function from column to value;
`perm` is a list of columns.
-/
namespace Q35

/-- `row[perm]` (numpy fancy indexing, `W[:, perm]` for one row): position `i` holds `row(perm[i])`. -/
def gather (row : Nat → Int) : List Nat → List Int
  | [] => []
  | p :: ps => row p :: gather row ps

/-- numpy's `out[perm] = stored` (`q35.format.unpermute_columns`) read at column `c`: the stored value at the
position `i` with `perm[i] = c` (the first such `i`; a permutation has exactly one), `0` if there is none. -/
def scatter_at (c : Nat) : List Nat → List Int → Int
  | [], _ => 0
  | _ :: _, [] => 0
  | p :: ps, v :: vs => if p = c then v else scatter_at c ps vs

/-- `Σ_i x(perm[i])·w[i]`: the kernel's dot product over the stored columns once `matmul` has gathered
`x[..., perm]` (`pyref.matmul`, `q35.fast.matmul`). -/
def dot_gather (x : Nat → Int) : List Nat → List Int → Int
  | [], _ => 0
  | _ :: _, [] => 0
  | p :: ps, w :: ws => x p * w + dot_gather x ps ws

/-- `Σ_{c ∈ cols} f(c)`. -/
def sum_over (f : Nat → Int) : List Nat → Int
  | [] => 0
  | c :: cs => f c + sum_over f cs

theorem scatter_at_cons (c p : Nat) (ps : List Nat) (v : Int) (vs : List Int) :
    scatter_at c (p :: ps) (v :: vs) = if p = c then v else scatter_at c ps vs := by
  simp only [scatter_at]

theorem scatter_at_self (p : Nat) (ps : List Nat) (v : Int) (vs : List Int) :
    scatter_at p (p :: ps) (v :: vs) = v := by
  rw [scatter_at_cons, if_pos rfl]

theorem scatter_at_ne (c p : Nat) (ps : List Nat) (v : Int) (vs : List Int) (h : p ≠ c) :
    scatter_at c (p :: ps) (v :: vs) = scatter_at c ps vs := by
  rw [scatter_at_cons, if_neg h]

/-- SPEC §8: unpermute ∘ permute = id. Scattering the gathered row back gives every column of `perm` its
original value (`q35.format.unpermute_columns(W[:, perm], perm) = W`, used by `dequantize`). -/
theorem scatter_gather (row : Nat → Int) (perm : List Nat) (c : Nat) (h : c ∈ perm) :
    scatter_at c perm (gather row perm) = row c := by
  induction perm with
  | nil => simp at h
  | cons p ps ih =>
    simp only [gather]
    by_cases hp : p = c
    · rw [hp, scatter_at_self]
    · rw [scatter_at_ne c p ps (row p) (gather row ps) hp]
      rcases List.mem_cons.mp h with e | h'
      · exact absurd e.symm hp
      · exact ih h'

/-- The same for a stored permutation of `0 … K−1` (what `q35.format.checks.check_qtensor` accepts): every column
`c < K` comes back. -/
theorem unpermute_permute (row : Nat → Int) (perm : List Nat) (k : Nat) (hp : perm.Perm (List.range k))
    (c : Nat) (hc : c < k) : scatter_at c perm (gather row perm) = row c :=
  scatter_gather row perm c ((List.Perm.mem_iff hp).mpr (List.mem_range.mpr hc))

/-- A sum does not depend on the order of its terms. -/
theorem sum_over_perm (f : Nat → Int) {l₁ l₂ : List Nat} (h : l₁.Perm l₂) : sum_over f l₁ = sum_over f l₂ := by
  induction h with
  | nil => rfl
  | cons c _ ih => simp only [sum_over, ih]
  | swap a b l =>
    simp only [sum_over]
    omega
  | trans _ _ ih1 ih2 => exact ih1.trans ih2

theorem sum_over_congr (f g : Nat → Int) (l : List Nat) (h : ∀ c ∈ l, f c = g c) :
    sum_over f l = sum_over g l := by
  induction l with
  | nil => rfl
  | cons c cs ih =>
    simp only [sum_over]
    rw [h c (by simp), ih (fun d hd => h d (by simp [hd]))]

/-- With distinct stored columns, the kernel's sum over stored positions is the sum over the columns of
`perm` of `x(c)` times the scattered-back weight of column `c`. -/
theorem dot_gather_scatter (x : Nat → Int) (perm : List Nat) (ws : List Int) (hn : perm.Nodup)
    (hl : ws.length = perm.length) :
    dot_gather x perm ws = sum_over (fun c => x c * scatter_at c perm ws) perm := by
  induction perm generalizing ws with
  | nil => simp only [dot_gather, sum_over]
  | cons p ps ih =>
    cases ws with
    | nil =>
      have e0 : ([] : List Int).length = 0 := rfl
      have e1 : (p :: ps).length = ps.length + 1 := rfl
      omega
    | cons w ws =>
      have hn' := List.nodup_cons.mp hn
      have e1 : (w :: ws).length = ws.length + 1 := rfl
      have e2 : (p :: ps).length = ps.length + 1 := rfl
      have hl' : ws.length = ps.length := by omega
      have hcong : sum_over (fun c => x c * scatter_at c (p :: ps) (w :: ws)) ps =
          sum_over (fun c => x c * scatter_at c ps ws) ps :=
        sum_over_congr _ _ ps (fun c hc => congrArg (fun t => x c * t)
          (scatter_at_ne c p ps w ws (fun e => hn'.1 (by rw [e]; exact hc))))
      simp only [dot_gather, sum_over]
      rw [scatter_at_self, hcong, ih ws hn'.2 hl']

/-- SPEC §8: `matmul` is invariant under the stored permutation. For a permutation `perm` of `0 … K−1` and the
stored weights `ws` of a row, the kernel's `Σ_i x(perm[i])·ws[i]` (x gathered by `perm`) equals
`Σ_{c < K} x(c)·Ŵ(c)` with `Ŵ` the scattered-back (original-order) row that `dequantize` returns. -/
theorem matmul_permuted (x : Nat → Int) (perm : List Nat) (ws : List Int) (k : Nat)
    (hp : perm.Perm (List.range k)) (hl : ws.length = perm.length) :
    dot_gather x perm ws = sum_over (fun c => x c * scatter_at c perm ws) (List.range k) := by
  have hr : (List.range k).Nodup := by
    first
    | exact List.nodup_range k
    | exact List.nodup_range
  have hn : perm.Nodup := (List.Perm.nodup_iff hp).mpr hr
  rw [dot_gather_scatter x perm ws hn hl]
  exact sum_over_perm _ hp

end Q35
