"""The formal layer stays honest: every Lean theorem has a mirror tied to its text, nothing changed since the
reviewed snapshot, no proof step is a placeholder or fragile, and the ties can fail: a weakened copy of lean/
makes its mirrors stale and fails their checks, the census fails on an unmirrored or changed theorem, and two
plausible pyref bugs (`f16_down` for the scale in `group_params`, `code4` rounding half to even) fail the
mirrors, not only the equivalence suite."""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys

import pytest

import lean_census as census
import lean_pins
import q35.reference as pyref
from lean_py import LeanCode
from lean_runtime import LeanEvalError
from lean_text import LEAN_DIR, ROOT, LeanProject

PROJECT = LeanProject()
SNAPSHOT = lean_pins.load_snapshot()
CENSUS, PINS = ROOT / "tests" / "formal" / "lean_census.py", ROOT / "tests" / "formal" / "lean_pins.py"
REQUIRED = ("code4_range", "code3_range", "decode_encode_pair", "encode_decode_pair", "unpack_pack_block",
            "pack_unpack_block", "packed_length_eq", "quant_error_half_step", "clamp_in_range", "fused_group_identity",
            "fused_row_identity", "int32_accumulator_safe", "f16_down_le", "le_f16_up", "f16_down_is_f16",
            "f16_up_is_f16", "f16_down_nearest", "f16_up_nearest", "grid_covers_group", "row_pairs_code_at",
            "pack_row_length", "unpack_pack_row", "unpack_pack_row_padding", "unpack_pack_group_codes",
            "compact_grid_exact", "search_group_le_centred", "unpermute_permute", "matmul_permuted",
            "a8_piece_int32_safe", "a8_kernel_sum_exact", "a8_products_exact", "a8_seq_exact")


def test_lean_project_layout():
    assert (LEAN_DIR / "lakefile.toml").is_file()
    toolchain = (LEAN_DIR / "lean-toolchain").read_text().strip()
    assert re.fullmatch(r"leanprover/lean4:v4\.\d+\.\d+", toolchain), toolchain  # a pinned stable release
    root = (LEAN_DIR / "Q35.lean").read_text()
    modules = {p.stem for p in (LEAN_DIR / "Q35").glob("*.lean")}
    assert modules, "no lean/Q35/*.lean files"
    for m in modules:
        assert f"import Q35.{m}" in root, f"lean/Q35.lean does not import Q35.{m}"
    lakefile = (LEAN_DIR / "lakefile.toml").read_text()
    assert "[[require]]" not in lakefile and "require " not in lakefile  # core Lean only: no dependencies


def test_required_theorems_are_stated():
    missing = [t for t in REQUIRED if t not in PROJECT.theorems]
    assert not missing, f"required theorems missing from lean/: {missing}"


def test_every_declaration_is_read_by_the_evaluator():
    """Every definition compiles to Python and every theorem statement parses (no silently skipped text)."""
    code = LeanCode(PROJECT)
    for t in PROJECT.theorems:
        code.statement(t)
    assert set(code.sigs) == set(PROJECT.of_kind("def"))


def test_census_is_clean():
    """Every theorem is mirrored, those about project functions (and every modelling definition) by a code
    mirror, every mirror test says what it mirrors, nothing changed since the reviewed snapshot, no proof has a
    placeholder, native_decide or `show` step."""
    c = census.take_census(PROJECT)
    assert not c.problems(), "\n".join(c.problems())
    assert not c.unmarked_tests and len(c.code_mirrors) > 100 and set(SNAPSHOT) == set(PROJECT.decls)


