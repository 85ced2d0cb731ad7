"""The Lean-subset interpreter (lean_text, lean_expr, lean_py, lean_runtime) against hand-written expectations.

These four modules turn the text of lean/ into the Python the mirrors run, so a mistake in them (a precedence,
a `Nat` subtraction that does not truncate, a division rounding the wrong way, a hypothesis dropped, a bounded
`∀` over too few values) would make the mirrors check something other than what lean/ says. Here every
construct they accept is evaluated on a small Lean text and compared with the value Lean gives (worked out by
hand; the inputs are chosen so that the plausible mistake gives another answer), concretely and, where the
mirrors use it, on z3 integers (`z`) and z3 bit-vectors (`b`); every construct they reject has a case with its
error. The last test runs all the cases under a line tracer and requires them to execute every line of the four
modules: a line that no case reaches is a construct without an expectation (add a case, or delete the line).
"""
from __future__ import annotations

import inspect
import sys
import tempfile
import textwrap
import types
from pathlib import Path

import pytest
import z3

import lean_expr
import lean_py
import lean_runtime as rt
import lean_text
from lean_expr import LeanSyntaxError
from lean_py import LeanCode
from lean_text import LeanProject

HEADER = "/-- A file of the subset. -/\nimport Q35.Other\n/-!\n# Title\n-/\nnamespace Q35\n\n"


def write_project(folder: Path, text: str) -> Path:
    (folder / "Q35").mkdir(parents=True)
    (folder / "Q35" / "T.lean").write_text(HEADER + textwrap.dedent(text).strip() + "\n\nend Q35\n", encoding="utf-8")
    return folder


def project(text: str) -> LeanProject:
    """`text` (declarations of namespace Q35) as a one-file Lean project."""
    with tempfile.TemporaryDirectory() as d:
        return LeanProject(write_project(Path(d), text))


def lean(text: str) -> LeanCode:
    return LeanCode(project(text))


def prove(claim) -> None:
    s = z3.Solver()
    s.add(z3.Not(claim))
    assert s.check() == z3.unsat, s.model()


def symbolic(value, kind: str, side: list, name: str = "x"):
    """`value` with every int replaced by a fresh z3 constant (`side` gets `constant == int`)."""
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        return value
    if isinstance(value, int):
        v = z3.Int(name) if kind == "z" else z3.BitVec(name, 64)
        side.append(v == value)
        return v
    return type(value)(symbolic(x, kind, side, f"{name}_{i}") for i, x in enumerate(value))


