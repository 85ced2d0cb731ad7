"""`python -m bench.projection` (`make projection`): the whole projection to files (--all; --update-docs also
rewrites the block of docs/projection.md), one model and format on every machine (--model/--format), or the figures
again from a previous run's files (--report-only)."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from bench import machine
from bench.formats import ALIASES, get_format
from bench.report import markers, page_of, read_csv, rewrite_block, write_csv

from .catalogue import CATALOG_DIR
from .context import PROJECTION_FORMATS, Context, all_rows, build_context, project_in, validation_rows
from .figures import make_figures
from .hardware import RESULTS_DIR
from .models import linear_bits_per_weight
from .performance import DEFAULT_BATCH, DEFAULT_CONTEXT
from .report import (cpu_summary, docs_block, projection_latex, projection_markdown, rows_table, sig,
                     utilisation_summary, validation_notes, validation_table)

__all__ = ["OUT_DIR", "DOCS_BLOCK", "run_all", "run_one", "report_only", "main"]

OUT_DIR = RESULTS_DIR / "projection"
REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS_BLOCK = "projection"          # the block of docs/projection.md that --update-docs rewrites


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _print_summary(ctx: Context, vrows: list[dict]) -> None:
    print("Validation: projection vs published figures (projections modelled)\n")
    print(validation_table(vrows, ctx))
    print()
    print(validation_notes(vrows, ctx))
    print()
    print(cpu_summary(ctx))
    print(utilisation_summary(ctx))


def _write_tables(out_dir: Path, ctx: Context, rows, vrows, context: int, batch: int, pline: str) -> list[Path]:
    write_csv(out_dir / "projection.csv", rows, f"modelled projection; provenance: {pline}")
    write_csv(out_dir / "validation.csv", vrows, f"modelled projection; provenance: {pline}")
    (out_dir / "projection.tex").write_text(projection_latex(rows, ctx, pline))
    (out_dir / "validation.md").write_text(f"# Projection validation (modelled)\n\nProvenance: {pline}\n\n"
                                           f"{validation_table(vrows, ctx)}\n\n{validation_notes(vrows, ctx)}\n")
    (out_dir / "projection.md").write_text(projection_markdown(rows, vrows, ctx, context, batch, pline))
    return [out_dir / n for n in ("projection.md", "projection.csv", "projection.tex", "validation.md",
                                  "validation.csv")]


def run_all(out_dir: Path, context: int, batch: int, quick: bool, figures: bool, update_docs: bool) -> int:
    prov = machine.provenance()
    ctx = build_context(quick=quick)
    pline = machine.provenance_line(prov)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = all_rows(ctx, context, batch)
    vrows = validation_rows(ctx)
    _print_summary(ctx, vrows)
    files = _write_tables(out_dir, ctx, rows, vrows, context, batch, pline)
    if figures:
        files += make_figures(ctx, rows, out_dir, pline)
    record = {"provenance": prov, "settings": {"context": context, "batch": batch, "quick": quick},
              "cpu_measurement": ctx.cpu, "measured_utilisation": ctx.measured,
              "calibrations": ctx.calibrations,
              "catalogues_sha256": {p.name: _sha256(p) for p in sorted(CATALOG_DIR.glob("*.json"))},
              "outputs": [str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p) for p in files]}
    (out_dir / "provenance.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    if update_docs:
        page = rewrite_block(DOCS_BLOCK, docs_block(vrows, ctx, prov), append=True)
        print(f"\n{page}: rewrote the block between {' and '.join(markers(DOCS_BLOCK))}")
    print(f"\nwrote {len(files) + 1} files to {out_dir}")
    return 0


def report_only(src: Path, out_dir: Path) -> int:
    """Draw the figures again from a previous run's projection.csv and provenance.json (its CPU measurement),
    computing nothing new."""
    record = json.loads((src / "provenance.json").read_text())
    rows, _ = read_csv(src / "projection.csv")
    ctx = build_context(cpu=record["cpu_measurement"])
    out_dir.mkdir(parents=True, exist_ok=True)
    files = make_figures(ctx, rows, out_dir, machine.provenance_line(record["provenance"]))
    print("\n".join(f"wrote {p}" for p in files))
    return 0


def run_one(model: str, fmt_name: str, hardware: list[str] | None, context: int, batch: int) -> int:
    ctx = build_context(quick=True)
    if model not in ctx.models:
        print(f"unknown model {model!r}; choose from {', '.join(ctx.models)}", file=sys.stderr)
        return 2
    try:
        fmt = get_format(fmt_name)
    except KeyError as e:
        print(e.args[0], file=sys.stderr)
        return 2
    hws = hardware or list(ctx.hardware)
    bad = [h for h in hws if h not in ctx.hardware]
    if bad:
        print(f"unknown hardware {bad}; choose from {', '.join(ctx.hardware)}", file=sys.stderr)
        return 2
    rows = [project_in(ctx, model, fmt, hid, context, batch) for hid in hws]
    m = ctx.models[model]
    print(f"{m['name']} in {fmt.label}, batch {batch}, context {context}: all numbers modelled "
          f"(linears at {linear_bits_per_weight(m, fmt):.4f} all-in bits/weight)\n")
    print(rows_table(rows, ctx, with_model=False))
    print()
    for hid in hws:
        if hid in ctx.calibrations:
            c = ctx.calibrations[hid]
            print(f"{ctx.hardware[hid]['name']}: pipeline-latency model, tau {sig(c['tau_s'] * 1e6)} us/layer "
                  f"calibrated on {c['point']}")
    print(cpu_summary(ctx))
    print(utilisation_summary(ctx))
    return 0


def _parser() -> argparse.ArgumentParser:
    start, end = markers(DOCS_BLOCK)
    page = page_of(DOCS_BLOCK)
    page = page.relative_to(REPO_ROOT) if page.is_relative_to(REPO_ROOT) else page
    p = argparse.ArgumentParser(prog="python -m bench.projection", description="Modelled accelerator throughput / memory "
                                "projection for LLaMA-architecture models")
    p.add_argument("--model", help="model id from bench/catalog/models.json (e.g. llama-2-70b)")
    p.add_argument("--format", default="q35", help=f"one of {', '.join(list(PROJECTION_FORMATS) + list(ALIASES))} "
                   "(or any id of bench.formats)")
    p.add_argument("--hardware", help="comma-separated hardware ids (default: all)")
    p.add_argument("--context", type=int, default=DEFAULT_CONTEXT)
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    p.add_argument("--all", action="store_true", help="write every table and figure to --out")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    p.add_argument("--quick", action="store_true", help="shorter CPU measurement")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--update-docs", "--update-readme", dest="update_docs", action="store_true",
                   help=f"rewrite the {page} block between {start} and {end} (--update-readme: its former name)")
    p.add_argument("--report-only", nargs="?", type=Path, const=OUT_DIR, metavar="FROM",
                   help="redraw the figures into --out from a previous run's files in FROM (default: the results "
                        "folder), without recomputing")
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    if a.context < 1 or a.batch < 1:
        p.error("--context and --batch must be >= 1")
    if a.report_only:
        return report_only(a.report_only, a.out)
    if a.all or a.update_docs:
        return run_all(a.out, a.context, a.batch, a.quick, not a.no_figures, a.update_docs)
    if not a.model:
        p.error("give --model (and --format), or --all")
    return run_one(a.model, a.format, a.hardware.split(",") if a.hardware else None, a.context, a.batch)
