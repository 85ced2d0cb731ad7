#!/usr/bin/env python3
"""Pins of the Lean mirrors: check them against lean/, or re-pin them after a review.

    python tests/lean_pins.py            # report every pin that no longer matches lean/, with what changed
    python tests/lean_pins.py --repin    # after reviewing those mirrors: rewrite the pins and the snapshot

A pin is `@pin("name", "<digest>")` on a test in tests/test_mirror_*.py, the digest being
`lean_text.LeanProject.pin(name)` (the normalised statement plus every definition it uses). The snapshot
tests/lean_pins.json keeps the pinned text of every declaration at its last review, so that a mismatch can be
shown as a diff. Exit status 1 when a pin is stale (check mode).
"""
from __future__ import annotations

import argparse
import ast
import difflib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from lean_text import LEAN_DIR, LeanProject

TESTS_DIR = Path(__file__).resolve().parent
SNAPSHOT = TESTS_DIR / "lean_pins.json"


@dataclass(frozen=True)
class PinUse:
    path: Path
    test: str
    name: str
    digest: str


@dataclass(frozen=True)
class MirrorModule:
    path: Path
    tests: tuple[str, ...]             # every `def test_*`
    pins: tuple[PinUse, ...]
    generated: tuple[str, ...]         # the theorems of its STATEMENTS table


def mirror_files(tests_dir: Path = TESTS_DIR) -> list[Path]:
    return sorted(p for p in tests_dir.glob("test_mirror_*.py") if p.name != "test_mirror_common.py")


def _pin_call(dec) -> tuple[str, str] | None:
    if isinstance(dec, ast.Call) and getattr(dec.func, "id", None) == "pin" and len(dec.args) == 2 \
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in dec.args):
        return dec.args[0].value, dec.args[1].value
    return None


def read_module(path: Path) -> MirrorModule:
    """Tests, pins and generated checks of one mirror module, read from its source (nothing is imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    tests, pins, generated = [], [], []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            tests.append(node.name)
            pins += [PinUse(path, node.name, *p) for d in node.decorator_list if (p := _pin_call(d))]
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "STATEMENTS" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            generated += [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "test_lean_statement"
                                                 for t in node.targets):
            tests.append("test_lean_statement")
    return MirrorModule(path, tuple(tests), tuple(pins), tuple(generated))


def read_modules(tests_dir: Path = TESTS_DIR) -> list[MirrorModule]:
    return [read_module(p) for p in mirror_files(tests_dir)]


def stale(project: LeanProject, modules: list[MirrorModule]) -> list[tuple[PinUse, str | None]]:
    """(pin, current digest or None when the declaration is gone) for every pin that does not match."""
    out = []
    for m in modules:
        for u in m.pins:
            current = project.pin(u.name) if u.name in project.decls else None
            if current != u.digest:
                out.append((u, current))
    return out


def load_snapshot() -> dict[str, str]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8")) if SNAPSHOT.exists() else {}


def what_changed(project: LeanProject, name: str, snapshot: dict[str, str]) -> str:
    """A unified diff of the pinned text (statement + definitions) against its last reviewed version."""
    new = project.pin_text(name).splitlines() if name in project.decls else ["(declaration removed)"]
    old = snapshot.get(name, "(not in the snapshot)").splitlines()
    return "\n".join(difflib.unified_diff(old, new, "reviewed", "lean/ now", lineterm="", n=0))


def repin(project: LeanProject, modules: list[MirrorModule]) -> int:
    """Rewrite stale digests in the mirror files and refresh the snapshot; returns how many were rewritten."""
    changed = 0
    for m in modules:
        text = m.path.read_text(encoding="utf-8")
        for u in m.pins:
            if u.name not in project.decls:
                raise SystemExit(f"{m.path.name}::{u.test} pins {u.name}, which lean/ no longer declares: "
                                 "fix the mirror by hand")
            new = project.pin(u.name)
            if new != u.digest:
                text = text.replace(f'pin("{u.name}", "{u.digest}")', f'pin("{u.name}", "{new}")')
                changed += 1
        m.path.write_text(text, encoding="utf-8")
    names = sorted({u.name for m in modules for u in m.pins})
    SNAPSHOT.write_text(json.dumps({n: project.pin_text(n) for n in names}, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repin", action="store_true", help="rewrite stale pins (after reviewing those mirrors)")
    ap.add_argument("--lean-dir", type=Path, default=LEAN_DIR, help="the Lean project to compare with")
    args = ap.parse_args(argv)
    project, modules = LeanProject(args.lean_dir), read_modules()
    bad = stale(project, modules)
    snapshot = load_snapshot()
    for name in sorted({u.name for u, _ in bad}):
        uses = [f"{u.path.name}::{u.test}" for u, _ in bad if u.name == name]
        print(f"{name}: pinned by {', '.join(uses)}")
        print(what_changed(project, name, snapshot) or "  (no change in the text: the snapshot is out of date)")
    if args.repin:
        n = repin(project, modules)
        print(f"re-pinned {n} mirror pin(s); snapshot {SNAPSHOT.name} refreshed")
        return 0
    total = sum(len(m.pins) for m in modules)
    print(f"{total - len(bad)}/{total} pins match {args.lean_dir}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