# --- definitions: (Lean text defining f, [(arguments, the value Lean gives)], symbolic modes) -------------------
EVAL = [
    # `/` and `%` on Int are Int.ediv/Int.emod (Euclidean: 0 ≤ r < |b|), x / 0 = 0, x % 0 = x
    ("def f (a b : Int) : Int := a / b", [((-7, 2), -4), ((7, -2), -3), ((-7, -2), 4), ((7, 2), 3), ((5, 0), 0)], "z"),
    ("def f (a b : Int) : Int := a % b", [((-7, 2), 1), ((7, -2), 1), ((-7, -2), 1), ((7, 2), 1), ((-5, 0), -5)], "z"),
    ("def f (a : Int) : Int := a / 2 + a % 2 + a / 0 + a % 0", [((-7,), -4 + 1 + 0 - 7)], "z"),
    ("def f (a b : Nat) : Nat := a / b * 10 + a % b", [((7, 2), 31), ((7, 0), 7)], "zb"),
    ("def f (a : Nat) : Nat := a / 2 + a % 2 + a / 0 + a % 0", [((7,), 3 + 1 + 0 + 7)], "zb"),
    # `-` on Nat truncates at 0; an Int leaf or an expected Int makes the whole tree Int (Lean's binop%)
    ("def f (a b : Nat) : Nat := a - b + 1", [((3, 5), 1), ((5, 3), 3)], "zb"),
    ("def f (a b : Int) : Int := a - b", [((3, 5), -2)], "z"),
    ("def f (a : Nat) (b : Int) : Int := a - b", [((3, 5), -2)], "z"),
    ("def f (a b : Nat) : Int := a - b", [((3, 5), -2)], "z"),
    ("def f (n : Nat) : Int := (n : Int) - 5", [((3,), -2)], "z"),
    ("def f (n : Nat) : Nat := n - 5 * 2", [((3,), 0)], "zb"),
    # precedence and associativity (Lean: ^ right 80, * / % left 70, + - left 65, prefix - 75)
    ("def f : Nat := 2 + 3 * 4", [((), 14)], ""),
    ("def f : Nat := 10 - 3 - 2", [((), 5)], ""),
    ("def f : Nat := 7 / 2 * 2 + 2 * 3 % 4", [((), 6 + 2)], ""),
    ("def f : Nat := 2 ^ 3 ^ 2", [((), 512)], ""),
    ("def f : Int := -2 ^ 2 + (1 - -2)", [((), -4 + 3)], ""),
    ("def f (x : Int) (n : Nat) : Int := x ^ n - 1", [((-2, 3), -9)], ""),
    ("def f (n : Nat) : Nat := 2 ^ (n + 1)", [((9,), 1024)], ""),
    # bit operations on Nat: ||| 55 < &&& 60 < + 65 < <<< >>> 75
    ("def f : Nat := 4 ||| 1 &&& 2", [((), 4)], ""),
    ("def f : Nat := 1 <<< 2 + 1 + (37 >>> 2)", [((), 5 + 9)], ""),
    # max/min take one type for both arguments, from their leaves or the expected type
    ("def f (x : Int) : Int := max 0 (min 15 (x - 1))", [((-5,), 0), ((7,), 6), ((40,), 15)], "z"),
    ("def f (a b : Nat) : Int := min (a - b) 0", [((3, 5), -2)], "z"),
    ("def f (a b : Nat) : Nat := max (a - b) 1", [((3, 5), 1), ((9, 5), 4)], "zb"),
    ("def f (x : Int) : Nat := (x - 3).toNat", [((1,), 0), ((5,), 2)], "z"),
    # if-then-else: on numbers and on pairs also symbolically
    ("def f (v lo hi : Int) : Int := if v < lo then lo else if v > hi then hi else v",
     [((-3, 0, 15), 0), ((20, 0, 15), 15), ((7, 0, 15), 7)], "z"),
    ("def f (c : Nat) : Nat × Nat := if c < 5 then (c, 1) else (0, c)", [((3,), (3, 1)), ((7,), (0, 7))], "zb"),
    # pairs and projections
    ("def f (c : Nat) : Nat × Nat := (c % 16, c / 16)", [((100,), (4, 6))], "zb"),
    ("def f (p : Int × Int) : Int := p.1 - p.2", [(((3, 5),), -2)], "z"),
    ("def g (c : Nat) : Nat × Nat := (c, c + 1)\ndef f (c : Nat) : Nat := (g c).2 * 10 + (g c).1", [((4,), 54)], "zb"),
    ("def f (p : Int × Int × Int) : Int := p.2.1", [(((1, (2, 3)),), 2)], "z"),
    # comparisons, ≠ and the connectives (as Prop-valued definitions)
    ("def f (a b : Int) : Prop := a < b", [((2, 3), True), ((3, 3), False)], "z"),
    ("def f (a b : Int) : Prop := a > b", [((4, 3), True), ((3, 3), False)], "z"),
    ("def f (a b : Nat) : Prop := a ≤ b", [((3, 3), True), ((4, 3), False)], "zb"),
    ("def f (a b : Nat) : Prop := a ≥ b", [((3, 3), True), ((2, 3), False)], "zb"),
    ("def f (a b : Nat) : Prop := a = b", [((3, 3), True), ((2, 3), False)], "zb"),
    ("def f (a b : Nat) : Prop := a ≠ b", [((3, 3), False), ((2, 3), True)], "zb"),
    ("def f (a b : Nat) : Prop := a < 1 ∨ b < 1 ∧ False", [((0, 0), True), ((1, 0), False)], "zb"),
    ("def f (a b : Nat) : Prop := (a < 1 ∨ b < 1) ∧ True", [((1, 0), True), ((1, 1), False)], "zb"),
    ("def f (a b : Nat) : Prop := a < 1 ↔ b < 1", [((0, 0), True), ((1, 1), True), ((1, 0), False)], "zb"),
    # bounded quantifiers: `x < n →`, `x ≤ n ∧`, `∈ l` (for a Nat x: from 0)
    ("def f (y : Nat) : Prop := ∃ j, j ≤ 3 ∧ y = 2 ^ j", [((8,), True), ((16,), False), ((1,), True)], "z"),
    ("def f (y : Nat) : Prop := ∃ j, j < 3 ∧ y = 2 ^ j", [((8,), False), ((4,), True)], "z"),
    ("def f (n : Nat) : Prop := ∀ x, x < n → x * x < 10", [((4,), True), ((5,), False), ((0,), True)], ""),
    ("def f (n : Nat) : Prop := ∀ x : Nat, x ≤ n → x * x < 10", [((3,), True), ((4,), False)], ""),
    ("def f (l : List Nat) : Prop := ∀ x ∈ l, x < 3", [(([0, 2],), True), (([2, 3],), False), (([],), True)], "zb"),
    ("def f (l : List Nat) : Prop := ∃ x ∈ l, x = 2", [(([0, 2],), True), (([3],), False)], "zb"),
    ("def f (x : Nat) (l : List Nat) : Prop := x ∈ l", [((2, [1, 2]), True), ((3, [1, 2]), False)], "zb"),
    # lists: literals, ++ (left 65), :: (right 67), patterns, recursion (tails are views, not copies)
    ("def f (l : List Nat) : List Nat := l ++ [0] ++ 7 :: l", [(([1, 2],), [1, 2, 0, 7, 1, 2])], "zb"),
    ("def f (a : Nat) : List Nat := a :: []", [((5,), [5])], ""),
    ("def f (a : Nat) : List (List Nat) := [] ++ [[a], []]", [((5,), [[5], []])], ""),
    ("def f : List Nat → Nat\n  | [] => 0\n  | c :: cs => c + f cs", [(([1, 2, 3],), 6)], "zb"),
    ("def f : List Nat → Nat\n  | [] => 0\n  | _ :: cs => 1 + f cs", [((list(range(5000)),), 5000)], ""),
    ("def f : List Nat → Nat → Nat\n  | [], _ => 0\n  | c :: _, 0 => c\n  | _ :: cs, i + 1 => f cs i",
     [(([5, 6, 7], 1), 6), (([5, 6, 7], 5), 0), (([5], 0), 5)], ""),
    ("def f : Nat → Nat\n  | n + 2 => n\n  | _ => 7", [((5,), 3), ((1,), 7)], ""),
    ("def f : List Nat → List Nat\n  | [] => []\n  | [a] => [a + 100]\n  | a :: b :: rest => (a + b) :: f rest",
     [(([1, 2, 3],), [3, 103]), (([],), []), (([1, 2],), [3])], "zb"),
    ("def f (n : Nat) : List Nat := List.replicate n 3 ++ List.range n", [((2,), [3, 3, 0, 1])], ""),
    ("def f (l : List Nat) (n : Nat) : List Nat := l.take n ++ (l ++ l).take n ++ List.take 1 l",
     [(([1, 2, 3], 2), [1, 2, 1, 2, 1])], ""),
    ("def f (l : List Nat) : Nat := l.length + (l ++ l).length + List.length l", [(([4, 4],), 8)], ""),
    ("def f (l : List Nat) : Prop := l = [1, 2] ∧ l.take 1 ≠ []", [(([1, 2],), True), (([1],), False)], ""),
    ("def f (l : List Nat) : Prop := l.Perm (List.range 3) ∧ List.Nodup l",
     [(([2, 0, 1],), True), (([0, 0, 1],), False)], ""),
    ("def f (l : List Nat) : Prop := List.Perm l [1] ∨ l.Nodup", [(([1, 1],), False), (([1, 2],), True)], ""),
    # structures: fields by name, `p.dx` and `(e).field`
    ("structure P where\n  dx : Int\n  xl : List (Int × Int)\ndef f (p : P) : Int := (p).dx * (p.xl).length",
     [(({"dx": -3, "xl": [(1, 2), (3, 4)]},), -6)], ""),
    ("structure P where\n  dx : Int\ndef f (p q : P) : Prop := p = q",
     [(({"dx": 1}, {"dx": 1}), True), (({"dx": 1}, {"dx": 2}), False)], ""),
    # constants, function binders and `fun` (untyped binders take the expected type: Int `-` here)
    ("def K : Nat := 7\ndef f : Nat := K + 1", [((), 8)], ""),
    ("def f (n : Nat) : Prop := (n = 0 ∨ False) ∧ True", [((0,), True), ((1,), False)], "z"),
    ("def g (h : Int → Int → Int) (a : Int) : Int := h a 5\ndef f (a : Int) : Int := g (fun x y => x - y) a",
     [((2,), -3)], "z"),
    ("def g (h : Nat → Nat) : Nat := h 2\ndef f : Nat := g (fun x => x - 5)", [((), 0)], ""),
    ("def g (h : Int → Int → Int) : Int := h 2 5\ndef f : Int := g (fun x y : Int => x - y)", [((), -3)], ""),
    ("def g (h : Int → Prop) : Prop := h 2\ndef f : Prop := g (fun x => x - 5 < 0)", [((), True)], ""),
    ("def f (e : Int × Int → Int) (a : Int) : Int := e (a, 1)", [((lambda p: p[0] - 10 * p[1], 4), -6)], ""),
]


