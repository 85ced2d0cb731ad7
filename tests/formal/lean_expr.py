"""Parser for the Lean 4 term subset used in lean/ (a Pratt parser over tests/lean_text.py tokens).

Precedences follow Lean's core notation (Init/Prelude, Init/Notation): `↔` 20, `→` 25 (right), `∨` 30 (right),
`∧` 35 (right), `¬` 40, comparisons and `∈` 50, `|||` 55, `&&&` 60, `+ - ++` 65, `::` 67 (right),
`* / %` 70, `<<< >>>` 75, prefix `-` 75, `^` 80 (right), application above all. Anything outside the subset
raises LeanSyntaxError, so a definition the evaluator cannot read fails loudly instead of being skipped.
"""
from __future__ import annotations

from dataclasses import dataclass

from lean_text import Token

INFIX = {  # token: (left binding power, right binding power, node)
    "↔": (20, 21, "iff"), "→": (25, 25, "imp"), "∨": (30, 30, "or"), "∧": (35, 35, "and"),
    "=": (50, 51, "eq"), "≠": (50, 51, "ne"), "<": (50, 51, "lt"), ">": (50, 51, "gt"), "≤": (50, 51, "le"),
    "≥": (50, 51, "ge"), "∈": (50, 51, "mem"), "∉": (50, 51, "notmem"), "|||": (55, 56, "lor"),
    "&&&": (60, 61, "land"), "+": (65, 66, "add"), "-": (65, 66, "sub"), "++": (65, 66, "append"),
    "::": (67, 67, "cons"), "*": (70, 71, "mul"), "/": (70, 71, "div"), "%": (70, 71, "mod"),
    "<<<": (75, 76, "shl"), ">>>": (75, 76, "shr"), "^": (80, 80, "pow"), "×": (35, 35, "prod"),
}
ARG_STOP = set(INFIX) | {")", "]", ",", ":=", "=>", "then", "else", "|", ":", "⟩", "}", "with", "by"}


class LeanSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Node:
    kind: str                 # num, name, app, bin, neg, not, if, fun, forall, exists, tuple, list, ascribe, proj
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
    explicit: bool = True


class Parser:
    def __init__(self, tokens: list[Token]):
        self.toks = tokens
        self.i = 0
        self.line_limit = 10 ** 9  # parse_structure: a field's type ends with its line

    # --- token helpers ---------------------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token | None:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def at(self, *texts: str) -> bool:
        t = self.peek()
        return t is not None and t.text in texts

    def take(self, text: str | None = None) -> Token:
        t = self.peek()
        if t is None or (text is not None and t.text != text):
            raise LeanSyntaxError(f"expected {text!r}, got {t.text if t else 'end of input'!r}"
                                  + (f" (line {t.line})" if t else ""))
        self.i += 1
        return t

    def done(self) -> bool:
        return self.i >= len(self.toks)

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
        t = self.peek()
        if t is None:
            raise LeanSyntaxError("unexpected end of term")
        if t.text in ("fun", "λ"):
            return self.lambda_()
        if t.text in ("∀", "∃"):
            return self.quantifier()
        if t.text == "if":
            self.take()
            c = self.term()
            self.take("then")
            a = self.term()
            self.take("else")
            return Node("if", (c, a, self.term()))
        if t.text == "¬":
            self.take()
            return Node("not", (self.term(40),))
        if t.text == "-":
            self.take()
            return Node("neg", (self.term(75),))
        return self.application()

    def application(self) -> Node:
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
        elif t.text == "⟨":
            items = self.comma_terms()
            self.take("⟩")
            node = Node("anon", tuple(items))
        else:
            raise LeanSyntaxError(f"unexpected {t.text!r} (line {t.line})")
        while self.at(".") and not self.peek().space:  # `p.1`, `(f x).2`
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
        e = self.term()
        if self.at(":"):
            self.take(":")
            ty = self.term()
            self.take(")")
            return Node("ascribe", (e, ty))
        if self.at(","):
            items = [e]
            while self.at(","):
                self.take(",")
                items.append(self.term())
            self.take(")")
            return Node("tuple", tuple(items))
        self.take(")")
        return e

    def lambda_(self) -> Node:
        self.take()
        binders = self.binders(stop="=>")
        self.take("=>")
        return Node("fun", (self.term(),), tuple(binders))

    def quantifier(self) -> Node:
        kind = "forall" if self.take().text == "∀" else "exists"
        binders = self.binders(stop=",")
        self.take(",")
        return Node(kind, (self.term(),), tuple(binders))

    def binders(self, stop: str) -> list[Binder]:
        """`x y`, `x y : T`, `(x : T) (y : U)`, `x ∈ l` (up to `stop`)."""
        out: list[Binder] = []
        while not self.at(stop):
            if self.at("(", "{", "["):
                out += self.binder_group()
                continue
            names = [self.take().text]
            while self.peek() is not None and self.peek().kind == "ident" and not self.at(stop):
                names.append(self.take().text)
            if self.at(":"):
                self.take(":")
                ty = self.term()
                out += [Binder(n, ty) for n in names]
            elif self.at("∈"):
                self.take("∈")
                out += [Binder(n, bound=self.term()) for n in names]
            else:
                out += [Binder(n) for n in names]
        return out

    def binder_group(self) -> list[Binder]:
        """`(a b : T)`, `{a : T}`, `[inst : C]`."""
        open_ = self.take().text
        close = {"(": ")", "{": "}", "[": "]"}[open_]
        names = []
        while not self.at(":"):
            names.append(self.take().text)
        self.take(":")
        ty = self.term()
        self.take(close)
        return [Binder(n, ty, explicit=open_ == "(") for n in names]


def parse_term(tokens: list[Token]) -> Node:
    p = Parser(tokens)
    e = p.term()
    if not p.done():
        raise LeanSyntaxError(f"trailing tokens from {p.peek().text!r} (line {p.peek().line})")
    return e


@dataclass
class Signature:
    """`NAME binders : TYPE` followed by `:= body` or by match arms `| pats => rhs`."""
    binders: list[Binder]
    type: Node | None
    body: Node | None
    arms: list[tuple[list[Node], Node]]


def parse_signature(tokens: list[Token]) -> Signature:
    p = Parser(tokens)
    binders = []
    while p.at("(", "{", "["):
        binders += p.binder_group()
    ty = None
    if p.at(":"):
        p.take(":")
        ty = p.term()
    if p.at(":="):
        p.take(":=")
        return Signature(binders, ty, None if p.at("by") else p.term(), [])
    arms = []
    while p.at("|"):
        p.take("|")
        pats = p.comma_terms()
        p.take("=>")
        arms.append((pats, p.term()))
    if not p.done():
        raise LeanSyntaxError(f"unexpected {p.peek().text!r} (line {p.peek().line})")
    return Signature(binders, ty, None, arms)


def parse_statement(tokens: list[Token]) -> Signature:
    """A theorem's binders and type (tests/lean_text.Decl.statement_tokens)."""
    p = Parser(tokens)
    binders = []
    while p.at("(", "{", "["):
        binders += p.binder_group()
    p.take(":")
    ty = p.term()
    if not p.done():
        raise LeanSyntaxError(f"unexpected {p.peek().text!r} in a statement (line {p.peek().line})")
    return Signature(binders, ty, None, [])


def parse_structure(tokens: list[Token]) -> list[Binder]:
    """`NAME where` then `field : T` lines."""
    p = Parser(tokens)
    p.take("where")
    fields = []
    while not p.done():
        name = p.take()
        p.take(":")
        p.line_limit = name.line
        fields.append(Binder(name.text, p.term()))
    return fields
