"""The tie of the code mirrors to the reviewed Lean text: a test marked `@mirrors(...)` (test_mirror_common.py)
fails while a declaration it names, or a definition that declaration's text uses, differs from
tests/formal/lean_pins.json."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def lean_pin_guard(request):
    """Fail a code mirror whose Lean declarations (or a definition they use) changed since it was reviewed."""
    fn = request.function
    inner = getattr(getattr(fn, "hypothesis", None), "inner_test", None)
    names = getattr(fn, "_lean_mirrors", ()) + getattr(inner, "_lean_mirrors", ())
    if names:
        from test_mirror_common import fail_if_stale
        fail_if_stale(names)
