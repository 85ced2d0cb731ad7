"""Mirrors of lean/Q35/A8.lean: the integer-activation matmul W3.5·A8 (SPEC §5.1).

Lean's step-4 sequence `a8_seq`, evaluated with binary64 addition and multiplication on the pieces, int8 codes
and block scales that pyref's own `a8_pieces`/`quantize_activations` produce, must give pyref.matmul_a8's result
bit for bit (so pyref takes SPEC's steps in SPEC's order), and the Fortran kernel must give the same bits.
With exact rationals the same sequence must be Lean's `a8_exact`, the product of the quantized activations with
the dequantized weights. The integer theorems are evaluated on the pieces of every accepted activation block,
including the extreme ones (all codes ±127, all lattice codes 15, blocks of 4096 columns).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35.reference as pyref
from q35.format import MAX_A8_BLOCK, QTensor, WEIGHTS_PER_BLOCK
from q35.format.checks import check_a8_block
from strategies import activations, group_sizes, weights
from test_mirror_common import Exhaustive, LEAN, SymList, Z3, lean_statement_test, load_bridge, mirror_examples, mirrors

STATEMENTS = {
    "wrap16_of_mem": Z3(),
    "wrap32_of_mem": Z3(),
    "int_sum_bound": Z3(ts=SymList(range(0, 8))),
    "wrap_sum16_exact": Z3(ts=SymList(range(0, 18))),
    "a8_kernel_sum_exact": Exhaustive(cs=lambda _: [[], [[1905] * 16] * 256, [[-1905] * 16] * 256,
                                                    [[5, -7, 1905], [], [-1905] * 16], [[1905] * 16] * 257,
                                                    [[1905] * 17], [[1906]]]),
    "sum_x_bound": Z3(xl=SymList(range(0, 8))),
    "a8_piece_int32_safe": Exhaustive(xl=lambda _: [[], [(127, 15)] * 4096, [(-127, 15)] * 4096, [(-127, 0), (3, 7)],
                                                    [(127, 15)] * 4097]),
    "a8_products_exact": Z3(),
    "a8_seq_exact": Z3(acc=[0, 5], ps=lambda v: [[], [{"dx": 2, "s": 3, "z": -1, "xl": [(1, 2), (-3, 15)]},
                                                      {"dx": 7, "s": 1, "z": 4, "xl": [(127, 0)]}]]),
}
test_lean_statement = lean_statement_test(STATEMENTS)


def lean_pieces(x_row: list[float], qt, n: int, block: int, number=float) -> list[dict]:
    """Lean `A8Piece`s of output n from pyref's own pieces and int8 quantization (`number` maps the binary64
    block scales, group scales and zeros: float for pyref's arithmetic, Fraction for exact)."""
    k = qt.shape[1]
    q, dx = pyref.quantize_activations(x_row, block)
    codes = pyref.unpack_codes(qt.packed[n], k).tolist()
    lat = [pyref.lattice_code(c, col) for col, c in enumerate(codes)]
    return [{"dx": number(dx[a]), "s": number(float(qt.scales[n, j])), "z": number(float(qt.zeros[n, j])),
             "xl": [(q[c], lat[c]) for c in range(c0, c1)]}
            for c0, c1, j, a in pyref.a8_pieces(k, qt.group_size, block)]


def binary64(op):
    return lambda a: lambda b: op(a, b)


FLOAT_ADD, FLOAT_MUL = binary64(lambda a, b: float(a) + float(b)), binary64(lambda a, b: float(a) * float(b))
EXACT_ADD, EXACT_MUL = binary64(lambda a, b: a + b), binary64(lambda a, b: a * b)


