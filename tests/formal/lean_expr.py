"""Parser for the Lean 4 term subset used in lean/ (a Pratt parser over tests/formal/lean_text.py tokens).

Precedences follow Lean's core notation (Init/Prelude, Init/Notation): `↔` 20, `→` 25 (right), `∨` 30 (right),
`∧` 35 (right), comparisons and `∈` 50, `|||` 55, `&&&` 60, `+ - ++` 65, `::` 67 (right), `* / %` 70,
`<<< >>>` 75, prefix `-` 75, `^` 80 (right), application above all; `×` (in types) 35 (right). Anything
outside the subset raises LeanSyntaxError, so text the evaluator cannot read fails loudly instead of being
skipped. tests/formal/test_lean_subset.py has an expectation for every construct accepted here.
"""
from __future__ import annotations

from dataclasses import dataclass

from lean_text import Token

INFIX = {  # token: (left binding power, right binding power, node)
    "↔": (20, 21, "iff"), "→": (25, 25, "imp"), "∨": (30, 30, "or"), "∧": (35, 35, "and"),
    "×": (35, 35, "prod"),
    "=": (50, 51, "eq"), "≠": (50, 51, "ne"), "<": (50, 51, "lt"), ">": (50, 51, "gt"), "≤": (50, 51, "le"),
    "≥": (50, 51, "ge"), "∈": (50, 51, "mem"), "|||": (55, 56, "lor"), "&&&": (60, 61, "land"),
    "+": (65, 66, "add"), "-": (65, 66, "sub"), "++": (65, 66, "append"), "::": (67, 67, "cons"),
    "*": (70, 71, "mul"), "/": (70, 71, "div"), "%": (70, 71, "mod"), "<<<": (75, 76, "shl"), ">>>": (75, 76, "shr"),
    "^": (80, 80, "pow"),
}
ARG_STOP = set(INFIX) | {")", "]", ",", ":=", "=>", "then", "else", "|", ":", "}"}


class LeanSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Node:
    kind: str                 # num, name, app, bin, neg, if, fun, forall, exists, tuple, list, ascribe, proj
    args: tuple = ()
    value: object = None      # num: int; name: str; bin: op; proj: field; fun/forall/exists: binders

    def __repr__(self):
        inner = ", ".join(map(repr, self.args))
        return f"{self.kind}[{self.value}]({inner})" if self.value is not None else f"{self.kind}({inner})"


@dataclass(frozen=True)
class Binder:
    name: str
    type: Node | None = None      # declared type, if any
    bound: Node | None = None     # `x ∈ l`: the list l
    explicit: bool = True         # `(x : T)`, not `{x : T}`


