"""Mirrors of lean/Q35/Perm.lean: the stored column permutation (SPEC §8).

The project's own operations are compared with Lean's `gather`/`scatter_at`/`dot_gather` on every permutation
of up to 6 columns (`q35.format.checks.prepare_quantize`'s `W[:, perm]`, `q35.format.unpermute_columns`,
`importance_permutation`); the statements are evaluated with them in place of Lean's definitions; pyref.matmul
on a permuted QTensor must equal the un-permuted product bit for bit (same products, `math.fsum`), and the
Fortran kernel must agree with it within SPEC §5's bound.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from q35.format import importance_permutation, unpermute_columns
from q35.format.checks import prepare_quantize
from strategies import activations, weights
from test_mirror_common import (Exhaustive, LEAN, SymList, Z3, lean_statement_test, lists_over, load_bridge,
                                mirror_examples, mirrors)
from test_mirror_matmul import assert_within_spec_bound, exact, row_terms

PERMS = [list(p) for k in range(0, 6) for p in itertools.permutations(range(k))]
LISTS = lists_over(range(4), range(0, 4))  # permutations and non-permutations alike
ROWS = [lambda c: 1000 + 7 * c, lambda c: (c * c) % 5 - 2]

STATEMENTS = {
    "scatter_at_cons": Z3(ps=SymList(range(0, 4)), vs=SymList(range(0, 4))),
    "scatter_at_self": Z3(ps=SymList(range(0, 4)), vs=SymList(range(0, 4))),
    "scatter_at_ne": Z3(ps=SymList(range(0, 4)), vs=SymList(range(0, 4))),
    "scatter_gather": Z3(perm=SymList(range(0, 6))),
    "unpermute_permute": Exhaustive(row=ROWS, perm=LISTS, k=range(0, 5), c=range(0, 6)),
    "sum_over_perm": Exhaustive(f=ROWS, **{"l₁": LISTS, "l₂": lists_over(range(3), range(0, 4))}),
    "sum_over_congr": Exhaustive(f=ROWS, g=ROWS + [lambda c: 1000 + 7 * c if c else 3], l=LISTS),
    "dot_gather_scatter": Exhaustive(x=ROWS, perm=LISTS, ws=lists_over([-3, 5], range(0, 4))),
    "matmul_permuted": Exhaustive(x=ROWS, perm=PERMS, ws=lambda v: [[5 * i - 7 for i in range(len(v["perm"]))]],
                                  k=range(0, 6)),
}
test_lean_statement = lean_statement_test(STATEMENTS)


def project_gather(row, perm):
    """`W[:, perm]` for one row, as `prepare_quantize` permutes the matrix (numpy fancy indexing)."""
    return np.array([row(c) for c in range(len(perm))], dtype=np.int64)[np.array(perm, dtype=np.intp)].tolist()


def project_scatter_at(c, perm, stored):
    """Column c of `q35.format.unpermute_columns` of the stored row."""
    return int(unpermute_columns(np.array([stored], dtype=np.int64), np.array(perm, dtype=np.uint16))[0, c])


@mirrors("scatter_at_cons", "scatter_at_self", "scatter_at_ne", "gather", "scatter_at")
def test_permutation__project_is_lean_every_permutation():
    """For every permutation of up to 5 columns: `prepare_quantize(..., permute=True)` stores Lean's `gather` of
    each row under the permutation `importance_permutation` chose, and `unpermute_columns` reads back Lean's
    `scatter_at`."""
    rng = np.random.default_rng(5)
    for perm in PERMS[1:]:
        k = len(perm)
        stored = rng.integers(-50, 50, k).tolist()
        for c in range(k):
            assert project_scatter_at(c, perm, stored) == LEAN.fn("scatter_at")(c, perm, stored), (perm, c)
            for t in ("scatter_at_cons", "scatter_at_ne"):
                hyp, concl = LEAN.statement(t)(c=c, p=perm[0], ps=perm[1:], v=stored[0], vs=stored[1:])
                assert not hyp or concl() is True, (t, perm, c)
        hyp, concl = LEAN.statement("scatter_at_self")(p=perm[0], ps=perm[1:], v=stored[0], vs=stored[1:])
        assert hyp and concl() is True
        w = rng.standard_normal((2, k)).astype(np.float32)
        w_stored, _, _, got = prepare_quantize(w, None, "f16", np.abs(rng.standard_normal(k)).astype(np.float32), True)
        for n in range(2):
            row = w[n].astype(np.float64).tolist()
            assert w_stored[n].astype(np.float64).tolist() == LEAN.fn("gather")(lambda c: row[c], got.tolist())


@mirrors("scatter_gather", "unpermute_permute")
def test_unpermute_permute__on_project_code():
    """unpermute ∘ permute = id, as lean/ states it, with the project's `W[:, perm]` and `unpermute_columns`."""
    code = LEAN.with_code(gather=project_gather, scatter_at=project_scatter_at)
    for perm in PERMS:
        k = len(perm)
        for row in ROWS:
            for c in range(k):
                for theorem, values in (("scatter_gather", dict(row=row, perm=perm, c=c)),
                                        ("unpermute_permute", dict(row=row, perm=perm, k=k, c=c))):
                    hyp, concl = code.statement(theorem)(**values)
                    assert hyp and concl() is True, (theorem, perm, c)


