"""Shared helpers of the Lean mirror tests (tests/formal/test_mirror_*.py); holds no tests of its own.

Two kinds of mirror, both tied to the text of lean/ (tests/formal/test_lean_meta.py enforces it,
tests/formal/lean_census.py counts them):

* a *code mirror* is a test decorated with `@mirrors("name", ...)` naming every Lean theorem or definition it
  checks against pyref and/or the Fortran kernels;
* a *generated check* is an entry of a module's `STATEMENTS` table: the statement is compiled from the Lean
  text (tests/formal/lean_py.py) and checked over the given domain, exhaustively (`Exhaustive`) or for all
  values of the remaining binders with z3 (`Z3`); its test is `test_lean_statement[<theorem>]`.

Both fail while a declaration they mirror, or a definition its text uses, differs from the reviewed text in
tests/formal/lean_pins.json: review the mirror, then re-pin with `python tests/formal/lean_pins.py --repin`.
Lean definitions are used only through `LEAN.fn(name)`, never copied by hand. `Q35_LEAN_DIR` points the
mirrors at another copy of lean/ (the weakening demonstration in tests/formal/test_lean_meta.py does).
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
import z3  # z3-solver: a dev dependency (pyproject.toml [dev])
from hypothesis import settings

import lean_pins
import lean_text
from lean_py import LeanCode, Statement
from lean_runtime import sym

LEAN_DIR = Path(os.environ.get("Q35_LEAN_DIR", lean_text.LEAN_DIR))
LEAN_PROJECT = lean_text.LeanProject(LEAN_DIR)
LEAN = LeanCode(LEAN_PROJECT)
SNAPSHOT = lean_pins.load_snapshot()


# Hypothesis mirrors run the profile's examples up to 300 each: their whole-domain checks are the exhaustive and
# z3 tests; the 10 000-example budget belongs to the equivalence suite (tests/core/test_equivalence.py).
mirror_examples = settings(max_examples=min(300, settings().max_examples))


# --- the tie to the reviewed text ----------------------------------------------------------------------------
def mirrors(*names: str):
    """Mark a test as a mirror of these Lean declarations (as reviewed in tests/formal/lean_pins.json)."""
    def mark(fn):
        fn._lean_mirrors = getattr(fn, "_lean_mirrors", ()) + names
        return fn
    return mark


def fail_if_stale(names) -> None:
    stale = sorted({n for name in names for n in lean_pins.stale(LEAN_PROJECT, SNAPSHOT, name)})
    if stale:
        pytest.fail(f"Lean text changed since this mirror was reviewed ({', '.join(stale)}); review it, then run "
                    "`python tests/formal/lean_pins.py --repin` (`python tests/formal/lean_pins.py` shows the diff)")


# --- generated statement checks ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SymList:
    """A binder that is a list of fresh z3 values, one check per length."""
    lengths: tuple

    def __init__(self, lengths):
        object.__setattr__(self, "lengths", tuple(lengths))


def _domain_values(domain, values: dict):
    return domain(values) if callable(domain) else domain


def _assignments(names: list[str], domains: dict, values: dict | None = None):
    """Every assignment of `names` (a domain may be a function of the values chosen before it)."""
    values = values or {}
    if not names:
        yield dict(values)
        return
    name, rest = names[0], names[1:]
    for v in _domain_values(domains[name], values):
        values[name] = v
        yield from _assignments(rest, domains, values)
    values.pop(name, None)


def _check_binders(stmt: Statement, names) -> None:
    params = [p for p, _ in stmt.params]
    missing, extra = set(params) - set(names), set(names) - set(params)
    assert not missing and not extra, (f"{stmt.name}: the domain names {sorted(names)} but the statement binds "
                                       f"{params}; review the mirror against the Lean text")


class Exhaustive:
    """Evaluate the statement at every point of the given finite domains (name -> values, or a function of
    the earlier values); at least one point must satisfy the hypotheses."""

    def __init__(self, **domains):
        self.domains = domains

    def run(self, stmt: Statement) -> int:
        _check_binders(stmt, self.domains)
        order = [p for p, _ in stmt.params]
        count = 0
        for values in _assignments(order, self.domains):
            hyp, concl = stmt(**values)
            assert not sym(hyp), f"{stmt.name}: symbolic hypothesis in an exhaustive check"
            if hyp:
                count += 1
                r = concl()
                assert not sym(r) and bool(r), f"{stmt.name} is false at {values}"
        assert count, f"{stmt.name}: no point of the domain satisfies the hypotheses (vacuous check)"
        return count


class Z3:
    """Prove the statement with z3 for all values of the binders not given a finite domain (fresh z3 integers,
    `Nat` ones non-negative, z3 functions for function binders); `SymList(lengths)` binders are lists of fresh
    values, one proof per length. The hypotheses must be satisfiable for at least one combination."""

    def __init__(self, timeout_ms: int = 60_000, bits: int | None = None, **domains):
        self.domains = domains
        self.timeout_ms = timeout_ms
        self.bits = bits  # evaluate `Nat` binders as unsigned `bits`-bit words (bit-blasting), large enough
        #                   that no intermediate value wraps (the mirror states why)

    def run(self, stmt: Statement) -> int:
        types = dict(stmt.params)
        finite = {n: d for n, d in self.domains.items() if not isinstance(d, SymList)}
        unknown = set(self.domains) - set(types)
        assert not unknown, f"{stmt.name}: domains for binders it does not have: {sorted(unknown)}"
        lists = {n: d.lengths for n, d in self.domains.items() if isinstance(d, SymList)}
        order = [p for p in types if p in finite or p in lists]
        satisfiable = 0
        for values in _assignments(order, {**finite, **lists}):
            side: list = []
            full = {}
            for p, ty in types.items():
                if p in lists:
                    full[p] = [fresh(f"{p}_{i}", ty[1], side, self.bits) for i in range(values[p])]
                else:
                    full[p] = values[p] if p in finite else fresh(p, ty, side, self.bits)
            hyp, concl = stmt(**full)
            if hyp is False:
                continue
            hyp = z3.And(*side, hyp if sym(hyp) else z3.BoolVal(True))
            if _solve(hyp, self.timeout_ms) == z3.sat:
                satisfiable += 1
                prove(z3.Implies(hyp, as_bool(concl())), timeout_ms=self.timeout_ms, what=f"{stmt.name} at {values}")
        assert satisfiable, f"{stmt.name}: the hypotheses are never satisfiable (vacuous check)"
        return satisfiable


def fresh(name: str, ty, side: list, bits: int | None = None):
    """A fresh z3 value of a Lean type (constraints such as `Nat ≥ 0` appended to `side`); with `bits`, a `Nat`
    is an unsigned bit-vector of that width."""
    if ty == "Nat" and bits:
        return z3.BitVec(name, bits)
    if ty in ("Nat", "Int"):
        v = z3.Int(name)
        if ty == "Nat":
            side.append(v >= 0)
        return v
    if isinstance(ty, tuple) and ty[0] == "Prod":
        return tuple(fresh(f"{name}_{i}", t, side, bits) for i, t in enumerate(ty[1:]))
    if isinstance(ty, tuple) and ty[0] == "Fun":
        args = ty[1][1:] if isinstance(ty[1], tuple) and ty[1][0] == "Prod" else (ty[1],)
        f = z3.Function(name, *[z3.IntSort()] * len(args), z3.IntSort())
        return (lambda t: f(*t)) if len(args) > 1 else f
    raise AssertionError(f"no symbolic value for {name} : {ty}; give it a finite domain or a SymList")


def as_bool(v):
    return v if sym(v) else z3.BoolVal(bool(v))


def _solve(claim, timeout_ms: int):
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.add(claim)
    return s.check()


def lean_statement_test(specs: dict):
    """The module's generated checks: one test per theorem, evaluating the statement as lean/ states it."""
    @pytest.mark.parametrize("theorem", sorted(specs))
    def test_lean_statement(theorem):
        assert theorem in LEAN_PROJECT.theorems, f"{theorem} is not a theorem of {LEAN_DIR}"
        fail_if_stale([theorem])
        specs[theorem].run(LEAN.statement(theorem))
    return test_lean_statement