@pytest.mark.parametrize("case", EVAL, ids=[c[0].splitlines()[-1][:60] for c in EVAL])
def test_definition(case):
    check_definition(case)


def check_definition(case):
    text, points, modes = case
    f = lean(text).fn("f")
    for args, expected in points:
        got = f(*args)
        assert got == expected and type(got) is type(expected), (text, args, got, expected)
        for kind in modes:
            side: list = []
            value = f(*symbolic(args, kind, side))
            claim = rt.iff(value, expected) if isinstance(expected, bool) else rt.eq(value, expected)
            prove(z3.Implies(z3.And(*side), rt.as_z3(claim)))


# --- theorem statements -----------------------------------------------------------------------------------------
def test_statement_binders_hypotheses_and_conclusion():
    """Value binders (explicit and implicit) become parameters in order, `(h : P)` binders hypotheses that are
    evaluated in order and only while the earlier ones hold; the conclusion is a thunk."""
    code = lean("""
        def g (l : List Nat) : Nat := l.length
        theorem t (n : Nat) {l : List Nat} (h1 : n < 3) (h2 : g l = n) (f : Nat → Int) : f n = n := by
          omega
        theorem c : ∀ x : Nat, x < 4 → (x &&& 1, x >>> 1) = (x % 2, x / 2) := by
          decide
        """)
    stmt = code.statement("t")
    assert stmt.name == "t" and stmt.params == [("n", "Nat"), ("l", ("List", "Nat")), ("f", ("Fun", "Nat", "Int"))]
    hyp, concl = stmt(n=2, l=[7, 7], f=lambda x: x)
    assert hyp is True and concl() is True
    hyp, concl = stmt(n=2, l=[7, 7], f=lambda x: x + 1)
    assert hyp is True and concl() is False
    assert stmt(n=2, l=[7], f=None)[0] is False
    assert stmt(n=5, l=None, f=None)[0] is False   # h2 (which would fail on l=None) is never evaluated
    side: list = []
    n = symbolic(1, "z", side)
    hyp, concl = stmt(n=n, l=[0], f=lambda x: x)
    prove(z3.Implies(z3.And(*side), z3.And(hyp, rt.as_z3(concl()))))
    hyp, concl = code.statement("c")()
    assert code.statement("c").params == [] and hyp is True and concl() is True


