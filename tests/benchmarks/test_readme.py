"""Documented numbers are produced by code: every block computed from code alone (docs/format.md) equals what the
code computes now, and the README points at the pages that hold the generated blocks."""
import re

from bench import readme_blocks
from bench.report import PAGES, README, markers


def test_generated_blocks_are_current():
    for name, make in readme_blocks.BLOCKS.items():
        page = readme_blocks.page_of(name)
        text = page.read_text()
        m = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", text, re.S)
        assert m, f"{page.name} lacks the {name} block"
        assert m.group(1) == make(), f"{page.name} block {name} is stale: run python -m bench.readme_blocks"


def test_every_block_sits_once_in_its_page_and_not_in_the_readme():
    readme = README.read_text()
    for name, page in PAGES.items():
        start, end = markers(name)
        text = page.read_text()
        assert text.count(start) == 1 and text.count(end) == 1, f"{page.name}: block {name} markers"
        assert start not in readme and end not in readme, f"README.md still holds the {name} block"
        assert f"docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make verify" in text and "make tables" in text