def check_statements(code: LeanCode, specs: dict) -> None:
    """Run each spec on the statement as evaluated by `code` (e.g. `LEAN.with_code(...)`: pyref in place of Lean)."""
    for theorem, spec in specs.items():
        spec.run(code.statement(theorem))


def lists_over(alphabet, lengths):
    """Every list over `alphabet` of each length in `lengths`."""
    return [list(t) for n in lengths for t in itertools.product(alphabet, repeat=n)]


# --- z3 ------------------------------------------------------------------------------------------------------
def prove(claim, *, timeout_ms: int = 120_000, what: str = "the claim") -> None:
    """Assert that z3 proves `claim` for every assignment of its free variables."""
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.add(z3.Not(claim))
    r = s.check()
    assert r == z3.unsat, f"z3 could not prove {what} ({r}); counterexample: {s.model() if r == z3.sat else '-'}"


def refute(claim, *, timeout_ms: int = 120_000):
    """Assert that z3 finds a counterexample to `claim` (shows a harness can fail); returns the model."""
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.add(z3.Not(claim))
    r = s.check()
    assert r == z3.sat, f"expected a counterexample, z3 says {r}"
    return s.model()


# --- project code and units ------------------------------------------------------------------------------
def load_bridge():
    """The Fortran fast path (`q35`); a missing extension fails the test."""
    import q35
    return q35


def to_units(x: float, e: int) -> int:
    """An exact binary float as an integer in units of 2^-e (fails if it is not a multiple of 2^-e)."""
    f = Fraction(x) * (1 << e) if e >= 0 else Fraction(x) / (1 << -e)
    assert f.denominator == 1, f"{x!r} is not a multiple of 2^-{e}"
    return int(f)


def to_common_integers(*values: float) -> tuple[int, ...]:
    """Exact binary floats as integers in a common unit (multiply by the least common power-of-two denominator)."""
    fr = [Fraction(v) for v in values]
    den = max([1] + [f.denominator for f in fr])  # denominators are powers of two, so the max is the lcm
    return tuple(int(f * den) for f in fr)


# --- pyref in Lean's integer units ---------------------------------------------------------------------------
def pyref_code_overrides() -> dict:
    """pyref's quantizer of one value as Lean's `Q35.Codes` definitions (integers in, integers out). Exact while
    the integers are exactly representable and `z + s·L` is an integer (the mirrors' domains)."""
    import q35.reference as pyref

    def dequantize_value(code, z, s, column):
        v = pyref.dequantize_value(int(code), float(z), float(s), int(column))
        assert v == int(v), (code, z, s, column, v)
        return int(v)

    return dict(clamp=pyref.clamp,
                code4=lambda w, z, s: pyref.code4(float(w), float(z), float(s)),
                code3=lambda w, z, s: pyref.code3(float(w), float(z), float(s)),
                quantize_value=lambda w, z, s, column: pyref.quantize_value(float(w), float(z), float(s), column),
                lattice_code=lambda code, column: pyref.lattice_code(code, column),
                dequantize_value=dequantize_value)