def test_census_script_counts_and_banner():
    out = subprocess.run([sys.executable, str(CENSUS), "--skipped-banner"],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()
    assert out == [f"Lean: SKIPPED (no toolchain found) — {len(PROJECT.theorems)} theorems stated, not compiled "
                   "here; checked through CI mirrors only"]
    res = subprocess.run([sys.executable, str(CENSUS)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
    assert f"{len(PROJECT.theorems)} theorems" in res.stdout
    assert "0 mirror tests without @mirrors, 0 declarations changed" in res.stdout
    assert "about project functions" in res.stdout and "definitional/arithmetic" in res.stdout


def test_no_placeholder_or_fragile_proof_steps():
    assert not census.forbidden_hits(PROJECT)
    assert not census.show_steps(PROJECT)
    for path in PROJECT.files:
        assert not re.search(r"^\s*import\s+Mathlib", path.read_text(encoding="utf-8"), re.MULTILINE), path


def test_detectors_can_fire(tmp_path):
    bad = tmp_path / "lean"
    (bad / "Q35").mkdir(parents=True)
    (bad / "Q35" / "X.lean").write_text("theorem t : 1 = 1 := by\n  show 1 = 1\n  " + "sor" + "ry\n"
                                         "theorem u : 2 = 2 := by " + "native" + "_decide\n")
    project = LeanProject(bad)
    assert set(project.theorems) == {"t", "u"}
    assert len(census.forbidden_hits(project)) == 2 and len(census.show_steps(project)) == 1


# --- the weakening demonstration ---------------------------------------------------------------------------
def replace_declaration(text: str, name: str, new: str) -> str:
    """Replace a whole top-level declaration (up to the next one, a docstring or `end`)."""
    pattern = re.compile(rf"^theorem {name}\b.*?(?=^(?:/--|theorem |def |structure |end ))", re.S | re.M)
    assert pattern.search(text), name
    return pattern.sub(new + "\n\n", text, count=1)


MUTATIONS = {
    "quant_error_half_step states 1 = 1": ("Error.lean", lambda t: replace_declaration(
        t, "quant_error_half_step", "theorem quant_error_half_step : 1 = 1 := rfl")),
    "quant_error_even states True": ("Error.lean", lambda t: replace_declaration(
        t, "quant_error_even", "theorem quant_error_even : True := trivial")),
    "code4 rounds half down": ("Codes.lean", lambda t: t.replace(
        "def code4 (w z s : Int) : Int := clamp ((2 * (w - z) + s) / (2 * s)) 0 15",
        "def code4 (w z s : Int) : Int := clamp ((2 * (w - z) + s - 1) / (2 * s)) 0 15")),
}
EXPECTED_STALE = {
    "quant_error_half_step states 1 = 1": {"quant_error_half_step"},
    "quant_error_even states True": {"quant_error_even"},
    "code4 rounds half down": {"code4", "code4_range", "quant_error_even", "quant_error_odd",
                               "quant_error_half_step", "lattice_code_range"},
}


def mutated_copy(tmp_path, mutation: str):
    copy = tmp_path / mutation.replace(" ", "_")
    shutil.copytree(LEAN_DIR, copy, ignore=shutil.ignore_patterns(".lake"))
    file, edit = MUTATIONS[mutation]
    path = copy / "Q35" / file
    text = path.read_text(encoding="utf-8")
    new = edit(text)
    assert new != text, mutation
    path.write_text(new, encoding="utf-8")
    return copy


def mirror_checks_fail(lean: LeanCode) -> list[str]:
    """Run the mirrors' check functions against a LeanCode; return those that fail (as they must on a mutant)."""
    from test_mirror_codes import check_codes_match_lean, grid_points
    from test_mirror_error import check_error_bound_on_pyref
    failed = []
    for name, check in (("codes", lambda: check_codes_match_lean(grid_points(6), lean=lean)),
                        ("error bound", lambda: check_error_bound_on_pyref(grid_points(6), lean=lean))):
        try:
            check()
        except (AssertionError, LeanEvalError):
            failed.append(name)
    return failed


def stale_mirrors(project: LeanProject) -> set[str]:
    """The declarations whose mirrors are stale against the reviewed snapshot."""
    return {d for d in project.decls if lean_pins.stale(project, SNAPSHOT, d)}


def test_weakened_lean_copy_fails_and_the_real_tree_passes(tmp_path):
    """Weaken lean/ in a temporary copy three ways: the mirrors of the affected declarations go stale, the pin
    tool reports the change with a diff and exits 1, and the mirrors' checks fail on the mutant; on the real tree
    nothing is stale and the same checks pass."""
    assert not stale_mirrors(PROJECT) and not lean_pins.changed(PROJECT, SNAPSHOT)
    assert mirror_checks_fail(LeanCode(PROJECT)) == []
    for mutation in MUTATIONS:
        copy = mutated_copy(tmp_path, mutation)
        stale = stale_mirrors(LeanProject(copy))
        assert EXPECTED_STALE[mutation] <= stale, (mutation, stale)
        assert mirror_checks_fail(LeanCode(LeanProject(copy))), f"no mirror check fails on: {mutation}"
        res = subprocess.run([sys.executable, str(PINS), "--lean-dir", str(copy)], capture_output=True, text=True)
        out = res.stdout
        assert res.returncode == 1 and "changed; review its mirrors:\n    test_mirror_" in out and "@@" in out, out[-2000:]
    res = subprocess.run([sys.executable, str(PINS)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_census_fails_on_an_unmirrored_or_changed_theorem_until_repinned(tmp_path):
    """A new theorem without a mirror, and a changed statement, are census problems (and the script exits 1);
    re-pinning (the one command, here into a temporary snapshot) clears the change but not the missing mirror."""
    copy = mutated_copy(tmp_path, "quant_error_even states True")
    error = copy / "Q35" / "Error.lean"
    error.write_text(error.read_text(encoding="utf-8").replace(
        "end Q35", "theorem unmirrored_fact (n : Nat) : n + 0 = n := by\n  omega\n\nend Q35"), encoding="utf-8")
    project = LeanProject(copy)
    problems = census.take_census(project).problems()
    assert "no mirror: unmirrored_fact" in problems
    assert any(p.startswith("changed since the reviewed snapshot") and p.endswith(": quant_error_even")
               for p in problems), problems
    res = subprocess.run([sys.executable, str(CENSUS), "--lean-dir", str(copy)], capture_output=True, text=True)
    assert res.returncode == 1 and "PROBLEM: no mirror: unmirrored_fact" in res.stdout, res.stdout[-2000:]
    repinned = tmp_path / "pins.json"
    lean_pins.repin(project, lean_pins.read_modules(), path=repinned)
    snapshot = lean_pins.load_snapshot(repinned)
    assert not lean_pins.changed(project, snapshot) and set(snapshot) == set(project.decls)
    assert census.take_census(project, snapshot).problems() == ["no mirror: unmirrored_fact"]
    orphan = lean_pins.MirrorModule(tmp_path / "test_mirror_x.py", {"test_x": ("no_such_declaration",)}, ())
    with pytest.raises(SystemExit, match="test_mirror_x.py::test_x mirrors no_such_declaration"):
        lean_pins.repin(project, [orphan], path=repinned)   # a mirror of something removed is fixed by hand


def test_weakened_copy_fails_the_mirror_suite(tmp_path):
    """The pytest mirrors themselves, pointed at a mutant copy (Q35_LEAN_DIR), fail; on the real tree they pass."""
    copy = mutated_copy(tmp_path, "quant_error_even states True")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "formal" /
            "test_mirror_error.py"), "-k", "quant_error and not fortran and not vs_lean"]
    env = {**os.environ, "HYPOTHESIS_PROFILE": "dev"}
    real = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    assert real.returncode == 0, real.stdout[-3000:]
    bad = subprocess.run(args, capture_output=True, text=True, env={**env, "Q35_LEAN_DIR": str(copy)}, cwd=ROOT)
    assert bad.returncode != 0 and "quant_error_even" in bad.stdout, bad.stdout[-3000:]


# --- code mutations: the mirrors, not only the equivalence suite, must fail --------------------------------------
def group_params_with_f16_down(values):
    """pyref.group_params with f16_down instead of f16_up for the scale (a grid that may not reach the max)."""
    z = pyref.f16_down(min(values))
    return z, max(pyref.f16_down((max(values) - z) / 15.0), pyref.MIN_SCALE)


def code4_half_even(w, z, s):
    """pyref.code4 rounding half to even (Python's round) instead of half up."""
    return pyref.clamp(round((w - z) / s), 0, 15)


def test_group_params_with_f16_down_fails_the_mirror(monkeypatch):
    from test_mirror_f16 import check_grid_covers_group
    monkeypatch.setattr(pyref.core, "group_params", group_params_with_f16_down)
    monkeypatch.setattr(pyref, "group_params", group_params_with_f16_down)
    with pytest.raises(AssertionError, match="grid does not reach the max|group_zero"):
        check_grid_covers_group(pyref.core.group_params)


def test_code4_half_to_even_fails_the_mirror(monkeypatch):
    from test_mirror_codes import check_codes_match_lean
    monkeypatch.setattr(pyref.core, "code4", code4_half_even)  # as an edit of pyref/core.py would: the module
    monkeypatch.setattr(pyref, "code4", code4_half_even)       # and q35.reference's re-export
    assert pyref.quantize_value(2.5, 0.0, 1.0, 0) == 2 and math.floor(2.5 + 0.5) == 3  # the mutant is live
    with pytest.raises(AssertionError, match="code4"):
        check_codes_match_lean()