def test_with_code_replaces_definitions_everywhere_they_are_called():
    code = lean("""
        def g (a : Int) : Int := a + 1
        def f (a : Int) : Int := g a * 2
        theorem t (a : Int) : f a = 2 * a + 2 := by
          simp [f, g]; omega
        """)
    assert code.statement("t")(a=5)[1]() is True
    other = code.with_code(g=lambda a: a + 2)
    assert other.fn("f")(1) == 6 and other.statement("t")(a=1)[1]() is False
    both = other.with_code(f=lambda a: 2 * a + 2)
    assert both.fn("g")(1) == 3 and both.statement("t")(a=1)[1]() is True   # overrides accumulate
    assert code.fn("f")(1) == 4   # the original is unchanged


# --- the text of lean/: comments, tokens, declarations ----------------------------------------------------------
def test_text_comments_tokens_and_normal_form():
    src = "a -- line\nb /- c /- nested -/ d -/ e /-- doc -/ f --"
    stripped = lean_text.strip_comments(src)
    assert stripped.count("\n") == 1 and len(stripped) == len(src)
    toks = lean_text.tokenize(stripped, first_line=10)
    assert [t.text for t in toks] == ["a", "b", "e", "f"] and [t.line for t in toks] == [10, 11, 11, 11]
    toks = lean_text.tokenize("xs.length:=(l₁ <<<2)⟨·")
    assert [(t.text, t.kind) for t in toks] == [
        ("xs.length", "ident"), (":=", "sym"), ("(", "sym"), ("l₁", "ident"), ("<<<", "sym"), ("2", "num"),
        (")", "sym"), ("⟨", "sym"), ("·", "sym")]
    assert lean_text.tokenize("a ¢")[1].kind == "other"
    assert lean_text.normalise(lean_text.tokenize("  f  (x\n   y)  ")) == "f (x y)"


