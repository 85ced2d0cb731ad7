"""The wheel a user gets works on its own: built from this checkout, installed into a fresh virtual environment
(no access to the checkout or to this environment's packages) and used from another directory.

It must carry the compiled extension, install exactly one top-level name (`q35`) plus the `q35` console script,
and give the same bits as the pure-Python reference that ships inside it.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ROUND_TRIP = textwrap.dedent("""
    import sys
    import numpy as np
    import q35
    assert "/site-packages/q35/" in q35.__file__, q35.__file__
    rng = np.random.default_rng(7)
    w = rng.standard_normal((5, 70)).astype(np.float32)
    x = rng.standard_normal((3, 70)).astype(np.float32)
    for kw in ({}, {"scale_format": "compact", "importance": rng.random(70).astype(np.float32), "permute": True}):
        fast, ref = q35.quantize(w, 32, **kw), q35.reference.quantize(w, 32, **kw)
        for f in ("packed", "scales", "zeros"):
            assert np.array_equal(getattr(fast, f), getattr(ref, f)), f
        assert np.array_equal(q35.dequantize(fast), q35.reference.dequantize(ref))
        y, y_ref = q35.matmul(x, fast), q35.reference.matmul(x, ref)
        assert np.allclose(y, y_ref, rtol=1e-5, atol=1e-5), np.abs(y - y_ref).max()
    assert "torch" not in sys.modules, "import q35 must not import torch"
    print("round trip ok")
""")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (whl,) = out.glob("q35-*.whl")
    return whl


def test_wheel_has_one_top_level_name_and_the_extension(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"q35", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, top
    assert any(n.startswith("q35/_q35f") and n.endswith(".so") for n in names), "compiled extension missing"
    assert "q35/reference/core.py" in names and "q35/_build_info.py" in names
    assert not any(n.startswith(("bench/", "bridge/", "pyref/")) for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "q35 = q35.cli:main" in entry_points


def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    py, q35_script = env_dir / "bin" / "python", env_dir / "bin" / "q35"
    before = set(_site_packages(py))
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    added = set(_site_packages(py)) - before
    ours = {n for n in added if n == "q35" or n.startswith("q35-")}
    assert {n for n in ours if not n.endswith(".dist-info")} == {"q35"}, ours
    assert not {"bridge", "pyref", "bench"} & added, added
    run = dict(cwd=tmp_path, capture_output=True, text=True)
    r = subprocess.run([str(py), "-c", ROUND_TRIP], **run)
    assert r.returncode == 0 and "round trip ok" in r.stdout, r.stderr[-4000:]
    r = subprocess.run([str(q35_script), "--help"], **run)
    assert r.returncode == 0 and "quantize" in r.stdout, r.stderr
    r = subprocess.run([str(q35_script), "info", "--in-features", "4096", "--group-size", "128"], **run)
    assert r.returncode == 0 and "all-in bits per weight 3.7500" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([str(q35_script), "tables"], **run)      # the tables are `make tables` in a checkout
    assert r.returncode == 2 and "\n  tables " not in r.stdout and "\n  quantize " in r.stdout, r.stdout


def _site_packages(py: Path) -> list[str]:
    out = subprocess.run([str(py), "-c", "import sysconfig, os; p = sysconfig.get_paths()['purelib']; "
                          "print('\\n'.join(os.listdir(p)))"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_every_package_source_is_in_the_wheel(wheel):
    """meson.build installs bridge/q35/ and pyref/ as directories: every module a reader sees is in the wheel, at
    the path its import names, and nothing else of the checkout is."""
    names = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    want = {f"q35/{f.relative_to(ROOT / 'bridge' / 'q35')}" for f in (ROOT / "bridge" / "q35").rglob("*.py")}
    want |= {f"q35/reference/{f.relative_to(ROOT / 'pyref')}" for f in (ROOT / "pyref").rglob("*.py")}
    want.add("q35/_build_info.py")
    assert names == want, (sorted(names - want), sorted(want - names))
