"""Build the Fortran kernels into an f2py extension (numpy.f2py, meson backend).

`python -m bridge.build` builds the release variant; with Q35_FCHECK=1 the run-time-checked variant
(`-fcheck=all`); `--lint` compiles the sources alone with `-Wall -Wextra -std=f2018 -pedantic -Werror`.
Each variant lives in bridge/_ext/<variant>/ with a stamp of the sources and flags it was built from, so
`import bridge` rebuilds only when something changed.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORTRAN = ROOT / "fortran"
SOURCES = [FORTRAN / "q35_core.f90", FORTRAN / "q35_kernels.f90", FORTRAN / "q35_matmul.f90"]  # dependency order
F2CMAP = FORTRAN / ".f2py_f2cmap"
MODULE = "_q35f"
WRAPPED = ["q35_constants", "q35_quantize", "q35_quantize_compact", "q35_pack", "q35_unpack", "q35_dequantize", "q35_gemv", "q35_gemm"]
# -ffp-contract=off: no fused multiply-add, so quantization is bit-identical to the binary64 reference.
VARIANTS = {
    "release": "-O3 -march=native -funroll-loops -ffp-contract=off",
    "fcheck": "-O0 -g -fcheck=all -ffp-contract=off -fno-fast-math",
}
LINT_FLAGS = ["-Wall", "-Wextra", "-std=f2018", "-pedantic", "-Werror", "-fsyntax-only"]
INSTALL_HINT = "install it with: sudo apt-get install -y gfortran   (or run `make setup`)"


class BuildError(RuntimeError):
    pass


def variant() -> str:
    return "fcheck" if os.environ.get("Q35_FCHECK") == "1" else "release"


def ext_dir(name: str | None = None) -> Path:
    return ROOT / "bridge" / "_ext" / (name or variant())


def _fingerprint(name: str) -> str:
    h = hashlib.sha256(VARIANTS[name].encode())
    for src in SOURCES + [F2CMAP]:
        h.update(src.read_bytes())
    return h.hexdigest()


def is_current(name: str | None = None) -> bool:
    name = name or variant()
    stamp = ext_dir(name) / "STAMP"
    return stamp.exists() and stamp.read_text().strip() == _fingerprint(name) and any(ext_dir(name).glob(f"{MODULE}*.so"))


def _require_gfortran() -> str:
    fc = shutil.which(os.environ.get("FC", "gfortran"))
    if not fc:
        raise BuildError(f"no Fortran compiler found (gfortran): {INSTALL_HINT}")
    return fc


def build(name: str | None = None, quiet: bool = True) -> Path:
    """Compile one variant; returns its folder. Raises BuildError with the compiler output on failure."""
    name = name or variant()
    _require_gfortran()
    out = ext_dir(name)
    with tempfile.TemporaryDirectory(prefix="q35-f2py-") as tmp:
        cmd = [sys.executable, "-m", "numpy.f2py", "-c", "--backend", "meson", "--f2cmap", str(F2CMAP),
               "-m", MODULE, *map(str, SOURCES), "only:", *WRAPPED, ":"]
        env = dict(os.environ, FFLAGS=VARIANTS[name])
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        built = list(Path(tmp).glob(f"{MODULE}*.so"))
        if proc.returncode != 0 or not built:
            raise BuildError(f"f2py build of the {name} kernels failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        shutil.copy2(built[0], out / built[0].name)
    (out / "STAMP").write_text(_fingerprint(name) + "\n")
    if not quiet:
        print(f"built {name} kernels ({VARIANTS[name]}) -> {out.relative_to(ROOT)}")
    return out


def lint() -> None:
    """The sources must compile cleanly as standard Fortran 2018 with every warning an error."""
    fc = _require_gfortran()
    with tempfile.TemporaryDirectory(prefix="q35-lint-") as tmp:
        proc = subprocess.run([fc, *LINT_FLAGS, "-J", tmp, *map(str, SOURCES)], capture_output=True, text=True)
    if proc.returncode != 0 or proc.stderr.strip():
        raise BuildError(f"gfortran {' '.join(LINT_FLAGS)} is not clean:\n{proc.stderr}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lint", action="store_true", help="check the sources with -Wall -std=f2018 -Werror")
    p.add_argument("--force", action="store_true", help="rebuild even if the stamp is current")
    a = p.parse_args(argv)
    try:
        if a.lint:
            lint()
            print(f"fortran lint clean: gfortran {' '.join(LINT_FLAGS)}")
        elif a.force or not is_current():
            build(quiet=False)
        else:
            print(f"{variant()} kernels up to date in {ext_dir().relative_to(ROOT)}")
    except BuildError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
