"""The package's layers: the format and the reference work without the compiled extension, layers import only
downwards, the library leaves the caller's process alone (no installs, no thread counts), and q35 0.2's module
names still import, with a warning."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE, REFERENCE = ROOT / "bridge" / "q35", ROOT / "pyref"

WITHOUT_EXTENSION = textwrap.dedent("""
    import sys
    import numpy as np
    import q35, q35.format, q35.reference as R
    assert not hasattr(q35, "_q35f") and "q35.fast" not in sys.modules
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 40)).astype(np.float32)
    codes = R.unpack_codes(R.pack_codes(np.array([[i % 16 if i % 2 == 0 else i % 8 for i in range(40)]])), 40)
    assert codes[0].tolist() == [i % 16 if i % 2 == 0 else i % 8 for i in range(40)]
    for kw in ({}, {"scale_format": "compact", "importance": rng.random(40).astype(np.float32), "permute": True}):
        qt = R.quantize(w, 16, **kw)
        assert qt.nbytes == q35.format.encoded_nbytes(4, 40, 16, qt.scale_format, qt.perm is not None)["total"]
        w_hat = R.dequantize(qt)
        assert np.abs(w_hat - w).max() <= np.abs(w).max() / 3
        assert np.allclose(R.matmul(w[:2], qt), w[:2] @ w_hat.T, rtol=1e-5, atol=1e-5)
    try:
        q35.quantize(w, 16)
    except ImportError as exc:
        message = str(exc)
        assert "q35._q35f" in message and "q35.reference" in message and "\\n" not in message, message
        print("no extension:", message)
    else:
        raise AssertionError("q35.quantize ran without the extension")
""")


def test_format_and_reference_import_and_round_trip_without_the_extension(tmp_path):
    """A copy of the package with no compiled extension (as on a CPU the wheel cannot run): q35.format and
    q35.reference import and pass the reference's round trips; the fast path fails with one line saying what is
    missing. Python runs with -S so that no editable-install hook can supply the real package."""
    pkg = tmp_path / "q35"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.in", "*.so"))
    shutil.copytree(REFERENCE, pkg / "reference", ignore=shutil.ignore_patterns("__pycache__"))
    numpy_dir = str(Path(__import__("numpy").__file__).resolve().parents[1])
    script = f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {numpy_dir!r}]\n" + WITHOUT_EXTENSION
    r = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                       env={k: v for k, v in os.environ.items() if k != "Q35_KERNEL_EXTENSION"})
    assert r.returncode == 0 and "no extension: " in r.stdout, r.stdout + r.stderr[-3000:]


def _imports(path: Path) -> set[str]:
    """Absolute module names a source file imports (relative imports resolved against its package)."""
    rel = path.relative_to(PACKAGE.parent) if PACKAGE in path.parents else Path("q35/reference") / path.relative_to(
        REFERENCE)
    package = list(rel.parent.parts)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _sources(*roots: Path):
    for root in roots:
        yield from sorted(root.rglob("*.py"))


# Each layer, and what it must not import: lower layers never reach up.
FORBIDDEN = {
    "format": ("torch", "transformers", "q35.fast", "q35.torch", "q35.eval", "q35.reference", "q35._q35f", "bench"),
    "reference": ("torch", "transformers", "q35.fast", "q35.torch", "q35.eval", "q35._q35f", "bench"),
    "fast": ("torch", "transformers", "q35.torch", "q35.eval", "q35.reference", "bench"),
    "torch": ("q35.cli", "bench"),     # torch may use q35.eval: calibration cuts windows as evaluation does
    "eval": ("q35.torch", "q35.cli", "bench"),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer):
    root = REFERENCE if layer == "reference" else PACKAGE / layer
    bad = []
    for f in _sources(root):
        for name in _imports(f):
            if any(name == b.rstrip(".") or name.startswith(b if b.endswith(".") else b + ".")
                   for b in FORBIDDEN[layer]):
                bad.append(f"{f.relative_to(ROOT)} imports {name}")
    assert not bad, bad


def test_no_module_of_the_package_imports_bench():
    bad = [f"{f.relative_to(ROOT)}: {n}" for f in _sources(PACKAGE, REFERENCE) for n in _imports(f)
           if n == "bench" or n.startswith("bench.")]
    assert not bad, bad


def _calls(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            names.append(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
            if isinstance(f, ast.Attribute) and f.attr == "run" and node.args:
                names += [getattr(e, "value", "") for e in getattr(node.args[0], "elts", []) if
                          isinstance(getattr(e, "value", None), str)]
    return names


def test_the_library_leaves_the_callers_process_alone():
    """No thread-count changes (torch.set_num_threads & co.) and no package installs anywhere in the package: those
    are the caller's decisions. Downloads are `pip download` archives (q35.fetch), never `pip install`."""
    bad = []
    for f in _sources(PACKAGE, REFERENCE):
        calls = _calls(f)
        for forbidden in ("set_num_threads", "set_num_interop_threads", "run_pip", "install"):
            if forbidden in calls:
                bad.append(f"{f.relative_to(ROOT)} calls {forbidden}")
    assert not bad, bad


def test_the_leave_alone_check_can_fail(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("import torch\ntorch.set_num_threads(2)\nimport subprocess\nsubprocess.run(['pip', 'install', 'x'])\n")
    assert {"set_num_threads", "install"} <= set(_calls(f))


@pytest.mark.parametrize("old,new,name", [("nn", "q35.torch.layer", "Q35Linear"), ("kernels", "q35.fast.gemm",
                                          "matmul_kernel"), ("validate", "q35.format.checks", "check_qtensor"),
                                          ("hessian", "q35.format.gptq_inputs", "prepare_gptq"),
                                          ("perplexity", "q35.eval.perplexity", "evaluate")])
def test_old_module_names_are_aliases_with_a_warning(old, new, name):
    import importlib

    sys.modules.pop(f"q35.{old}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module(f"q35.{old}")
    assert getattr(mod, name) is getattr(importlib.import_module(new), name)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught), caught


def test_unknown_names_are_not_aliased():
    import q35

    with pytest.raises(ModuleNotFoundError):
        __import__("q35.no_such_module")
    with pytest.raises(AttributeError):
        q35.no_such_name  # noqa: B018


def test_one_qtensor_constructor():
    """QTensor(...) is called in one place, QTensor.from_stored; everything else assembles through it."""
    bad = []
    for f in _sources(PACKAGE, REFERENCE):
        for node in ast.walk(ast.parse(f.read_text())):
            called = getattr(node.func, "id", None) or getattr(node.func, "attr", None) if isinstance(node, ast.Call) \
                else None
            if called == "QTensor" and f.name != "qtensor.py":
                bad.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not bad, bad