class Parser:
    def __init__(self, tokens: list[Token]):
        self.toks = tokens
        self.i = 0
        self.line_limit = 10 ** 9  # parse_structure: a field's type ends with its line

    # --- token helpers ---------------------------------------------------------------------------------------
    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def at(self, *texts: str) -> bool:
        t = self.peek()
        return t is not None and t.text in texts

    def take(self, text: str | None = None) -> Token:
        t = self.peek()
        if t is None or (text is not None and t.text != text):
            raise LeanSyntaxError(f"expected {repr(text) if text else 'a token'}, got "
                                  + (f"{t.text!r} (line {t.line})" if t else "the end of the text"))
        self.i += 1
        return t

    def name(self) -> str:
        t = self.take()
        if t.kind != "ident":
            raise LeanSyntaxError(f"expected a name, got {t.text!r} (line {t.line})")
        return t.text

    def expect_end(self, what: str) -> None:
        if self.i < len(self.toks):
            raise LeanSyntaxError(f"unexpected {self.peek().text!r} in {what} (line {self.peek().line})")

    # --- terms ---------------------------------------------------------------------------------------------
    def term(self, min_bp: int = 0) -> Node:
        left = self.prefix()
        while (t := self.peek()) is not None and t.text in INFIX:
            lbp, rbp, op = INFIX[t.text]
            if lbp < min_bp:
                break
            self.take()
            left = Node("bin", (left, self.term(rbp)), op)
        return left

    def prefix(self) -> Node:
        if self.at("fun"):
            self.take()
            binders = self.binders()
            self.take("=>")
            return Node("fun", (self.term(),), tuple(binders))
        if self.at("∀", "∃"):
            kind = "forall" if self.take().text == "∀" else "exists"
            binders = self.binders()
            self.take(",")
            return Node(kind, (self.term(),), tuple(binders))
        if self.at("if"):
            self.take()
            c = self.term()
            self.take("then")
            a = self.term()
            self.take("else")
            return Node("if", (c, a, self.term()))
        if self.at("-"):
            self.take()
            return Node("neg", (self.term(75),))
        head = self.argument()
        args = []
        while (t := self.peek()) is not None and t.text not in ARG_STOP and t.line <= self.line_limit:
            args.append(self.argument())
        return Node("app", (head, *args)) if args else head

    def argument(self) -> Node:
        t = self.take()
        if t.kind == "num":
            node = Node("num", value=int(t.text))
        elif t.kind == "ident":
            node = Node("name", value=t.text)
        elif t.text == "(":
            node = self.paren()
        elif t.text == "[":
            items = [] if self.at("]") else self.comma_terms()
            self.take("]")
            node = Node("list", tuple(items))
        else:
            raise LeanSyntaxError(f"unexpected {t.text!r} (line {t.line})")
        while self.at(".") and not self.peek().space:  # `p.1`, `(f x).2`, `(f x).take n`
            self.take(".")
            f = self.take()
            node = Node("proj", (node,), int(f.text) if f.kind == "num" else f.text)
        return node

    def comma_terms(self) -> list[Node]:
        items = [self.term()]
        while self.at(","):
            self.take(",")
            items.append(self.term())
        return items

    def paren(self) -> Node:
        """`(e)`, `(e : T)`, `(a, b, ...)`."""
        items = self.comma_terms()
        if len(items) == 1 and self.at(":"):
            self.take(":")
            items = [Node("ascribe", (items[0], self.term()))]
        self.take(")")
        return items[0] if len(items) == 1 else Node("tuple", tuple(items))

    def binders(self) -> list[Binder]:
        """`x y`, `x y : T`, `x ∈ l`: the binders of `fun`, `∀` and `∃`."""
        names = [self.name()]
        while self.peek() is not None and self.peek().kind == "ident":
            names.append(self.name())
        if self.at(":"):
            self.take(":")
            ty = self.term()
            return [Binder(n, ty) for n in names]
        if self.at("∈"):
            self.take("∈")
            bound = self.term()
            return [Binder(n, bound=bound) for n in names]
        return [Binder(n) for n in names]

    def binder_groups(self) -> list[Binder]:
        """`(a b : T)` and `{a : T}` groups, as many as there are."""
        out = []
        while self.at("(", "{"):
            open_ = self.take().text
            names = [self.name()]
            while not self.at(":"):
                names.append(self.name())
            self.take(":")
            ty = self.term()
            self.take(")" if open_ == "(" else "}")
            out += [Binder(n, ty, explicit=open_ == "(") for n in names]
        return out


@dataclass
class Signature:
    """`NAME binders : TYPE` followed by `:= body` or by match arms `| pats => rhs` (a theorem: no body)."""
    binders: list[Binder]
    type: Node | None
    body: Node | None = None
    arms: tuple = ()          # ((patterns, rhs), ...)


def parse_definition(tokens: list[Token]) -> Signature:
    p = Parser(tokens)
    binders = p.binder_groups()
    ty = None
    if p.at(":"):
        p.take(":")
        ty = p.term()
    if p.at(":="):
        p.take(":=")
        sig = Signature(binders, ty, body=p.term())
    else:
        arms = []
        while p.at("|"):
            p.take("|")
            pats = p.comma_terms()
            p.take("=>")
            arms.append((pats, p.term()))
        sig = Signature(binders, ty, arms=tuple(arms))
    p.expect_end("a definition")
    if sig.body is None and not sig.arms:
        raise LeanSyntaxError("a definition needs `:= body` or match arms")
    return sig


def parse_statement(tokens: list[Token]) -> Signature:
    """A theorem's binders and type (lean_text.Decl.statement_tokens)."""
    p = Parser(tokens)
    binders = p.binder_groups()
    p.take(":")
    sig = Signature(binders, p.term())
    p.expect_end("a statement")
    return sig


def parse_structure(tokens: list[Token]) -> list[Binder]:
    """`NAME where` then `field : T` lines."""
    p = Parser(tokens)
    p.take("where")
    fields = []
    while p.peek() is not None:
        line = p.peek().line
        name = p.name()
        p.take(":")
        p.line_limit = line
        fields.append(Binder(name, p.term()))
    return fields
