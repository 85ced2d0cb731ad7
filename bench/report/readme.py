"""Generated blocks of the documentation pages: text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` is
rewritten by the command that computes it, never by hand. Each block lives in one page of docs/ (:data:`PAGES`):
``tables`` (written by `make tables ARGS=--update-docs`), ``projection`` (`python -m bench.projection --all
--update-docs`) and ``format`` (`python -m bench.readme_blocks`; tests/benchmarks/test_readme.py checks that it
equals what the code computes now)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "README", "DOCS", "PAGES", "page_of", "markers", "replace_block", "rewrite_block",
           "rewrite_readme"]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# block name -> the page that holds it
PAGES: dict[str, Path] = {
    "tables": DOCS / "quality.md",
    "projection": DOCS / "projection.md",
    "format": DOCS / "format.md",
}


def page_of(name: str) -> Path:
    """The docs page that holds block ``name``."""
    try:
        return PAGES[name]
    except KeyError:
        raise KeyError(f"no docs page holds a block {name!r} (known: {', '.join(PAGES)})") from None


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(text: str, name: str, body: str, append: bool = False) -> str:
    """``text`` with the block ``name`` replaced by ``body`` (surrounding whitespace stripped). A missing block
    is appended at the end when ``append``, else an error; unbalanced or repeated markers are an error."""
    start, end = markers(name)
    s, e = text.find(start), text.find(end)
    if (s < 0) != (e < 0) or (s >= 0 and e < s) or text.count(start) > 1 or text.count(end) > 1:
        raise ValueError(f"block {name!r}: markers are unbalanced or repeated")
    block = f"{start}\n{body.strip()}\n{end}"
    if s < 0:
        if not append:
            raise ValueError(f"the page has no block {name!r} ({start} ... {end})")
        sep = "" if text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + block + "\n"
    return text[:s] + block + text[e + len(end):]


def rewrite_block(name: str, body: str, path: Path | None = None, append: bool = False) -> Path:
    """Rewrite block ``name`` in ``path`` (default: its docs page); the file is written only when it changes.
    Returns the path."""
    path = page_of(name) if path is None else Path(path)
    old = path.read_text()
    new = replace_block(old, name, body, append)
    if new != old:
        path.write_text(new)
    return path


def rewrite_readme(name: str, body: str, path: Path | None = None, append: bool = False) -> Path:
    """Former name of :func:`rewrite_block` (the blocks lived in README.md until they moved to docs/)."""
    return rewrite_block(name, body, path, append)