def test_declarations_statements_uses_and_closure():
    p = project("""
        /-- Models `pyref.thing`. -/
        def A : Nat := 1
        def B (n : Nat) : Nat :=

          n + Q35.A
        structure S where
          x : Nat
        theorem t1 (s : S) : B s.x = s.x + A := by
          simp [B, A]
        theorem t2 : ∀ n, n < 2 → B n > 0 := fun n h => by
          simp [B]
        theorem t3 (n : Nat) : B n = n + 1
          | 0 => rfl
          | n + 1 => by simp [B]
        theorem t4 (h : (1 : Nat) = 1) : [1].length = 1 := rfl
        theorem t5 (n : Nat) (h : B n = n + 1 := t3 n) : True := trivial
        """)
    assert list(p.decls) == ["A", "B", "S", "t1", "t2", "t3", "t4", "t5"]
    assert set(p.theorems) == {"t1", "t2", "t3", "t4", "t5"}
    assert p.decls["A"].doc == "Models `pyref.thing`." and p.decls["B"].doc == "" and p.decls["A"].line == 9
    assert p.decls["B"].text == "def B (n : Nat) : Nat := n + Q35.A"
    assert p.decls["t1"].text == "theorem t1 (s : S) : B s.x = s.x + A"
    assert p.decls["t3"].text == "theorem t3 (n : Nat) : B n = n + 1"
    assert p.decls["t4"].text == "theorem t4 (h : (1 : Nat) = 1) : [1].length = 1"
    assert p.decls["t5"].text == "theorem t5 (n : Nat) (h : B n = n + 1 := t3 n) : True"   # `:=` inside brackets
    assert p.decls["t5"].uses == {"B", "t3"} and p.closure("t5") == ["A", "B"]   # theorems are not followed
    assert p.decls["B"].uses == {"A"} and p.decls["t1"].uses == {"S", "B", "A"}
    assert p.closure("t1") == ["A", "B", "S"] and p.closure("t2") == ["A", "B"] and p.closure("A") == []
    assert p.resolve("Q35.A") == "A" and p.resolve("s.x") is None and set(p.of_kind("structure")) == {"S"}
    with tempfile.TemporaryDirectory() as d:
        write_project(Path(d), "def A : Nat := 1")
        (Path(d) / ".lake").mkdir()
        (Path(d) / ".lake" / "Dep.lean").write_text("def A : Nat := 2\n")
        assert [f.name for f in LeanProject(Path(d)).files] == ["T.lean"]


# --- what the subset rejects, and where -----------------------------------------------------------------------
def compile_f(text):
    return lean(text)


def call_f(args):
    return lambda text: lean(text).fn("f")(*args)


def statement_t(text):
    return lean(text).statement("t")


def symbolic_f(*args):
    def run(text):
        side: list = []
        return lean(text).fn("f")(*symbolic(args, "z", side))
    return run


