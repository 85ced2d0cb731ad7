"""The Fortran sources, read with fparser, agree with the reference and with how the bridge calls them.

- the format constants declared in fortran/q35_core.f90 equal pyref's;
- every kernel meson.build wraps exists, its intent(in)/intent(out) arguments are exactly the inputs and outputs
  of the f2py wrapper q35 loads, and each call `ext.<kernel>(...)` in the package sources (bridge/q35/) passes the
  wrapper's required inputs;
- the sources compile cleanly with -Wall -Wextra -std=f2018 -pedantic -Werror; a missing compiler is a clear error.
"""
from __future__ import annotations

import ast
import re
from fractions import Fraction
from pathlib import Path

import pytest
from fparser.common.readfortran import FortranFileReader
from fparser.two import Fortran2003 as F
from fparser.two.parser import ParserFactory
from fparser.two.utils import walk

import fortran_build as build
import q35
import q35.reference as pyref

ROOT = Path(__file__).resolve().parents[2]
PARSER = ParserFactory().create(std="f2008")


def _tree(name: str):
    return PARSER(FortranFileReader(str(ROOT / "fortran" / name), ignore_comments=True))


def fortran_parameters() -> dict[str, Fraction]:
    """Evaluate the integer/real named constants of q35_core (exact rationals, kind suffixes dropped)."""
    values: dict[str, Fraction] = {}
    for decl in walk(_tree("q35_core.f90"), F.Type_Declaration_Stmt):
        if "PARAMETER" not in str(decl.items[1]).upper():
            continue
        for entity in decl.items[2].items:
            name, expr = (part.strip() for part in str(entity).split("=", 1))
            expr = re.sub(r"_(real|int)\d+\b", "", expr)
            for known, v in values.items():
                expr = re.sub(rf"\b{known}\b", f"Fraction({v.numerator}, {v.denominator})", expr)
            expr = re.sub(r"(\d+\.\d*|\d+)", lambda m: f"Fraction('{m.group(1)}')", expr)
            values[name] = Fraction(eval(expr, {"Fraction": Fraction}))  # noqa: S307 - our own source
    return values


def fortran_kernels() -> dict[str, dict[str, str]]:
    """name -> {argument: intent} for every subroutine of the kernel modules."""
    out = {}
    subs = [s for f in build.sources() if f.name != "q35_core.f90" for s in walk(_tree(f.name), F.Subroutine_Subprogram)]
    for sub in subs:
        stmt = walk(sub, F.Subroutine_Stmt)[0]
        args = [str(a) for a in stmt.items[2].items] if stmt.items[2] else []
        intents = {}
        for decl in walk(sub, F.Type_Declaration_Stmt):
            m = re.search(r"INTENT\((IN|OUT|INOUT)\)", str(decl.items[1] or "").upper())
            for entity in decl.items[2].items:
                intents[str(entity.items[0])] = m.group(1).lower() if m else None
        out[str(stmt.items[1]).lower()] = {a: intents.get(a) for a in args}
    return out


def f2py_signature(kernel) -> tuple[list[str], list[str], list[str]]:
    """(required inputs, optional inputs, outputs) from the wrapper's docstring first line."""
    first = kernel.__doc__.strip().splitlines()[0]
    outs, call = first.split("=", 1) if "=" in first.split("(")[0] else ("", first)
    inside = call[call.index("(") + 1:call.rindex(")")]
    required, _, optional = inside.partition("[")
    clean = lambda s: [a.strip() for a in s.replace("]", "").split(",") if a.strip()]  # noqa: E731
    return clean(required), clean(optional), clean(outs)


def test_format_constants_agree_with_pyref():
    p = fortran_parameters()
    expected = {"lo4": pyref.LO4, "hi4": pyref.HI4, "lo3": pyref.LO3, "hi3": pyref.HI3,
                "bits_even": pyref.BITS_EVEN, "bits_odd": pyref.BITS_ODD, "pair_bits": pyref.PAIR_BITS,
                "pairs_per_block": pyref.PAIRS_PER_BLOCK, "block_bytes": pyref.BLOCK_BYTES,
                "weights_per_block": pyref.WEIGHTS_PER_BLOCK, "min_scale": pyref.MIN_SCALE,
                "f16_max": pyref.F16_MAX}
    assert {k: p[k] for k in expected} == {k: Fraction(v) for k, v in expected.items()}
    # 8 codes of 7 bits in 7 bytes: exactly 3.5 bits per weight
    assert Fraction(8 * p["block_bytes"], p["weights_per_block"]) == Fraction(7, 2) == pyref.PAYLOAD_BITS_PER_WEIGHT
    assert q35.kernel_constants() == {k.upper(): int(p[k]) for k in
                                         ["lo4", "hi4", "lo3", "hi3", "pair_bits", "pairs_per_block",
                                          "block_bytes", "weights_per_block"]}


def test_wrapped_kernels_exist_with_matching_intents():
    kernels = fortran_kernels()
    assert set(build.wrapped()) <= set(kernels), set(build.wrapped()) - set(kernels)
    for name in build.wrapped():
        required, optional, outputs = f2py_signature(getattr(q35.fast.extension.ext, name))
        intents = kernels[name]
        assert sorted(required + optional) == sorted(a for a, i in intents.items() if i == "in"), name
        assert outputs == [a for a, i in intents.items() if i == "out"], name
        assert None not in intents.values(), f"{name}: every dummy argument needs an explicit intent"


def test_package_calls_pass_every_required_input():
    calls = [n for f in sorted((ROOT / "bridge" / "q35").rglob("*.py")) for n in ast.walk(ast.parse(f.read_text()))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
             and n.func.value.id == "ext"]
    called = {c.func.attr for c in calls}
    assert called == set(build.wrapped()), called ^ set(build.wrapped())
    for c in calls:
        required, optional, _ = f2py_signature(getattr(q35.fast.extension.ext, c.func.attr))
        assert len(required) <= len(c.args) <= len(required) + len(optional), (c.func.attr, len(c.args), required)


def test_sources_are_clean_standard_fortran():
    build.lint()


def test_missing_compiler_gives_install_hint(monkeypatch):
    monkeypatch.setenv("FC", "/nonexistent/gfortran")
    with pytest.raises(build.BuildError, match="apt-get install -y gfortran"):
        build.build_fcheck(ROOT / ".cache" / "fcheck-missing-compiler")
