"""Tables out of result rows: CSV with a provenance line, markdown, LaTeX (every special character escaped)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["write_csv", "read_csv", "markdown_table", "latex_escape", "latex_table"]


# --- CSV ----------------------------------------------------------------------------------------------------
def write_csv(path: Path, rows: Sequence[dict], provenance_line: str) -> None:
    """Rows as CSV under a first line ``# <provenance_line>``. Columns: every key of every row, in first-seen
    order (a row without a column leaves it empty)."""
    if not rows:
        raise ValueError(f"{path}: no rows to write")
    if "\n" in provenance_line:
        raise ValueError("the provenance line must be one line")
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    buf.write(f"# {provenance_line}\n")
    w = csv.DictWriter(buf, fieldnames=fields, restval="", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    Path(path).write_text(buf.getvalue())


def _convert(v: str):
    """A CSV cell back to the value it was written from: int, float, bool, None for empty, else the string."""
    if v == "":
        return None
    if v in ("True", "False"):
        return v == "True"
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def read_csv(path: Path, convert: bool = True) -> tuple[list[dict], str | None]:
    """(rows, provenance line or None) of a CSV written by :func:`write_csv` (or any CSV; leading ``#`` lines
    are the provenance). With ``convert``, cells become int/float/bool/None where they parse."""
    lines = Path(path).read_text().splitlines()
    comments = []
    while lines and lines[0].startswith("#"):
        comments.append(lines.pop(0)[1:].strip())
    rows = list(csv.DictReader(lines))
    if convert:
        rows = [{k: _convert(v) for k, v in r.items()} for r in rows]
    return rows, (" ".join(comments) or None)


# --- markdown -----------------------------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Iterable[Sequence], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one character per column (``l`` or ``r``), default all left."""
    if align is not None and len(align) != len(headers):
        raise ValueError("align needs one character per column")
    rule = [("---:" if a == "r" else "---") for a in (align or "l" * len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# --- LaTeX --------------------------------------------------------------------------------------------------
# The ten characters LaTeX treats specially, plus <, > and | (which the default OT1 font encoding prints as other
# glyphs). One pass over the string, so no replacement is escaped twice.
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_escape(s) -> str:
    """Text that LaTeX prints as written: every special character replaced by its text-mode command."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(s))


def latex_table(headers: Sequence[str], rows: Iterable[Sequence], caption: str, *, label: str | None = None,
                align: str | None = None, longtable: bool = False, comment: str | None = None) -> str:
    """A booktabs table (``longtable`` for tables that span pages); every cell, header and the caption escaped.
    ``align``: one of l/r/c per column (default: left). ``comment``: a ``%`` line on top (e.g. provenance), written as is."""
    align = align or "l" * len(headers)
    if len(align) != len(headers):
        raise ValueError("align needs one character per column")
    head = " & ".join(latex_escape(h) for h in headers) + r" \\"
    body = [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
    cap = rf"\caption{{{latex_escape(caption)}}}" + (rf"\label{{tab:{label}}}" if label else "")
    top = [f"% {' '.join(comment.splitlines())}"] if comment else []      # a comment is not typeset: no escapes
    if longtable:
        return "\n".join([*top, rf"\begin{{longtable}}{{{align}}}", cap + r"\\", r"\toprule", head, r"\midrule",
                          r"\endhead", *body, r"\bottomrule", r"\end{longtable}", ""])
    return "\n".join([*top, r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}",
                      r"\toprule", head, r"\midrule", *body, r"\bottomrule", r"\end{tabular}", cap,
                      r"\end{table}", ""])