ERRORS = [
    # lean_text: declarations
    ("lemma f : 1 = 1 := rfl", project, ValueError, "outside the Lean subset read here: 'lemma f"),
    ("@[simp] def f : Nat := 1", project, ValueError, "outside the Lean subset"),
    ("def f : Nat := 1\ndef f : Nat := 2", project, ValueError, "f declared twice"),
    ("theorem t : 1 = 1", project, ValueError, "T.lean:8: theorem t without a proof"),
    # lean_expr: syntax
    ("def f : Nat := ⟨1, 2⟩", compile_f, LeanSyntaxError, "unexpected '⟨'"),
    ("def f : Nat := 1 +", compile_f, LeanSyntaxError, "expected a token, got the end of the text"),
    ("def f : Nat := (1", compile_f, LeanSyntaxError, "expected '\\)', got the end of the text"),
    ("def f : Nat := if 1 = 1 then 2", compile_f, LeanSyntaxError, "expected 'else', got the end"),
    ("def f : Nat := (1 2) )", compile_f, LeanSyntaxError, "unexpected '\\)' in a definition"),
    ("def f : Nat", compile_f, LeanSyntaxError, "needs `:= body` or match arms"),
    ("def f (1 : Nat) : Nat := 1", compile_f, LeanSyntaxError, "expected a name, got '1'"),
    ("theorem t (n : Nat) := rfl", statement_t, LeanSyntaxError, "expected ':', got the end"),
    ("theorem t : 1 = 1 , 2 := rfl", statement_t, LeanSyntaxError, "unexpected ',' in a statement"),
    # lean_py: names, arities, patterns, terms, types
    ("def f : Nat := y", compile_f, LeanSyntaxError, "unknown name 'y'"),
    ("def g (a : Nat) : Nat := a\ndef f : Nat := g", compile_f, LeanSyntaxError, "not applied to all its arguments"),
    ("def g (a : Nat) : Nat := a\ndef f : Nat := g 1 2", compile_f, LeanSyntaxError, "g takes 1 arguments, given 2"),
    ("def f : Nat := max 1", compile_f, LeanSyntaxError, "max takes 2 arguments here, got 1"),
    ("def f (a : Nat) : Nat := a 3", compile_f, LeanSyntaxError, "applied to an argument"),
    ("def f : Nat × Nat → Nat\n  | (a, b) => a", compile_f, LeanSyntaxError,
     "unsupported pattern tuple\\(name\\[a\\]"),
    ("def f : Nat\n  | 0 => 1", compile_f, LeanSyntaxError, "more patterns than its type Nat has arguments"),
    ("def f : Nat → Nat → Nat\n  | 0, _ => 1\n  | 1 => 2", compile_f, LeanSyntaxError, "an arm with 1 patterns, 2"),
    ("def f : Nat × Nat × Nat := (1, 2, 3)", compile_f, LeanSyntaxError, "unsupported term tuple"),
    ("def f : Prop := 1 = 1 → 2 = 2", compile_f, LeanSyntaxError, "unsupported operator imp"),
    ("def f (p : Nat × Nat) : Nat := p.3", compile_f, LeanSyntaxError, "unsupported projection .3"),
    ("structure S where\n  x : Nat\ndef f (s : S) : Nat := s.y", compile_f, LeanSyntaxError, "S has no field y"),
    ("def f : Prop := ∀ x, x * x < 2", compile_f, LeanSyntaxError, "needs a bound"),
    ("def f : Prop := ∃ x, x = 2", compile_f, LeanSyntaxError, "needs a bound"),
    ("def f : Prop := ∀ x, 2 < x → x = x", compile_f, LeanSyntaxError, "needs a bound"),
    ("def f : Prop := ∀ x : Int, x < 2 → x = x", compile_f, LeanSyntaxError, "only a `Nat` counts from 0"),
    ("def f : Prop := ∀ x y, x < 2 → y = y", compile_f, LeanSyntaxError, "one binder per"),
    # run time: what Lean evaluates but these values do not allow
    ("def f : Nat → Nat\n  | 0 => 1", call_f((5,)), rt.LeanEvalError, "f: no pattern matches \\(5,\\)"),
    ("def f : Nat → Nat\n  | 0 => 1\n  | n + 1 => n", symbolic_f(3), rt.LeanEvalError, "a pattern needs a concrete"),
    ("def f (a : Nat) : Nat := a ||| 1", symbolic_f(3), rt.LeanEvalError, "`lor` needs a concrete value"),
    ("def f (n : Nat) : List Nat := List.replicate n 0", symbolic_f(3), rt.LeanEvalError, "List.replicate needs"),
    ("def f (n : Nat) : Nat := 2 ^ n", symbolic_f(3), rt.LeanEvalError, "an exponent needs"),
    ("def f (n : Nat) : Prop := ∀ x, x < n → x = x", symbolic_f(3), rt.LeanEvalError, "a bounded ∀ needs"),
    ("def f (c : Nat) : List Nat := if c < 5 then [c] else []", symbolic_f(3), rt.LeanEvalError, "symbolic `if`"),
    ("def f (a : Nat) : Prop := [a].Perm [a]", symbolic_f(3), rt.LeanEvalError, "List.Perm needs concrete lists"),
    ("def f (a : Nat) : Prop := [a].Nodup", symbolic_f(3), rt.LeanEvalError, "List.Nodup needs a concrete list"),
    ("theorem t (n : Nat) : n = n := rfl", lambda text: statement_t(text)(m=1), rt.LeanEvalError,
     "t: binders \\['n'\\], got \\['m'\\]"),
    ("def g : Nat := 1", lambda text: lean(text).with_code(h=1), KeyError, "no definition h"),
    ("def g : Nat := 1", lambda text: lean(text).fn("h"), KeyError, "no definition h"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[f"{c[0].splitlines()[-1][:50]} ({c[3][:30]})" for c in ERRORS])
def test_rejected(case):
    check_rejected(case)


def check_rejected(case):
    text, run, error, message = case
    with pytest.raises(error, match=message):
        run(text)


# --- the run-time helpers on their own ------------------------------------------------------------------------
def test_runtime_lists_views_and_equality():
    xs = [1, 2, 3]
    t = rt.tail(rt.tail(xs))
    assert len(t) == 1 and t[0] == 3 and list(t) == [3] and len(rt.tail(t)) == 0
    with pytest.raises(IndexError):
        t[1]
    with pytest.raises(IndexError):
        t[-1]
    assert rt.eq(rt.tail(xs), [2, 3]) is True and rt.eq([2, 3], rt.tail(xs)) is True and rt.eq([1], [1, 2]) is False
    assert rt.eq([1, 2], [1, 3]) is False and rt.eq((1, 2), (1, 3)) is False and rt.eq((1, 2), [1, 2]) is False
    assert rt.eq({"a": 1}, {"a": 1}) is True and rt.eq({"a": 1}, {"a": 2}) is False
    assert rt.append(rt.tail(xs), [9]) == [2, 3, 9] and rt.cons(0, rt.tail(xs)) == [0, 2, 3]
    assert rt.take(5, rt.tail(xs)) == [2, 3] and rt.range_(2) == [0, 1] and rt.replicate(2, 0) == [0, 0]
    assert rt.apply(lambda a: lambda b: a - b, (5, 7)) == -2


def test_runtime_on_z3_terms():
    x, y = z3.Ints("x y")
    u, v = z3.BitVecs("u v", 8)
    assert rt.sym(x) and not rt.sym(3) and rt.bv(u) and not rt.bv(x)
    prove(z3.Implies(x == -2, rt.power(x, 3) == -8))
    prove(z3.Implies(z3.And(x == -7, y == 0), z3.And(rt.div(x, y) == 0, rt.mod(x, y) == -7)))
    prove(z3.Implies(z3.And(u == 200, v == 0), z3.And(rt.div(u, v) == 0, rt.mod(u, v) == 200)))
    prove(z3.Implies(u == 200, z3.And(rt.div(u, 3) == 66, rt.mod(u, 3) == 2, rt.div(u, 0) == 0, rt.mod(u, 0) == u)))
    prove(z3.Implies(z3.And(u == 3, v == 200), z3.And(rt.nsub(u, v) == 0, rt.lt(u, v), rt.le(u, v),
                                                      rt.maximum(u, v) == 200, rt.minimum(u, v) == 3)))
    prove(z3.Implies(x == -4, z3.And(rt.to_nat(x) == 0, rt.maximum(x, 0) == 0, rt.minimum(x, 0) == -4)))
    prove(rt.iff(x < 0, rt.lnot(x >= 0)))
    prove(z3.Implies(x == 1, z3.And(rt.land(x > 0, lambda: True), rt.lor(x < 0, lambda: True),
                                    rt.lnot(rt.land(x > 0, lambda: False)), rt.lor(x > 0, lambda: False))))
    assert rt.land(False, None) is False and rt.lor(True, None) is True and rt.iff(0, False) is True
    assert rt.all_of([True, x > 0, False]) is False and rt.any_of([False, x > 0, True]) is True
    assert rt.all_of([]) is True and rt.any_of([]) is False and rt.lnot(True) is False
    prove(rt.all_of([x == x, True]) == (x == x))
    prove(rt.any_of([x != x, False]) == (x != x))
    prove(z3.Implies(x == 5, rt.exists_range(6, lambda j: x == j)))
    prove(z3.Implies(x == 5, rt.forall_mem([4, 6], lambda j: x != j)))
    assert rt.exists_mem([], None) is False and rt.member(2, [1, 2]) is True and rt.member(x, []) is False
    assert rt.forall_range(0, None) is True and rt.exists_range(0, None) is False
    assert rt.ite(True, lambda: 1, None) == 1 and rt.ite(False, None, lambda: 2) == 2
    assert rt.bitwise("land", 6, 3) == 2 and rt.bitwise("shl", 1, 4) == 16
    assert rt.is_perm([1, 2, 2], [2, 1, 2]) and not rt.is_perm([1], [1, 1]) and rt.nodup([]) is True


# --- the cases must reach every line of the interpreter ----------------------------------------------------------
MODULES = (lean_text, lean_expr, lean_py, rt)


def function_lines(module) -> set[int]:
    """The lines of the module's functions and methods: what runs after the module is imported."""
    lines: set[int] = set()

    def walk(code):
        if code.co_filename == module.__file__:
            lines.update(line for _, _, line in code.co_lines() if line is not None)
            for c in code.co_consts:
                if isinstance(c, types.CodeType):
                    walk(c)

    def visit(obj):
        obj = getattr(obj, "fget", None) or getattr(obj, "func", None) or getattr(obj, "__func__", None) or obj
        if inspect.isfunction(obj):
            walk(obj.__code__)

    for obj in vars(module).values():
        if inspect.isclass(obj) and obj.__module__ == module.__name__:
            for member in vars(obj).values():
                visit(member)
        elif inspect.isfunction(obj) and obj.__module__ == module.__name__:
            visit(obj)
    return lines


def run_traced(fn) -> dict[str, set[int]]:
    hits: dict[str, set[int]] = {m.__file__: set() for m in MODULES}

    def local(frame, event, arg):
        hits[frame.f_code.co_filename].add(frame.f_lineno)
        return local

    def call(frame, event, arg):
        if frame.f_code.co_filename in hits:
            hits[frame.f_code.co_filename].add(frame.f_lineno)
            return local
        return None

    previous = sys.gettrace()
    sys.settrace(call)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return hits


def all_cases():
    for case in EVAL:
        check_definition(case)
    for case in ERRORS:
        check_rejected(case)
    for test in (test_statement_binders_hypotheses_and_conclusion,
                 test_with_code_replaces_definitions_everywhere_they_are_called,
                 test_text_comments_tokens_and_normal_form, test_declarations_statements_uses_and_closure,
                 test_runtime_lists_views_and_equality, test_runtime_on_z3_terms):
        test()


def test_the_cases_reach_every_line_of_the_interpreter():
    hits = run_traced(all_cases)
    missing = []
    for m in MODULES:
        source = Path(m.__file__).read_text(encoding="utf-8").splitlines()
        missing += [f"{Path(m.__file__).name}:{n}: {source[n - 1].strip()}"
                    for n in sorted(function_lines(m) - hits[m.__file__])]
    assert not missing, "lines no hand-written case reaches (add a case, or delete them):\n  " + "\n  ".join(missing)


def test_the_line_check_can_fail():
    hits = run_traced(lambda: lean_text.normalise([]))
    assert lean_text.LeanProject.closure.__code__.co_firstlineno + 2 not in hits[lean_text.__file__]
    assert len(function_lines(lean_py)) > 200
