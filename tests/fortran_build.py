"""Developer builds of the Fortran kernels outside the package build (meson.build is the package build).

    python tests/fortran_build.py --lint     # gfortran -Wall -Wextra -std=f2018 -pedantic -Werror -fsyntax-only
    python tests/fortran_build.py --fcheck   # the run-time-checked variant (-O0 -fcheck=all); prints its path

The fcheck variant is cached in .cache/fcheck/ under a stamp of its sources and flags; `make test` loads it through
q35.fast.extension's developer hook (Q35_KERNEL_EXTENSION) and reruns the equivalence suite on it. Sources and the list of
wrapped routines are read from meson.build, so both builds compile the same thing.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESON = ROOT / "meson.build"
F2CMAP = ROOT / "fortran" / ".f2py_f2cmap"
MODULE = "_q35f"
FCHECK_FLAGS = "-O0 -g -fcheck=all -ffp-contract=off -fno-fast-math"
LINT_FLAGS = ["-Wall", "-Wextra", "-std=f2018", "-pedantic", "-Werror", "-fsyntax-only"]
INSTALL_HINT = "install it with: sudo apt-get install -y gfortran   (or run `make setup`)"


class BuildError(RuntimeError):
    pass


def _meson_list(name: str) -> list[str]:
    m = re.search(rf"^{name} = (?:files\()?\[?(.*?)[\])]", MESON.read_text(), re.S | re.M)
    if not m:
        raise BuildError(f"meson.build has no list {name!r}")
    return re.findall(r"'([^']+)'", m.group(1))


def sources() -> list[Path]:
    """The Fortran sources in dependency order, as meson.build compiles them."""
    return [ROOT / s for s in _meson_list("fortran_sources")]


def wrapped() -> list[str]:
    """The routines the package's extension exposes to Python."""
    return _meson_list("wrapped")


def _require_gfortran() -> str:
    fc = shutil.which(os.environ.get("FC", "gfortran"))
    if not fc:
        raise BuildError(f"no Fortran compiler found (gfortran): {INSTALL_HINT}")
    return fc


def lint() -> None:
    """The sources must compile cleanly as standard Fortran 2018 with every warning an error."""
    fc = _require_gfortran()
    with tempfile.TemporaryDirectory(prefix="q35-lint-") as tmp:
        proc = subprocess.run([fc, *LINT_FLAGS, "-J", tmp, *map(str, sources())], capture_output=True, text=True)
    if proc.returncode != 0 or proc.stderr.strip():
        raise BuildError(f"gfortran {' '.join(LINT_FLAGS)} is not clean:\n{proc.stderr}")


def _fingerprint() -> str:
    h = hashlib.sha256(FCHECK_FLAGS.encode())
    for src in sources() + [F2CMAP]:
        h.update(src.read_bytes())
    h.update(" ".join(wrapped()).encode())
    return h.hexdigest()


def build_fcheck(out: Path = ROOT / ".cache" / "fcheck") -> Path:
    """Compile the -fcheck=all variant (or reuse a current one); returns the extension's path."""
    stamp = out / "STAMP"
    built = sorted(out.glob(f"{MODULE}*.so"))
    if built and stamp.is_file() and stamp.read_text().strip() == _fingerprint():
        return built[0]
    _require_gfortran()
    with tempfile.TemporaryDirectory(prefix="q35-f2py-") as tmp:
        cmd = [sys.executable, "-m", "numpy.f2py", "-c", "--backend", "meson", "--f2cmap", str(F2CMAP),
               "-m", MODULE, *map(str, sources()), "only:", *wrapped(), ":"]
        proc = subprocess.run(cmd, cwd=tmp, env=dict(os.environ, FFLAGS=FCHECK_FLAGS), capture_output=True,
                              text=True)
        so = list(Path(tmp).glob(f"{MODULE}*.so"))
        if proc.returncode != 0 or not so:
            raise BuildError(f"f2py build of the fcheck kernels failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        shutil.copy2(so[0], out / so[0].name)
    stamp.write_text(_fingerprint() + "\n")
    return out / so[0].name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--lint", action="store_true", help="check the sources with -Wall -std=f2018 -Werror")
    g.add_argument("--fcheck", action="store_true", help="build the -fcheck=all variant and print its path")
    a = p.parse_args(argv)
    try:
        if a.lint:
            lint()
            print(f"fortran lint clean: gfortran {' '.join(LINT_FLAGS)}", file=sys.stderr)
        else:
            print(build_fcheck())
    except BuildError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
