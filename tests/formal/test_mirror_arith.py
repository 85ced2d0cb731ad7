"""Mirrors of lean/Q35/Arith.lean: arithmetic helper lemmas (powers of two, floor multiples).

These lemmas are about integers only, not about project functions, so their mirrors are the generated checks
alone: each statement is evaluated as lean/ states it, exhaustively on a range or with z3 for all integers.
"""
from __future__ import annotations

from test_mirror_common import Exhaustive, Z3, lean_statement_test

STATEMENTS = {
    "two_pow_succ": Exhaustive(n=range(0, 120)),
    "nat_pow_succ": Exhaustive(b=range(0, 7), n=range(0, 30)),
    "two_pow_pos": Exhaustive(k=range(0, 200)),
    "two_pow_add": Exhaustive(a=range(0, 40), b=range(0, 40)),
    "nat_pow_add": Exhaustive(b=range(0, 5), m=range(0, 12), n=range(0, 12)),
    "nat_two_pow_pos": Exhaustive(n=range(0, 200)),
    "nat_two_pow_le": Exhaustive(a=range(0, 40), b=range(0, 40)),
    "pow_256": Exhaustive(n=range(0, 40)),
    "pow_128_256": Exhaustive(n=range(0, 20)),
    "lt_of_mul_lt_mul_pos": Z3(),
    "floor_bracket": Z3(),
    "mul_le_floor": Exhaustive(P=range(-3, 20), x=range(-60, 61), t=range(-12, 13)),
}
test_lean_statement = lean_statement_test(STATEMENTS)
