"""The text of lean/: declarations, their normalised statements, what they depend on, and their pins.

A *pin* is a short hash of the normalised text of a theorem's statement (binders and type, not the proof)
together with the normalised text of every project definition the statement uses, transitively. A mirror test
records the pin of the theorem (or definition) it checks; when either the statement or a definition it uses
changes, the recorded pin no longer matches and CI fails until the mirror is reviewed and re-pinned
(`python tests/lean_pins.py --repin`). Normalising removes comments and collapses whitespace, so only token
changes count.

This module reads the subset of Lean 4 used in lean/ (top-level `def`, `theorem`, `structure` at column 0,
their bodies indented); tests/lean_expr.py parses expressions and tests/lean_py.py evaluates them.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEAN_DIR = ROOT / "lean"

_SYMBOLS = sorted([":=", "=>", "<<<", ">>>", "|||", "&&&", "^^^", "++", "::", "<;>", "≤", "≥", "≠", "→", "←", "↔",
                   "∧", "∨", "¬", "∀", "∃", "∈", "∉", "×", "λ", "·", "⟨", "⟩", "▸", "<", ">", "=", "+", "-", "*",
                   "/", "%", "^", "(", ")", "[", "]", "{", "}", ",", ":", "|", ".", "@", "!", ";", "?", "$", "#",
                   "'", "&", "~", "`", "∣", "∘", "⁻¹"], key=len, reverse=True)
_IDENT = r"[A-Za-z_\u03b1-\u03c9\u0391-\u03a9\u1d00-\u1dbf][\w'!?\u2080-\u2089\u1d62-\u1d6a]*"
TOKEN_RE = re.compile(rf"(?P<ws>\s+)|(?P<num>\d+)|(?P<ident>{_IDENT}(?:\.{_IDENT})*)|(?P<sym>"
                      + "|".join(re.escape(s) for s in _SYMBOLS) + r")|(?P<other>\S)")
DECL_RE = re.compile(r"^(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable)\s+)*"
                     r"(def|theorem|lemma|structure|abbrev)\s+(\S+)")
NAMESPACE = "Q35"


@dataclass(frozen=True)
class Token:
    text: str
    kind: str        # "num" | "ident" | "sym" | "other"
    space: bool      # preceded by whitespace (kept as one space when normalising)
    line: int


def strip_comments(text: str) -> str:
    """Replace `-- ...` and (nested) `/- ... -/` comments, docstrings included, by spaces; newlines are kept."""
    out, i, depth, n = [], 0, 0, len(text)
    while i < n:
        if text.startswith("/-", i):
            depth, i = depth + 1, i + 2
            out.append("  ")
        elif depth and text.startswith("-/", i):
            depth, i = depth - 1, i + 2
            out.append("  ")
        elif not depth and text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(text[i] if (not depth or text[i] == "\n") else " ")
            i += 1
    return "".join(out)


def tokenize(text: str, first_line: int = 1) -> list[Token]:
    """Tokens of comment-free Lean text (identifiers keep their dotted parts: `List.length`, `xs.length`)."""
    tokens, line, space = [], first_line, True
    for m in TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "ws":
            line += m.group().count("\n")
            space = True
            continue
        tokens.append(Token(m.group(), kind, space, line))
        space = False
    return tokens


def normalise(tokens: list[Token]) -> str:
    """One line: the tokens, a single space wherever the source had any whitespace."""
    return "".join((" " if t.space and i else "") + t.text for i, t in enumerate(tokens))


def _split_top(tokens: list[Token], stops: set[str]) -> int:
    """Index of the first token in `stops` outside brackets (len(tokens) if none)."""
    depth = 0
    for i, t in enumerate(tokens):
        if t.text in "([{⟨":
            depth += 1
        elif t.text in ")]}⟩":
            depth -= 1
        elif depth == 0 and t.text in stops:
            return i
    return len(tokens)


@dataclass
class Decl:
    """One top-level declaration of lean/Q35/*.lean."""
    kind: str                 # "def" | "theorem" | "structure"
    name: str
    path: Path
    line: int
    tokens: list[Token]       # the whole declaration after its name, comments removed
    doc: str = ""
    uses: set[str] = field(default_factory=set)   # project declarations named in `statement_tokens`

    @property
    def statement_tokens(self) -> list[Token]:
        """A theorem's binders and type (up to `:=` or its first match arm); a definition's whole text."""
        if self.kind != "theorem":
            return self.tokens
        return self.tokens[:_split_top(self.tokens, {":=", "|"})]

    @property
    def proof_tokens(self) -> list[Token]:
        return self.tokens[len(self.statement_tokens):]

    @property
    def text(self) -> str:
        return f"{self.kind} {self.name} {normalise(self.statement_tokens)}"


def _declarations(path: Path) -> list[Decl]:
    raw = path.read_text(encoding="utf-8")
    lines = strip_comments(raw).splitlines()
    docs = _docstrings(raw)
    starts = [(i, m) for i, line in enumerate(lines) if (m := DECL_RE.match(line))]
    out = []
    for i, m in starts:
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t|"):
            end += 1
        body = "\n".join(lines[i:end])[m.end():]
        kind = {"lemma": "theorem", "abbrev": "def"}.get(m.group(1), m.group(1))
        out.append(Decl(kind, m.group(2).split(".")[-1], path, i + 1, tokenize(body, i + 1), docs.get(i, "")))
    return out


def _docstrings(raw: str) -> dict[int, str]:
    """Docstring text keyed by the 0-based line of the declaration that follows it."""
    out = {}
    for m in re.finditer(r"/--(.*?)-/\s*\n", raw, re.DOTALL):
        out[raw.count("\n", 0, m.end())] = " ".join(m.group(1).split())
    return out


class LeanProject:
    """Every declaration of a lean/ folder, with dependency closure and pins."""

    def __init__(self, lean_dir: Path = LEAN_DIR):
        self.lean_dir = Path(lean_dir)
        self.decls: dict[str, Decl] = {}
        for path in self.files:
            for d in _declarations(path):
                if d.name in self.decls:
                    raise ValueError(f"{d.name} declared twice ({self.decls[d.name].path}, {path})")
                self.decls[d.name] = d
        for d in self.decls.values():
            d.uses = {n for t in d.statement_tokens if t.kind == "ident" and (n := self.resolve(t.text))}
            d.uses.discard(d.name)

    @cached_property
    def files(self) -> list[Path]:
        return sorted(p for p in self.lean_dir.rglob("*.lean") if ".lake" not in p.parts)

    def resolve(self, ident: str) -> str | None:
        """The project declaration an identifier names (`Q35.code4`, `code4`), else None."""
        parts = ident.split(".")
        if parts[0] == NAMESPACE:
            parts = parts[1:]
        return parts[0] if parts and parts[0] in self.decls and len(parts) == 1 else None

    def of_kind(self, kind: str) -> dict[str, Decl]:
        return {n: d for n, d in self.decls.items() if d.kind == kind}

    @property
    def theorems(self) -> dict[str, Decl]:
        return self.of_kind("theorem")

    def closure(self, name: str) -> list[str]:
        """Project definitions and structures `name`'s statement uses, transitively (sorted, name excluded)."""
        seen, todo = set(), list(self.decls[name].uses)
        while todo:
            n = todo.pop()
            if n not in seen and self.decls[n].kind != "theorem":
                seen.add(n)
                todo.extend(self.decls[n].uses)
        return sorted(seen)

    def pin_text(self, name: str) -> str:
        """What a pin covers: the declaration's statement and the text of every definition it uses."""
        return "\n".join([self.decls[name].text] + [self.decls[n].text for n in self.closure(name)])

    def pin(self, name: str) -> str:
        return hashlib.sha256(self.pin_text(name).encode("utf-8")).hexdigest()[:16]
