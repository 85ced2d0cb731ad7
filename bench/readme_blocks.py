"""Regenerate the README blocks computed from code alone (`python -m bench.readme_blocks`): today the q35 size
table. A block sits between `<!-- NAME:start -->` and `<!-- NAME:end -->` (rewritten by bench.report.readme);
tests/test_readme.py fails when a block differs from what the code computes now, so README numbers cannot drift
from the code. Blocks measured by a run (tables, projection) are rewritten by that run's --update-readme."""
from __future__ import annotations

import sys

from q35 import format as qfmt

from bench.report import README, markdown_table, replace_block

__all__ = ["README", "format_block", "BLOCKS", "main"]


def format_block() -> str:
    rows = []
    for n, k, g in [(4096, 4096, qfmt.DEFAULT_GROUP_SIZE), (4096, 4096, 256), (4096, 4096, None),
                    (576, 576, qfmt.DEFAULT_GROUP_SIZE), (11008, 4096, qfmt.DEFAULT_GROUP_SIZE)]:
        b = qfmt.encoded_nbytes(n, k, g)
        rows.append([f"[{n}, {k}]", f"{g or 'row'}{' (default)' if g == qfmt.DEFAULT_GROUP_SIZE else ''}",
                     f"{b['payload']:,}", f"{b['scales'] + b['zeros']:,}", f"{qfmt.all_in_bits_per_weight(k, g):.4f}"])
    return markdown_table(["matrix [N, K]", "group size", "payload bytes", "scale+zero bytes", "all-in bits/weight"],
                          rows)


BLOCKS = {"format": format_block}


def main() -> int:
    text = README.read_text()
    for name, make in BLOCKS.items():
        text = replace_block(text, name, make())
    README.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
