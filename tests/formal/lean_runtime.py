"""Run-time semantics of the Lean subset, for the code tests/formal/lean_py.py generates.

Every helper accepts Python ints, bools, lists, tuples and dicts (concrete evaluation) and z3 terms (symbolic
evaluation), with Lean's meaning: `/` and `%` are `Int.ediv`/`Int.emod` (Euclidean: the remainder is never
negative; for the non-negative `Nat` they are floor division and remainder) with `x / 0 = 0` and `x % 0 = x`;
`Nat` subtraction truncates at 0. z3's integer `div`/`mod` are Euclidean as well; a z3 bit-vector stands for a
`Nat` (the `Z3(bits=...)` mirrors), so its order, division and subtraction are the unsigned ones.
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

import z3

# Lean recursion over a list of n elements is n nested Python calls (pure Python frames, no C stack in 3.11+).
sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))


class LeanEvalError(ValueError):
    """The generated evaluator met something outside the subset (e.g. a symbolic value where Lean recurses)."""


class ListView(Sequence):
    """The tail `xs` of a matched `x :: xs` without copying (so recursion over a list stays linear)."""

    def __init__(self, base, start: int):
        self.base, self.start = base, start

    def __len__(self):
        return len(self.base) - self.start

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.base[self.start + i]


def tail(xs):
    return ListView(xs.base, xs.start + 1) if isinstance(xs, ListView) else ListView(xs, 1)


def sym(x) -> bool:
    return isinstance(x, z3.ExprRef)


def bv(x) -> bool:
    return isinstance(x, z3.BitVecRef)


def concrete_int(x, what: str) -> int:
    if sym(x):
        raise LeanEvalError(f"{what} needs a concrete value, got the z3 term {x}")
    return x


# --- arithmetic --------------------------------------------------------------------------------------------
def div(a, b):
    if not sym(a) and not sym(b):
        return 0 if b == 0 else (a // b if b > 0 else -(a // -b))
    q = z3.UDiv(a, b) if bv(a) or bv(b) else a / b
    return z3.If(b == 0, 0, q) if sym(b) else (q if b != 0 else 0)


def mod(a, b):
    if not sym(a) and not sym(b):
        return a if b == 0 else a - b * div(a, b)
    r = z3.URem(a, b) if bv(a) or bv(b) else a % b
    return z3.If(b == 0, a, r) if sym(b) else (r if b != 0 else a)


def nsub(a, b):
    """Nat subtraction: a - b, or 0 when b > a."""
    if not sym(a) and not sym(b):
        return max(a - b, 0)
    return z3.If(le(b, a), a - b, 0)


def lt(a, b):
    return z3.ULT(a, b) if bv(a) or bv(b) else a < b


def le(a, b):
    return z3.ULE(a, b) if bv(a) or bv(b) else a <= b


def power(a, b):
    return a ** concrete_int(b, "an exponent")


def to_nat(a):
    return z3.If(a >= 0, a, 0) if sym(a) else max(a, 0)


def maximum(a, b):
    return z3.If(le(b, a), a, b) if sym(a) or sym(b) else max(a, b)


def minimum(a, b):
    return z3.If(le(a, b), a, b) if sym(a) or sym(b) else min(a, b)


def bitwise(op: str, a, b):
    a, b = concrete_int(a, f"`{op}`"), concrete_int(b, f"`{op}`")
    return {"lor": a | b, "land": a & b, "shl": a << b, "shr": a >> b}[op]


# --- logic -------------------------------------------------------------------------------------------------
def as_z3(b):
    return b if sym(b) else z3.BoolVal(bool(b))


def land(a, thunk):
    """`a ∧ b`, b evaluated only when a may hold."""
    if not sym(a):
        return thunk() if a else False
    return z3.And(a, as_z3(thunk()))


def lor(a, thunk):
    if not sym(a):
        return True if a else thunk()
    return z3.Or(a, as_z3(thunk()))


def iff(a, b):
    if sym(a) or sym(b):
        return as_z3(a) == as_z3(b)
    return bool(a) == bool(b)


def lnot(a):
    return z3.Not(a) if sym(a) else not a


def all_of(values):
    """Conjunction; stops at the first concrete False (so a bounded ∀ costs only what it must)."""
    symbolic = []
    for v in values:
        if sym(v):
            symbolic.append(v)
        elif not v:
            return False
    return z3.And(*symbolic) if symbolic else True


def any_of(values):
    """Disjunction; stops at the first concrete True."""
    symbolic = []
    for v in values:
        if sym(v):
            symbolic.append(v)
        elif v:
            return True
    return z3.Or(*symbolic) if symbolic else False


def eq(a, b):
    """Lean `=` on numbers, lists (tails included), tuples and structures."""
    if isinstance(a, (list, tuple, dict, ListView)):
        a, b = (list(a), list(b)) if isinstance(a, ListView) or isinstance(b, ListView) else (a, b)
        if type(a) is not type(b) or len(a) != len(b):
            return False
        return all_of(eq(a[k], b[k]) for k in (a if isinstance(a, dict) else range(len(a))))
    r = a == b
    return r if sym(r) else bool(r)


def ite(c, then_thunk, else_thunk):
    if not sym(c):
        return then_thunk() if c else else_thunk()
    a, b = then_thunk(), else_thunk()
    if isinstance(a, (list, ListView, dict)) or isinstance(b, (list, ListView, dict)):
        raise LeanEvalError("a symbolic `if` between lists or structures cannot be represented")
    if isinstance(a, tuple):
        return tuple(z3.If(c, x, y) for x, y in zip(a, b))
    return z3.If(c, a, b)


# --- quantifiers -------------------------------------------------------------------------------------------
def forall_range(n, body):
    """`∀ x, x < n → body x` for a concrete n."""
    return all_of(body(x) for x in range(concrete_int(n, "a bounded ∀")))


def exists_range(n, body):
    """`∃ x, x < n ∧ body x` for a concrete n."""
    return any_of(body(x) for x in range(concrete_int(n, "a bounded ∃")))


def forall_mem(xs, body):
    return all_of(body(x) for x in xs)


def exists_mem(xs, body):
    return any_of(body(x) for x in xs)


def member(x, xs):
    return any_of(eq(x, y) for y in xs)


# --- lists ---------------------------------------------------------------------------------------------------
def append(a, b):
    return list(a) + list(b)


def cons(x, xs):
    return [x, *xs]


def replicate(n, v):
    return [v] * concrete_int(n, "List.replicate")


def range_(n):
    return list(range(concrete_int(n, "List.range")))


def take(n, xs):
    return list(xs)[:concrete_int(n, "List.take")]


def is_perm(a, b):
    if any(sym(x) for x in [*a, *b]):
        raise LeanEvalError("List.Perm needs concrete lists")
    return Counter(a) == Counter(b)


def nodup(xs):
    if any(sym(x) for x in xs):
        raise LeanEvalError("List.Nodup needs a concrete list")
    return len(set(xs)) == len(xs)


def apply(f, args):
    """A function-valued binder (a Python or z3 function of one argument) applied to arguments in turn."""
    for a in args:
        f = f(a)
    return f
