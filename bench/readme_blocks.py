"""Regenerate the documentation blocks computed from code alone (`python -m bench.readme_blocks`): today the q35
size tables of docs/format.md. A block sits between `<!-- NAME:start -->` and `<!-- NAME:end -->` (rewritten by
bench.report.readme); tests/benchmarks/test_readme.py fails when a block differs from what the code computes now,
so the documented sizes cannot drift from the code. Blocks measured by a run (tables, projection) are rewritten by
that run's --update-docs. Running this twice leaves the pages unchanged."""
from __future__ import annotations

import sys

from q35 import format as qfmt

from bench.report import PAGES, README, markdown_table, page_of, replace_block

__all__ = ["README", "PAGES", "page_of", "format_block", "BLOCKS", "main"]

_HEADERS = ["matrix [N, K]", "scale format", "group size", "permuted", "payload bytes", "grid bytes", "perm bytes",
            "all-in bits/weight"]


def _row(n: int, k: int, g: int | None, scale_format: str, permuted: bool) -> list[str]:
    b = qfmt.encoded_nbytes(n, k, g, scale_format, permuted)
    grid = b["scales"] + b["zeros"] if scale_format == "f16" else b["row_scales"] + b["group_codes"]
    default = " (default)" if g == qfmt.DEFAULT_GROUP_SIZE and scale_format == "f16" else ""
    return [f"[{n}, {k}]", scale_format, f"{g or 'row'}{default}", "yes" if permuted else "no", f"{b['payload']:,}",
            f"{grid:,}", f"{b['perm']:,}", f"{qfmt.all_in_bits_per_weight(k, g, scale_format, n, permuted):.4f}"]


def format_block() -> str:
    """Stored sizes of a few matrices in each mode (SPEC §4, §8), from `q35.format.encoded_nbytes`."""
    cases = [(4096, 4096, qfmt.DEFAULT_GROUP_SIZE, "f16", False), (4096, 4096, 256, "f16", False),
             (4096, 4096, None, "f16", False), (576, 576, qfmt.DEFAULT_GROUP_SIZE, "f16", False),
             (11008, 4096, qfmt.DEFAULT_GROUP_SIZE, "f16", False),
             (4096, 4096, 128, "compact", False), (4096, 4096, 224, "compact", False),
             (4096, 4096, 224, "compact", True), (576, 576, 224, "compact", True), (1536, 576, 224, "compact", True),
             (576, 1536, 224, "compact", True)]
    return markdown_table(_HEADERS, [_row(*c) for c in cases])


BLOCKS = {"format": format_block}


def main() -> int:
    for name, make in BLOCKS.items():
        page = page_of(name)
        old = page.read_text()
        new = replace_block(old, name, make())
        if new != old:
            page.write_text(new)
            print(f"{page.relative_to(page.parents[1])}: rewrote block {name!r}")
        else:
            print(f"{page.relative_to(page.parents[1])}: block {name!r} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