@mirrors("a8_seq", "a8_exact", "a8_seq_exact")
@mirror_examples
@given(w=weights(max_rows=3, max_cols=80), g=group_sizes, block=st.sampled_from([16, 32, 48, 128]), data=st.data())
def test_a8_seq__is_pyref_and_fortran_matmul_a8(w, g, block, data):
    """pyref.matmul_a8 = f32(Lean's `a8_seq` in binary64) bit for bit; the Fortran kernel gives the same bits; in
    exact rationals the sequence is `acc + a8_exact` (the statement) = Σ_k dx·q_k·(z + s·L_k)."""
    qt = pyref.quantize(w, g)
    x = data.draw(activations(w.shape[1], None))
    xr = x.astype(np.float64).tolist()
    y = pyref.matmul_a8(x, qt, block)
    seq, stmt = LEAN.fn("a8_seq"), LEAN.statement("a8_seq_exact")
    q, dx = pyref.quantize_activations(xr, block)
    k = w.shape[1]
    for n in range(w.shape[0]):
        acc = seq(FLOAT_ADD, FLOAT_MUL, 0.0, lean_pieces(xr, qt, n, block))
        assert np.float32(acc).tobytes() == y[n].tobytes(), (n, acc, y[n])
        exact_pieces = lean_pieces(xr, qt, n, block, Fraction)
        assert stmt(acc=Fraction(0), ps=exact_pieces)[1]() is True
        codes = pyref.unpack_codes(qt.packed[n], k).tolist()
        z, s = [Fraction(float(v)) for v in qt.zeros[n]], [Fraction(float(v)) for v in qt.scales[n]]
        exact = sum(Fraction(dx[c // block]) * q[c] * (z[c // qt.group_size] + s[c // qt.group_size]
                                                        * pyref.lattice_code(codes[c], c)) for c in range(k))
        assert seq(EXACT_ADD, EXACT_MUL, Fraction(0), exact_pieces) == exact == LEAN.fn("a8_exact")(exact_pieces)
    yf = load_bridge().matmul(x, qt, activations="a8", a8_block=block)
    assert yf.tobytes() == y.tobytes()


def chunks_of_products(piece: dict) -> list[list[int]]:
    """The products L·q of a piece in the kernel's 16-column blocks (pieces start at multiples of 16)."""
    prods = [q * L for q, L in piece["xl"]]
    return [prods[i:i + WEIGHTS_PER_BLOCK] for i in range(0, len(prods), WEIGHTS_PER_BLOCK)]


def binary16_significand(v: float) -> int:
    """m with |v| = m·2^e, m ≤ 2048 (v a binary16 value)."""
    u = abs(int(Fraction(v) * 2**24))
    while u > 2048:
        assert u % 2 == 0, v
        u //= 2
    return u


def extreme_qtensor(n: int, k: int, g: int) -> QTensor:
    """Every lattice code 15 (q4 = 15, q3 = 7 is L = 14; alternate to cover both extremes), scale 1, zero 0."""
    codes = np.where(np.arange(k) % 2 == 0, 15, 7)[None, :].repeat(n, 0).astype(np.uint8)
    groups = -(-k // g)
    return QTensor(pyref.pack_codes(codes), np.ones((n, groups), np.float16), np.zeros((n, groups), np.float16),
                   (n, k), g)


@mirrors("chunks_sum", "a8_kernel_sum_exact", "a8_piece_int32_safe", "a8_products_exact", "wrap_sum16_exact")
def test_a8_integer_sums__every_accepted_block():
    """Accepted blocks are exactly the multiples of 16 up to 4096; for each, on the extreme inputs (codes ±127, lattice
    codes 15 and 14, pieces of up to 4096 columns) and on random ones, the statements hold for pyref's pieces: the
    kernel's int16/int32 accumulation is the exact I_p, I_p and S_p fit int32, s·I_p and z·S_p are exact; and the
    Fortran kernel gives pyref's bits on the extremes."""
    accepted = []
    for b in range(0, MAX_A8_BLOCK + 40):
        try:
            accepted.append(check_a8_block(b))
        except ValueError:
            pass
    assert accepted == list(range(16, MAX_A8_BLOCK + 1, 16))
    stmts = {t: LEAN.statement(t) for t in ("a8_kernel_sum_exact", "a8_piece_int32_safe", "a8_products_exact")}
    rng = np.random.default_rng(3)
    for block in (16, 48, 128, 1024, 4096):
        for g in (16, 64, 4096, None):
            k = 4096 + 48
            qt = extreme_qtensor(1, k, g or k)
            for x in (np.full(k, 3.0e38, np.float32), np.full(k, -1e-30, np.float32),
                      rng.standard_normal(k).astype(np.float32)):
                for piece in lean_pieces(x.astype(np.float64).tolist(), qt, 0, block, number=lambda v: v):
                    assert len(piece["xl"]) <= block
                    assert all(-127 <= q <= 127 for q, _ in piece["xl"])
                    chunks = chunks_of_products(piece)
                    hyp, concl = stmts["a8_kernel_sum_exact"](cs=chunks)
                    assert hyp and concl() is True
                    assert LEAN.fn("chunks_sum")(chunks) == sum(q * L for q, L in piece["xl"])
                    assert LEAN.fn("a8_kernel_sum")(chunks) == LEAN.fn("chunks_sum")(chunks)
                    hyp, concl = stmts["a8_piece_int32_safe"](xl=piece["xl"])
                    assert hyp and concl() is True
                    m = binary16_significand(piece["s"])
                    isum = abs(LEAN.fn("sum_xl")(piece["xl"]))
                    hyp, concl = stmts["a8_products_exact"](m=m, i=isum)
                    assert hyp and concl() is True
                    assert Fraction(piece["s"]) * isum == Fraction(piece["s"] * isum)  # exact in binary64
            if block in (128, 4096):
                x = np.full((2, k), 1.0, np.float32)
                assert load_bridge().matmul(x, qt, activations="a8", a8_block=block).tobytes() == \
                    pyref.matmul_a8(x, qt, block).tobytes()
    assert math.isfinite(float(pyref.matmul_a8(np.full(16, 1.0, np.float32), extreme_qtensor(1, 16, 16), 16)[0]))
