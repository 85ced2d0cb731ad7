"""The compiled Fortran kernels (`q35._q35f`, built by meson-python with f2py when the wheel is built): loading them,
refusing a build this CPU cannot run, the one table of the kernels' status codes, and the kernels' thread count.

Importing this module loads the extension; `import q35` does not (q35/__init__.py imports the fast path on first
use), so the format and the reference work where the extension is missing.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

from .. import format as fmt
from ..format.integers import check_positive_int

# Developer hook: the run-time-checked build (-fcheck=all, tests/fortran_build.py) is loaded from this path.
EXTENSION_ENV = "Q35_KERNEL_EXTENSION"


def _cpu_flags() -> set[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None                         # not Linux: trust the build
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def _check_cpu() -> None:
    """Refuse, with one clear line, a wheel built for instructions this CPU lacks (instead of SIGILL later)."""
    try:
        from .. import _build_info          # written by the build, beside the extension
    except ImportError:
        return                              # no build here: loading the extension says so
    flags = _cpu_flags()
    missing = sorted(set(_build_info.REQUIRED_CPU_FLAGS) - flags) if flags is not None else []
    if missing:
        raise ImportError(f"q35's kernels were built for {_build_info.CPU_BASELINE} but this CPU lacks "
                          f"{', '.join(missing)}: reinstall with `pip install q35 --no-binary q35 "
                          "-Csetup-args=-Dcpu_baseline=generic` (q35.reference and q35.format work without them)")


def _load():
    path = os.environ.get(EXTENSION_ENV)
    if path:
        spec = importlib.util.spec_from_file_location("_q35f", path)
        if spec is None:
            raise ImportError(f"{EXTENSION_ENV}={path} is not a loadable extension module")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    _check_cpu()
    try:
        return importlib.import_module("q35._q35f")
    except ImportError as exc:
        raise ImportError(f"q35's compiled kernels (q35._q35f) are not available ({exc}); reinstall q35 with a "
                          "Fortran compiler (`pip install q35`, or `make setup` in a checkout); q35.reference and "
                          "q35.format work without them") from None


class _Routines:
    """The wrapped routines of every Fortran module (q35_kernels, q35_matmul, q35_gptq, ...), under one namespace."""

    def __init__(self, mod):
        for module in (getattr(mod, m) for m in dir(mod) if m.startswith("q35_")):
            for name in dir(module):
                if name.startswith("q35_"):
                    setattr(self, name, getattr(module, name))


_module = _load()
ext = _Routines(_module)
LOADED_FROM = _module.__file__      # which build is running (the tests check the fcheck run uses its variant)

_CONSTANT_NAMES = ["LO4", "HI4", "LO3", "HI3", "PAIR_BITS", "PAIRS_PER_BLOCK", "BLOCK_BYTES", "WEIGHTS_PER_BLOCK"]


def kernel_constants() -> dict[str, int]:
    """The format constants compiled into the Fortran kernels."""
    return dict(zip(_CONSTANT_NAMES, (int(v) for v in ext.q35_constants())))


_mismatch = {n: v for n, v in kernel_constants().items() if getattr(fmt, n) != v}
if _mismatch:  # a kernel built from other sources than the format describes: refuse to run it
    raise ImportError(f"Fortran kernel constants disagree with q35.format: {_mismatch}")


# The status codes every wrapped routine returns in `info`, by their names in fortran/q35_core.f90: the exception
# type and the message the caller sees. Codes 1 and 2 from a quantizer mean Python's validation let something
# through (a q35 bug); 2 from a matmul is non-finite x, which only the kernel's pass over x sees.
STATUS = {
    "status_bad_sizes": (1, RuntimeError, "inconsistent sizes reached the kernel (validation bug)"),
    "status_bad_value": (2, ValueError, "x or the weights contain NaN/Inf or an out-of-range value"),
    "status_not_positive_definite": (3, ValueError, "hessian: not positive definite after damping; raise damp"),
    "status_propagation_overflow": (4, ValueError, "hessian: error propagation overflowed (the Hessian is too "
                                                   "ill-conditioned); raise damp"),
    "status_big_endian": (5, RuntimeError, "this processor does not store integers little-endian, which the A8 "
                                           "kernel assumes; use activations='float'"),
}
_BY_CODE = {code: (kind, message) for code, kind, message in STATUS.values()}
_compiled = {name: int(getattr(_module.q35_core, name)) for name in STATUS}
if _compiled != {name: entry[0] for name, entry in STATUS.items()}:
    raise ImportError(f"Fortran status codes disagree with q35.fast.extension.STATUS: {_compiled}")


def check_status(info: int, kernel: str) -> None:
    """Turn a kernel's status code into the error the caller sees (nothing for 0)."""
    if info:
        kind, message = _BY_CODE.get(int(info), (RuntimeError, f"unknown status {info}"))
        raise kind(f"{kernel}: {message}")


def default_threads() -> int:
    """The CPUs this process may run on (its affinity mask): every kernel's default thread count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_count(threads: int | None) -> int:
    """A kernel's thread-count argument: `threads` checked, None -> default_threads()."""
    return check_positive_int(threads, "threads", allow_none=True) or default_threads()
