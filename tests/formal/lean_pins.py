#!/usr/bin/env python3
"""The reviewed text of lean/ (the pins): check it, or re-pin it after a review.

    python tests/formal/lean_pins.py            # what changed in lean/ since the last review, and which mirrors
    python tests/formal/lean_pins.py --repin    # after reviewing those mirrors: rewrite the snapshot

Pins are stored in one place, tests/formal/lean_pins.json: the normalised text (lean_text.Decl.text: comments
and proofs removed, whitespace collapsed) of every declaration of lean/ as it was when its mirrors were last
reviewed. A mirror of a declaration is a test decorated with `@mirrors("name", ...)` or a `STATEMENTS` entry
of a tests/formal/test_mirror_*.py module; it is *stale*, and fails, while that declaration or a definition its
text uses (transitively) differs from the snapshot. Exit status 1 when something changed (check mode).
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


def load_snapshot(path: Path = SNAPSHOT) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8"))


def changed(project: LeanProject, snapshot: dict[str, str]) -> list[str]:
    """Declarations added, removed or changed since the snapshot."""
    names = set(project.decls) | set(snapshot)
    return sorted(n for n in names if n not in project.decls or snapshot.get(n) != project.decls[n].text)


def stale(project: LeanProject, snapshot: dict[str, str], name: str) -> list[str]:
    """What makes a mirror of `name` stale: `name` itself or definitions its text uses, changed since review."""
    if name not in project.decls:
        return [name]
    return [n for n in [name, *project.closure(name)] if snapshot.get(n) != project.decls[n].text]


@dataclass(frozen=True)
class MirrorModule:
    path: Path
    tests: dict[str, tuple[str, ...]]  # every `def test_*`: the declarations its `@mirrors(...)` names
    generated: tuple[str, ...]         # the theorems of its STATEMENTS table


def mirror_files(tests_dir: Path = TESTS_DIR) -> list[Path]:
    return sorted(p for p in tests_dir.glob("test_mirror_*.py") if p.name != "test_mirror_common.py")


def _mirrored(dec) -> tuple[str, ...]:
    if isinstance(dec, ast.Call) and getattr(dec.func, "id", None) == "mirrors":
        return tuple(a.value for a in dec.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return ()


def read_module(path: Path) -> MirrorModule:
    """Tests, their mirrored declarations and the generated checks of one module, read from its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    tests, generated = {}, []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            tests[node.name] = tuple(n for d in node.decorator_list for n in _mirrored(d))
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "STATEMENTS" for t in node.targets):
            generated += [k.value for k in node.value.keys]
    return MirrorModule(path, tests, tuple(generated))


def read_modules(tests_dir: Path = TESTS_DIR) -> list[MirrorModule]:
    return [read_module(p) for p in mirror_files(tests_dir)]


def mirrors_of(project: LeanProject, modules: list[MirrorModule], name: str) -> list[str]:
    """The tests (and generated checks) that a change to declaration `name` makes stale."""
    def hit(n):
        return n == name or (n in project.decls and name in project.closure(n))
    out = [f"{m.path.name}::{t}" for m in modules for t, names in m.tests.items() if any(map(hit, names))]
    return out + [f"{m.path.name}::test_lean_statement[{g}]" for m in modules for g in m.generated if hit(g)]


def what_changed(project: LeanProject, snapshot: dict[str, str], name: str) -> str:
    old = snapshot.get(name, "(not in the snapshot)")
    new = project.decls[name].text if name in project.decls else "(declaration removed)"
    return "\n".join(difflib.unified_diff([old], [new], "reviewed", "lean/ now", lineterm="", n=0))


def repin(project: LeanProject, modules: list[MirrorModule], path: Path = SNAPSHOT) -> None:
    unknown = [f"{m.path.name}::{t} mirrors {n}" for m in modules for t, names in m.tests.items()
               for n in names if n not in project.decls]
    unknown += [f"{m.path.name}: STATEMENTS names {g}" for m in modules for g in m.generated if g not in project.decls]
    if unknown:
        raise SystemExit("mirrors of declarations lean/ no longer has; fix them by hand:\n  " + "\n  ".join(unknown))
    snapshot = {n: project.decls[n].text for n in sorted(project.decls)}
    path.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repin", action="store_true", help="rewrite the snapshot (after reviewing the mirrors)")
    ap.add_argument("--lean-dir", type=Path, default=LEAN_DIR, help="the Lean project to compare with")
    args = ap.parse_args(argv)
    project, modules, snapshot = LeanProject(args.lean_dir), read_modules(), load_snapshot()
    names = changed(project, snapshot)
    for name in names:
        print(f"{name} changed; review its mirrors:")
        print("".join(f"    {m}\n" for m in mirrors_of(project, modules, name)) or "    (none)")
        print(what_changed(project, snapshot, name))
    if args.repin:
        repin(project, modules)
        print(f"re-pinned: {SNAPSHOT.name} now holds the text of the {len(project.decls)} declarations of "
              f"{args.lean_dir} ({len(names)} changed)")
        return 0
    print(f"{sum(n not in names for n in project.decls)}/{len(project.decls)} declarations of {args.lean_dir} match "
          f"{SNAPSHOT.name}")
    return 1 if names else 0


if __name__ == "__main__":
    sys.exit(main())
