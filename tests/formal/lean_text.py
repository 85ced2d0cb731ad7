"""The text of lean/: its declarations, their normalised text, and which project definitions each one uses.

lean/ is read as the subset of Lean 4 it is written in: at column 0 only `import`, `namespace`, `end` and the
declarations `def`, `theorem` and `structure` (their continuation lines indented or starting with `|`);
anything else at column 0 (`lemma`, `abbrev`, an attribute, `open`, ...) raises ValueError, so no declaration
is ever skipped silently. A declaration's *text* is what the review snapshot (tests/formal/lean_pins.json)
records: its normalised tokens with comments removed and whitespace collapsed; for a theorem only the
statement (binders and type), not the proof.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEAN_DIR = ROOT / "lean"
NAMESPACE = "Q35"

_SYMBOLS = sorted([":=", "=>", "<<<", ">>>", "|||", "&&&", "^^^", "++", "::", "<;>", "≤", "≥", "≠", "→", "←", "↔",
                   "∧", "∨", "¬", "∀", "∃", "∈", "∉", "×", "λ", "·", "⟨", "⟩", "▸", "<", ">", "=", "+", "-", "*",
                   "/", "%", "^", "(", ")", "[", "]", "{", "}", ",", ":", "|", ".", "@", "!", ";", "?", "$", "#",
                   "'", "&", "~", "`", "∣", "∘", "⁻¹"], key=len, reverse=True)
_IDENT = r"[A-Za-z_\u03b1-\u03c9\u0391-\u03a9\u1d00-\u1dbf][\w'!?\u2080-\u2089\u1d62-\u1d6a]*"
TOKEN_RE = re.compile(rf"(?P<ws>\s+)|(?P<num>\d+)|(?P<ident>{_IDENT}(?:\.{_IDENT})*)|(?P<sym>"
                      + "|".join(re.escape(s) for s in _SYMBOLS) + r")|(?P<other>\S)")
DECL_RE = re.compile(r"^(def|theorem|structure)\s+(\S+)")
OTHER_TOP_LEVEL_RE = re.compile(r"^(import|namespace|end)\b")


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
        if m.lastgroup == "ws":
            line += m.group().count("\n")
            space = True
            continue
        tokens.append(Token(m.group(), m.lastgroup, space, line))
        space = False
    return tokens


def normalise(tokens: list[Token]) -> str:
    """One line: the tokens, a single space wherever the source had any whitespace."""
    return "".join((" " if t.space and i else "") + t.text for i, t in enumerate(tokens))


def _proof_start(tokens: list[Token]) -> int | None:
    """Index of a theorem's first `:=` or `|` outside brackets: where its proof starts."""
    depth = 0
    for i, t in enumerate(tokens):
        if t.text in "([{⟨":
            depth += 1
        elif t.text in ")]}⟩":
            depth -= 1
        elif depth == 0 and t.text in (":=", "|"):
            return i
    return None


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
        end = _proof_start(self.tokens)
        if end is None:
            raise ValueError(f"{self.path}:{self.line}: theorem {self.name} without a proof")
        return self.tokens[:end]

    @property
    def text(self) -> str:
        return f"{self.kind} {self.name} {normalise(self.statement_tokens)}"


def read_declarations(path: Path) -> list[Decl]:
    raw = path.read_text(encoding="utf-8")
    lines = strip_comments(raw).splitlines()
    docs = {raw.count("\n", 0, m.end()): " ".join(m.group(1).split())   # keyed by the line after the docstring
            for m in re.finditer(r"/--(.*?)-/\s*\n", raw, re.DOTALL)}
    out = []
    for i, line in enumerate(lines):
        if not line or line[0] in " \t|" or OTHER_TOP_LEVEL_RE.match(line):
            continue
        m = DECL_RE.match(line)
        if not m:
            raise ValueError(f"{path}:{i + 1}: outside the Lean subset read here: {line.strip()[:60]!r}")
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t|"):
            end += 1
        body = "\n".join(lines[i:end])[m.end():]
        out.append(Decl(m.group(1), m.group(2), path, i + 1, tokenize(body, i + 1), docs.get(i, "")))
    return out


class LeanProject:
    """Every declaration of a lean/ folder, with the project declarations each one uses."""

    def __init__(self, lean_dir: Path = LEAN_DIR):
        self.lean_dir = Path(lean_dir)
        self.decls: dict[str, Decl] = {}
        for path in self.files:
            for d in read_declarations(path):
                if d.name in self.decls:
                    raise ValueError(f"{d.name} declared twice ({self.decls[d.name].path}, {path})")
                self.decls[d.name] = d
        for d in self.decls.values():
            d.uses = {n for t in d.statement_tokens if t.kind == "ident" and (n := self.resolve(t.text))} - {d.name}

    @cached_property
    def files(self) -> list[Path]:
        return sorted(p for p in self.lean_dir.rglob("*.lean") if ".lake" not in p.parts)

    def resolve(self, ident: str) -> str | None:
        """The project declaration an identifier names (`Q35.code4`, `code4`), else None."""
        name = ident.removeprefix(NAMESPACE + ".")
        return name if name in self.decls else None

    def of_kind(self, kind: str) -> dict[str, Decl]:
        return {n: d for n, d in self.decls.items() if d.kind == kind}

    @property
    def theorems(self) -> dict[str, Decl]:
        return self.of_kind("theorem")

    def closure(self, name: str) -> list[str]:
        """Project definitions and structures `name`'s text uses, transitively (sorted, name excluded)."""
        seen, todo = set(), list(self.decls[name].uses)
        while todo:
            n = todo.pop()
            if n not in seen and self.decls[n].kind != "theorem":
                seen.add(n)
                todo.extend(self.decls[n].uses)
        return sorted(seen)
