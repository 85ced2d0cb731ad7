"""Shared helpers of the Lean mirror tests (tests/test_mirror_*.py); holds no tests itself.

Convention (enforced by tests/test_lean_meta.py): the mirror of Lean theorem `T` is every test function
named `test_T` or `test_T__<what>` in a tests/test_mirror_*.py file. A mirror checks the theorem's
statement against pyref (exhaustively, with z3 over all inputs, or with Hypothesis) and, where the
statement is about something the Fortran kernels compute, against the fast path (`q35`) too.
"""
from __future__ import annotations

from fractions import Fraction


import z3  # z3-solver: a dev dependency (pyproject.toml [dev])


def prove(claim, *, timeout_ms: int = 120_000) -> None:
    """Assert that z3 proves `claim` for every assignment of its free variables."""
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.add(z3.Not(claim))
    r = s.check()
    assert r == z3.unsat, f"z3 could not prove the claim ({r}); counterexample: {s.model() if r == z3.sat else '-'}"


def refute(claim, *, timeout_ms: int = 120_000):
    """Assert that z3 finds a counterexample to `claim` (used to show a mirror can fail); returns the model."""
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.add(z3.Not(claim))
    r = s.check()
    assert r == z3.sat, f"expected a counterexample, z3 says {r}"
    return s.model()


def load_bridge():
    """The Fortran fast path (`q35`); a missing extension fails the test."""
    import q35
    return q35


# --- the Lean definitions, transcribed (lean/Q35/*.lean) --------------------------------------------------
def lean_clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def lean_code4(w: int, z: int, s: int) -> int:
    """Q35.code4 on integers (Python // is floor division, as Lean's Int `/` for a positive divisor)."""
    return lean_clamp((2 * (w - z) + s) // (2 * s), 0, 15)


def lean_code3(w: int, z: int, s: int) -> int:
    return lean_clamp((w - z + s) // (2 * s), 0, 7)


def lean_lattice_code(code: int, column: int) -> int:
    return code if column % 2 == 0 else 2 * code


def lean_quantize_value(w: int, z: int, s: int, column: int) -> int:
    return lean_code4(w, z, s) if column % 2 == 0 else lean_code3(w, z, s)


def lean_dequantize_value(code: int, z: int, s: int, column: int) -> int:
    return z + s * lean_lattice_code(code, column)


def lean_from_digits(b: int, ds) -> int:
    v = 0
    for d in reversed(list(ds)):
        v = d + b * v
    return v


def lean_to_digits(b: int, n: int, v: int) -> list[int]:
    out = []
    for _ in range(n):
        out.append(v % b)
        v //= b
    return out


def lean_pack_block(cs) -> list[int]:
    return lean_to_digits(256, 7, lean_from_digits(128, cs))


def lean_unpack_block(bs) -> list[int]:
    return lean_to_digits(128, 8, lean_from_digits(256, bs))


def lean_packed_length(k: int) -> int:
    return 7 * ((k + 15) // 16)


def to_common_integers(*values: float) -> tuple[int, ...]:
    """Exact binary floats as integers in a common unit (multiply by the least common power-of-two denominator)."""
    fr = [Fraction(v) for v in values]
    den = 1
    for f in fr:
        den = max(den, f.denominator)  # denominators are powers of two, so the max is the lcm
    return tuple(int(f * den) for f in fr)
