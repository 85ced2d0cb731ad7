"""Rows, targets and files of `make tables` (bench/tables.py): the quality row of each method, the targets
(q35 at <= 3.6 bpw vs the 3-bit anchors and vs the calibrated peers, the Pareto front), and the CSV / LaTeX /
markdown outputs and the docs/quality.md block. Every value comes from the rows computed in the run (or, for
--report-only, read back from its CSVs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench import machine
from bench.report import (dominated_by, latex_table, markdown_table, paired, pareto_front, read_csv, rewrite_block,
                          write_csv)
from bench.tables_figures import figures

TARGET_BPW = 3.6
ANCHORS_3BIT = ("int3_g64", "HQQ 3-bit g64", "Q3_K pure (rows, no imatrix)", "Q3_K (flat blocks, no imatrix)",
                "llama.cpp Q3_K_S")
# the calibrated peers: published quantizers given the same calibration windows as q35, so that a q35 win is not a
# calibration-data advantage (compared on the fixed protocol and on the held-out text)
CALIBRATED_PEERS = ("Q3_K + imatrix (flat blocks)", "Q3_K + imatrix (rows)", "IQ3_S + imatrix (flat blocks)",
                    "GPTQ INT3 g64", "GPTQ INT3 g128")
STRETCH = ("Q4_K (flat blocks, no imatrix)", 0.15)   # within 15 % of ggml Q4_K flat without imatrix
PARETO_WINDOW = (3.0, 4.5)          # bits per weight: the front is computed among the methods in this window
PARETO_COLUMN = "pareto_3_4.5"
QUALITY_COLS = ["method", "kind", "calibrated", "bpw", "x_vs_fp16", "rel_rmse", "rel_out_err", "ppl", "bpb",
                "dppl_pct", "paired_p_vs_fp32", "ppl_heldout", "dppl_heldout_pct"]


def quality_row(name, r, res, base, kind, calibrated: bool = False, heldout=None, heldout_base=None) -> dict:
    """One method on SmolLM2: sizes, weight error, calibration output error, perplexity and a paired test over
    windows vs FP32; ``heldout``/``heldout_base``: the same method and FP32 on the held-out text (or None)."""
    nan = float("nan")
    row = {"method": name, "kind": kind, "calibrated": bool(calibrated), "bpw": r["bpw"], "x_vs_fp16": 16 / r["bpw"],
           "x_vs_fp32": 32 / r["bpw"], "rel_rmse": r["rel_rmse"], "rel_out_err": r.get("rel_out_err", nan),
           "max_abs_err": r["max_abs_err"], "ppl": nan, "bpb": nan, "dppl_pct": nan, "paired_p_vs_fp32": nan,
           "ppl_heldout": nan, "dppl_heldout_pct": nan, "tokens": 0, "quantize_s": r["quantize_s"], "eval_s": 0.0,
           "notes": r.get("notes", "")}
    if res is None:  # RMSE-only row
        row["notes"] = (row["notes"] + "; perplexity not evaluated (RMSE table only)").lstrip("; ")
        return row
    row.update(ppl=res.ppl, bpb=res.bpb, dppl_pct=100 * (res.ppl / base.ppl - 1),
               paired_p_vs_fp32=paired(res.nll, base.nll)["p"], tokens=res.total_tokens, eval_s=res.seconds)
    if heldout is not None:
        row.update(ppl_heldout=heldout.ppl, dppl_heldout_pct=100 * (heldout.ppl / heldout_base.ppl - 1),
                   eval_s=res.seconds + heldout.seconds)
    return row


def best_q35_under(rows: list[dict], bpw: float) -> dict | None:
    cands = [r for r in rows if r["kind"] == "q35" and r["bpw"] <= bpw and r["tokens"]]
    return min(cands, key=lambda r: r["ppl"]) if cands else None


def pareto_window(rows: list[dict], calibrated_only: bool = False) -> list[dict]:
    lo, hi = PARETO_WINDOW
    return [r for r in rows if lo <= r["bpw"] <= hi and r["tokens"] and (r.get("calibrated") or not calibrated_only)]


def mark_pareto(rows: list[dict]) -> set[str]:
    """Set each row's Pareto column (not dominated in bits and perplexity within the window); the front's names."""
    window = pareto_window(rows)
    front = {r["method"] for r, on in zip(window, pareto_front([(r["bpw"], r["ppl"]) for r in window])) if on}
    for r in rows:
        r[PARETO_COLUMN] = r["method"] in front
    return front


def _fmt(v, col: str) -> str:
    if isinstance(v, float):
        if col in ("bpw", "linear_bpw"):
            return f"{v:.4f}"
        if col in ("ppl", "ppl_heldout", "bpb", "x_vs_fp16", "x_vs_fp32", "weights_GB", "params_B"):
            return f"{v:.3f}"
        if col in ("dppl_pct", "dppl_heldout_pct"):
            return f"{v:+.2f}"
        if col in ("quantize_s", "eval_s"):
            return f"{v:.1f}"
        return f"{v:.4g}"
    return str(v)


def _cells(rows: list[dict], cols: list[str]) -> list[list[str]]:
    return [[_fmt(r[c], c) for c in cols] for r in rows]


def _anchor_line(best: dict, a: dict | None, anchor: str, col: str = "ppl") -> str:
    if a is None or not a.get(col) == a.get(col):      # missing, or NaN (not evaluated on this text)
        return f"  vs {anchor}: not measured in this run"
    verdict = "MET" if best[col] < a[col] else "MISSED"
    return (f"  vs {anchor} ({a['bpw']:.4f} bpw, {col} {a[col]:.3f}): {verdict}, difference "
            f"{best[col] - a[col]:+.3f} ({100 * (best[col] / a[col] - 1):+.2f}%)")


def _pareto_lines(rows: list[dict], front: set[str], calibrated_only: bool) -> list[str]:
    window = pareto_window(rows, calibrated_only)
    beaten_by = dominated_by([(r["bpw"], r["ppl"]) for r in window])
    lo, hi = PARETO_WINDOW
    what = "calibrated methods" if calibrated_only else "all methods"
    out = []
    for i in sorted((i for i, r in enumerate(window) if r["kind"] == "q35"), key=lambda i: window[i]["bpw"]):
        r = window[i]
        status = ("ON the front" if not beaten_by[i]
                  else "dominated by " + ", ".join(window[j]["method"] for j in beaten_by[i]))
        out.append(f"  Pareto of {what} ({lo:g}-{hi:g} bpw): {r['method']} {status}")
    return out


def calibrated_targets(rows: list[dict]) -> list[str]:
    """The best q35 at <= 3.6 bpw (chosen on the fixed protocol) vs the calibrated peers (same calibration
    statistics) on both texts, the calibrated Pareto front, and the stretch target."""
    by = {r["method"]: r for r in rows}
    best = best_q35_under(rows, TARGET_BPW)
    if best is None:
        return []
    out = [f"calibrated peers (same calibration statistics), best q35 at <= {TARGET_BPW} bpw chosen on the fixed "
           f"protocol: {best['method']}"]
    for col, label in (("ppl", "fixed protocol"), ("ppl_heldout", "held-out text")):
        out.append(f"  on the {label}:")
        out += ["  " + _anchor_line(best, by.get(a), a, col) for a in CALIBRATED_PEERS]
    out += _pareto_lines(rows, set(), calibrated_only=True)
    ref, within = STRETCH
    if ref in by and by[ref]["tokens"]:
        ok = best["ppl"] <= by[ref]["ppl"] * (1 + within)
        out.append(f"  stretch: within {within:.0%} of {ref} ({by[ref]['bpw']:.4f} bpw, ppl {by[ref]['ppl']:.3f}): "
                   f"{'MET' if ok else 'MISSED'} ({100 * (best['ppl'] / by[ref]['ppl'] - 1):+.2f}%)")
    return out


def targets(rows: list[dict], front: set[str]) -> list[str]:
    by = {r["method"]: r for r in rows}
    best = best_q35_under(rows, TARGET_BPW)
    if best is None:
        return [f"no q35 configuration at <= {TARGET_BPW} bits per weight was measured"]
    out = [f"best q35 at <= {TARGET_BPW} bpw: {best['method']} ({best['bpw']:.4f} bpw, ppl {best['ppl']:.3f})"]
    out += [_anchor_line(best, by.get(anchor), anchor) for anchor in ANCHORS_3BIT]
    out += _pareto_lines(rows, front, calibrated_only=False)
    return out + calibrated_targets(rows)


def synthetic_summary(synthetic: list[dict]) -> list[dict]:
    """Mean bits per weight and relative RMSE of each (model, method) over its synthetic shapes."""
    agg = {}
    for r in synthetic:
        agg.setdefault((r["model"], r["method"]), []).append(r)
    return [{"model": m, "method": meth, "bpw": float(np.mean([x["bpw"] for x in v])),
             "rel_rmse": float(np.mean([x["rel_rmse"] for x in v]))} for (m, meth), v in agg.items()]


def _write_latex(out: Path, rows, synthetic, memory, caption: str) -> None:
    (out / "quality.tex").write_text(latex_table(QUALITY_COLS, _cells(rows, QUALITY_COLS), caption))
    syn_cols = ["model", "method", "bpw", "rel_rmse", "max_abs_err"]
    (out / "synthetic_rmse.tex").write_text(latex_table(
        syn_cols, _cells(synthetic, syn_cols), "Synthetic heavy-tailed matrices with the exact in_features of "
        "LLaMA linears (sampled rows; synthetic, not real weights)."))
    (out / "model_memory.tex").write_text(latex_table(
        list(memory[0]), _cells(memory, list(memory[0])), "Whole-model weight memory computed from layer shapes "
        "(embeddings/norms FP16)."))


def _markdown(rows, synthetic, memory, tgt, evalset, caption_note, line, seconds) -> str:
    md_cols = QUALITY_COLS + ["quantize_s", "eval_s"]
    syn_cols = ["model", "method", "bpw", "rel_rmse"]
    return "\n".join([
        f"<!-- {line} -->", "### Perplexity and weight error, SmolLM2-135M (measured)", "",
        f"Protocol: {evalset.describe()}", "", caption_note, "",
        markdown_table(md_cols, _cells(rows, md_cols)), "", "Targets:", "",
        *[f"    {t}" for t in tgt], "",
        "### Synthetic LLaMA shapes (relative RMSE, mean over the shapes of each model)", "",
        markdown_table(syn_cols, _cells(synthetic_summary(synthetic), syn_cols)), "",
        "### Whole-model weight memory (computed from shapes)", "",
        markdown_table(list(memory[0]), _cells(memory, list(memory[0]))), "",
        f"`make tables` ran in {seconds / 60:.1f} min."])


def docs_body(rows, tgt, evalset, caption_note, line) -> str:
    """The `tables` block of docs/quality.md."""
    return "\n".join([f"Measured by `make tables` ({line}).", "", f"Protocol: {evalset.describe()}", "",
                      caption_note, "", markdown_table(QUALITY_COLS, _cells(rows, QUALITY_COLS)), "",
                      *[f"    {t}" for t in tgt]])


def write_all(out: Path, rows, synthetic, memory, evalset, info, caption_note, seconds,
              update_docs: bool = False) -> None:
    """Every output of `make tables` into ``out`` (and the docs/quality.md block when asked)."""
    prov = machine.provenance()
    line = machine.provenance_line(prov)
    front = mark_pareto(rows)
    for name, data in (("quality", rows), ("synthetic_rmse", synthetic), ("model_memory", memory)):
        write_csv(out / f"{name}.csv", data, line)
    _write_latex(out, rows, synthetic, memory, f"SmolLM2-135M, every block linear quantized; "
                 f"{evalset.describe()}. {caption_note}")
    tgt = targets(rows, front)
    md = _markdown(rows, synthetic, memory, tgt, evalset, caption_note, line, seconds)
    (out / "tables.md").write_text(md + "\n")
    (out / "provenance.json").write_text(json.dumps({**prov, "model": {k: str(v) for k, v in info.items()},
                                                     "texts_sha256": evalset.doc_sha256,
                                                     "tokens_sha256": evalset.tokens_sha256}, indent=1))
    figures(out, rows, synthetic, memory, front, line)
    print(md)
    if update_docs:
        print(f"rewrote the tables block of {rewrite_block('tables', docs_body(rows, tgt, evalset, caption_note, line))}")


def report_only(src: Path, out: Path) -> int:
    """Draw the figures again from a previous run's CSVs in ``src`` (quality, synthetic_rmse, model_memory),
    recomputing nothing; the Pareto front is the run's own column."""
    rows, line = read_csv(src / "quality.csv")
    synthetic, _ = read_csv(src / "synthetic_rmse.csv")
    memory, _ = read_csv(src / "model_memory.csv")
    out.mkdir(parents=True, exist_ok=True)
    front = {r["method"] for r in rows if r.get(PARETO_COLUMN)}
    for p in figures(out, rows, synthetic, memory, front, line or "provenance line missing"):
        print(f"wrote {p}")
    return 0
