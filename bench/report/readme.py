"""Generated blocks of README.md: text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` is rewritten by
the command that computes it (tests/test_readme.py checks the blocks computed from code alone)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["README", "markers", "replace_block", "rewrite_readme"]

README = Path(__file__).resolve().parents[2] / "README.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(text: str, name: str, body: str, append: bool = False) -> str:
    """``text`` with the block ``name`` replaced by ``body`` (surrounding whitespace stripped). A missing block
    is appended at the end when ``append``, else an error; unbalanced or repeated markers are an error."""
    start, end = markers(name)
    s, e = text.find(start), text.find(end)
    if (s < 0) != (e < 0) or (s >= 0 and e < s) or text.count(start) > 1 or text.count(end) > 1:
        raise ValueError(f"README block {name!r}: markers are unbalanced or repeated")
    block = f"{start}\n{body.strip()}\n{end}"
    if s < 0:
        if not append:
            raise ValueError(f"README has no block {name!r} ({start} ... {end})")
        sep = "" if text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + block + "\n"
    return text[:s] + block + text[e + len(end):]


def rewrite_readme(name: str, body: str, path: Path = README, append: bool = False) -> None:
    path.write_text(replace_block(path.read_text(), name, body, append))
