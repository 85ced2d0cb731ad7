"""Regenerate the code-computed blocks of README.md (`python -m bench.readme_blocks`).

A block sits between `<!-- NAME:start -->` and `<!-- NAME:end -->`; tests/test_readme.py fails when a block
differs from what the code computes now, so README numbers cannot drift from the code.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from q35 import format as qfmt

README = Path(__file__).resolve().parent.parent / "README.md"


def format_block() -> str:
    rows = ["| matrix [N, K] | group size | payload bytes | scale+zero bytes | all-in bits/weight |",
            "|---|---|---|---|---|"]
    for n, k, g in [(4096, 4096, qfmt.DEFAULT_GROUP_SIZE), (4096, 4096, 256), (4096, 4096, None),
                    (576, 576, qfmt.DEFAULT_GROUP_SIZE), (11008, 4096, qfmt.DEFAULT_GROUP_SIZE)]:
        b = qfmt.encoded_nbytes(n, k, g)
        rows.append(f"| [{n}, {k}] | {g or 'row'}{' (default)' if g == qfmt.DEFAULT_GROUP_SIZE else ''} | "
                    f"{b['payload']:,} | {b['scales'] + b['zeros']:,} | {qfmt.all_in_bits_per_weight(k, g):.4f} |")
    return "\n".join(rows)


BLOCKS = {"format": format_block}


def render(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise KeyError(f"README.md has no block {name}")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> int:
    text = README.read_text()
    for name, make in BLOCKS.items():
        text = render(text, name, make())
    README.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
