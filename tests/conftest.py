"""Hypothesis profiles and the equivalence-suite example counter.

`ci` (default under `make verify`): enough examples that the equivalence suite runs >= 10,000 in total;
`dev`: a quick pass. Select with HYPOTHESIS_PROFILE. The counter prints how many examples the equivalence
suite checked and fails the session under `ci` if that is below the promised minimum.
"""
from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               print_blob=True)
settings.register_profile("ci", max_examples=2500, **_COMMON)
settings.register_profile("dev", max_examples=60, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(PROFILE)

MIN_EQUIVALENCE_EXAMPLES = 10_000
EQUIVALENCE = {"examples": 0, "mismatches": 0}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    ext = os.environ.get("Q35_KERNEL_EXTENSION")
    if ext:
        import q35
        assert os.path.samefile(q35.fast.extension.LOADED_FROM, ext), (q35.fast.extension.LOADED_FROM, ext)
        terminalreporter.write_line(f"kernels loaded from {ext}")
    for module in ("test_fuzz_files", "test_fuzz_qtensor"):
        counts = getattr(sys.modules.get(module), "FUZZ_COUNTS", None)
        for kind, c in (counts or {}).items():
            terminalreporter.write_line(f"fuzz {kind}: {c['inputs']} inputs, {c['clear error']} clear errors, "
                                        f"{c['identical load']} identical loads, {c['other']} other")
    n = EQUIVALENCE["examples"]
    if n:
        terminalreporter.write_line(f"equivalence suite: {n} Hypothesis examples checked Fortran vs pyref, "
                                    f"{EQUIVALENCE['mismatches']} mismatches (profile {PROFILE})")


def pytest_sessionfinish(session, exitstatus):
    # Only a full run of the equivalence module under `ci` promises the minimum count.
    if PROFILE == "ci" and EQUIVALENCE["examples"] and exitstatus == 0 and not session.config.option.keyword \
            and EQUIVALENCE["examples"] < MIN_EQUIVALENCE_EXAMPLES:
        print(f"\nFAIL: the equivalence suite ran {EQUIVALENCE['examples']} examples, "
              f"fewer than {MIN_EQUIVALENCE_EXAMPLES}")
        session.exitstatus = 1