@mirrors("unpermute_permute")
def test_importance_permutation__is_a_permutation():
    """The hypothesis of `unpermute_permute` for what the project stores: `importance_permutation` is a
    permutation of 0…K−1 (Lean's `List.Perm perm (List.range K)`) for every importance pattern with ties."""
    stmt = LEAN.statement("unpermute_permute")
    for k in range(1, 7):
        for imp in itertools.product([0.0, 1.0, 2.5], repeat=k):
            perm = importance_permutation(np.array(imp)).tolist()
            hyp, concl = stmt(row=ROWS[0], perm=perm, k=k, c=0)
            assert hyp and concl() is True, imp


@mirrors("dot_gather", "matmul_permuted", "dot_gather_scatter")
@mirror_examples
@given(w=weights(max_rows=3, max_cols=40), data=st.data())
def test_matmul_permuted__pyref_and_fortran(w, data):
    """pyref.matmul on a permuted QTensor is the un-permuted product bit for bit; in integer units Lean's
    `dot_gather` over the stored columns equals `sum_over` the original columns (the statement); the Fortran
    kernel agrees within SPEC §5's float32 bound."""
    k = w.shape[1]
    imp = np.abs(data.draw(activations(k, None))).astype(np.float32) + 1e-3
    qt = pyref.quantize(w, 16, importance=imp, permute=True)
    x = data.draw(activations(k, None))
    y = pyref.matmul(x, qt)
    w_hat = pyref.dequantize(qt).astype(np.float64)  # original column order
    xs = x.astype(np.float64).tolist()
    perm = qt.perm.astype(int).tolist()
    stored = pyref.dequantize_rows(qt)
    stmt = LEAN.statement("matmul_permuted")
    for n in range(w.shape[0]):
        assert y[n] == np.float32(math.fsum(xs[c] * w_hat[n, c] for c in range(k)))
        xu = [int(v * 2.0**149) for v in xs]
        ws = [int(v * 2.0**149) for v in stored[n]]
        assert LEAN.fn("dot_gather")(lambda c: xu[c], perm, ws) == sum(xu[c] * int(w_hat[n, c] * 2.0**149)
                                                                      for c in range(k))
        hyp, concl = stmt(x=lambda c: xu[c], perm=perm, ws=ws, k=k)
        assert hyp and concl() is True
    bridge = load_bridge()
    qf = bridge.quantize(w, 16, importance=imp, permute=True)
    assert np.array_equal(bridge.dequantize(qf), pyref.dequantize(qf))
    yf = bridge.matmul(x, qf).astype(np.float64)
    x_stored = x.astype(np.float64)[qf.perm.astype(np.intp)].tolist()
    for n in range(w.shape[0]):
        terms = row_terms(qf, x_stored, n)
        assert_within_spec_bound(yf[n], exact(LEAN.fn("fused_row_dot")(terms)), terms, k)
