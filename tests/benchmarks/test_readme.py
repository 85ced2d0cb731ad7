"""README numbers are produced by code: every generated block equals what the code computes now."""
import re

from bench import readme_blocks


def test_generated_blocks_are_current():
    text = readme_blocks.README.read_text()
    for name, make in readme_blocks.BLOCKS.items():
        m = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", text, re.S)
        assert m, f"README.md lacks the {name} block"
        assert m.group(1) == make(), f"README block {name} is stale: run python -m bench.readme_blocks"


def test_readme_names_the_two_commands():
    text = readme_blocks.README.read_text()
    assert "make verify" in text and "make tables" in text
