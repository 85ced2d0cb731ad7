"""Tables, target checks and figures for bench/tables.py. Every value comes from the rows computed in the run."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from q35 import format as qfmt
from q35 import reference

TARGET_BPW = 3.6
ANCHORS_3BIT = ("int3_g64", "HQQ 3-bit g64", "Q3_K pure (rows)", "Q3_K (flat blocks)", "llama.cpp Q3_K_S")


def quality_row(name, r, res, base, kind) -> dict:
    """One method on SmolLM2: sizes, weight error, perplexity and a paired test over windows vs FP32."""
    from scipy import stats

    row = {"method": name, "kind": kind, "bpw": r["bpw"], "x_vs_fp16": 16 / r["bpw"], "x_vs_fp32": 32 / r["bpw"],
           "rel_rmse": r["rel_rmse"], "max_abs_err": r["max_abs_err"], "ppl": float("nan"), "bpb": float("nan"),
           "dppl_pct": float("nan"), "paired_p_vs_fp32": float("nan"), "tokens": 0,
           "quantize_s": r["quantize_s"], "eval_s": 0.0, "notes": r.get("notes", "")}
    if res is None:  # RMSE-only row
        row["notes"] = (row["notes"] + "; perplexity not evaluated (RMSE table only)").lstrip("; ")
        return row
    diff = res.nll - base.nll
    p = float(stats.ttest_rel(res.nll, base.nll).pvalue) if np.any(diff != 0) else 1.0
    row.update(ppl=res.ppl, bpb=res.bpb, dppl_pct=100 * (res.ppl / base.ppl - 1), paired_p_vs_fp32=p,
               tokens=res.total_tokens, eval_s=res.seconds)
    return row


def best_q35_under(rows: list[dict], bpw: float) -> dict | None:
    cands = [r for r in rows if r["kind"] == "q35" and r["bpw"] <= bpw and r["tokens"]]
    return min(cands, key=lambda r: r["ppl"]) if cands else None


def _fmt(v, col: str) -> str:
    if isinstance(v, float):
        if col in ("bpw", "linear_bpw"):
            return f"{v:.4f}"
        if col in ("ppl", "bpb", "x_vs_fp16", "x_vs_fp32", "weights_GB", "params_B"):
            return f"{v:.3f}"
        if col in ("dppl_pct",):
            return f"{v:+.2f}"
        if col in ("quantize_s", "eval_s"):
            return f"{v:.1f}"
        return f"{v:.4g}"
    return str(v)


def markdown(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c], c) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def latex(rows: list[dict], cols: list[str], caption: str) -> str:
    esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&").replace("#", r"\#")  # noqa
    body = [" & ".join(esc(_fmt(r[c], c)) for c in cols) + r" \\" for r in rows]
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{" + "l" * len(cols) + "}",
                      r"\toprule", " & ".join(esc(c) for c in cols) + r" \\", r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}", rf"\caption{{{esc(caption)}}}", r"\end{table}", ""])


def write_csv(path: Path, rows: list[dict], prov_line: str) -> None:
    with path.open("w", newline="") as f:
        f.write(f"# {prov_line}\n")
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def targets(rows: list[dict], front: set[str]) -> list[str]:
    by = {r["method"]: r for r in rows}
    best = best_q35_under(rows, TARGET_BPW)
    out = []
    if best is None:
        return ["no q35 configuration at <= 3.6 bits per weight was measured"]
    out.append(f"best q35 at <= {TARGET_BPW} bpw: {best['method']} ({best['bpw']:.4f} bpw, ppl {best['ppl']:.3f})")
    for anchor in ANCHORS_3BIT:
        a = by.get(anchor)
        if a is None:
            out.append(f"  vs {anchor}: not measured in this run")
            continue
        verdict = "MET" if best["ppl"] < a["ppl"] else "MISSED"
        out.append(f"  vs {anchor} ({a['bpw']:.4f} bpw, ppl {a['ppl']:.3f}): {verdict}, "
                   f"ppl difference {best['ppl'] - a['ppl']:+.3f} ({100 * (best['ppl'] / a['ppl'] - 1):+.2f}%)")
    window = [r for r in rows if 3.0 <= r["bpw"] <= 4.5 and r["tokens"]]
    for r in sorted((r for r in window if r["kind"] == "q35"), key=lambda r: r["bpw"]):
        dominated_by = [o["method"] for o in window if o["bpw"] <= r["bpw"] and o["ppl"] < r["ppl"]
                        and o["method"] != r["method"]]
        out.append(f"  Pareto (3-4.5 bpw): {r['method']} {'ON the front' if r['method'] in front else 'dominated by ' + ', '.join(dominated_by)}")
    return out


def figures(out: Path, rows, synthetic, memory, front) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"q35": "tab:red", "baseline": "tab:blue", "anchor": "tab:green"}
    # perplexity vs bits, Pareto front drawn
    fig, ax = plt.subplots(figsize=(8, 5.5))
    pts = [r for r in rows if r["bpw"] <= 9 and r["tokens"]]
    for r in pts:
        ax.scatter(r["bpw"], r["ppl"], c=colors[r["kind"]], s=60 if r["method"] in front else 25,
                   edgecolors="black" if r["method"] in front else "none", zorder=3)
        ax.annotate(r["method"], (r["bpw"], r["ppl"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    fr = sorted((r for r in pts if r["method"] in front), key=lambda r: r["bpw"])
    ax.plot([r["bpw"] for r in fr], [r["ppl"] for r in fr], "k--", lw=1, label="Pareto front (measured)")
    ax.set_xlabel("all-in bits per weight (block linears)")
    ax.set_ylabel("token perplexity (SmolLM2-135M)")
    ax.set_yscale("log")
    ax.legend(handles=[plt.Line2D([], [], marker="o", ls="", c=c, label=k) for k, c in colors.items()] +
              [plt.Line2D([], [], ls="--", c="k", label="Pareto front")], fontsize=8)
    ax.set_title("Perplexity vs bits per weight (measured in this run)")
    _save(fig, out / "ppl_vs_bpw")
    # RMSE vs bits (SmolLM2 and synthetic)
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        if r["bpw"] <= 9 and r["rel_rmse"] > 0:
            ax.scatter(r["bpw"], r["rel_rmse"], c=colors[r["kind"]], s=25)
            ax.annotate(r["method"], (r["bpw"], r["rel_rmse"]), fontsize=6)
    syn = {}
    for r in synthetic:
        syn.setdefault(r["method"], []).append((r["bpw"], r["rel_rmse"]))
    for m, v in syn.items():
        if np.mean([b for b, _ in v]) <= 9:
            ax.scatter(np.mean([b for b, _ in v]), np.mean([e for _, e in v]), marker="x", c="gray", s=20)
    ax.set_xlabel("all-in bits per weight")
    ax.set_ylabel("relative RMSE of the weights")
    ax.set_yscale("log")
    ax.set_title("Weight error vs bits (dots: SmolLM2; crosses: synthetic LLaMA shapes, mean)")
    _save(fig, out / "rmse_vs_bpw")
    # memory vs model size
    fig, ax = plt.subplots(figsize=(8, 5))
    by_fmt = {}
    for r in memory:
        by_fmt.setdefault(r["format"], []).append((r["params_B"], r["weights_GB"]))
    for f, v in by_fmt.items():
        v.sort()
        ax.plot([p for p, _ in v], [g for _, g in v], marker="o", label=f)
    for cap, lab in [(80, "80 GB (H100/A100-80)"), (24, "24 GB (RTX 4090)")]:
        ax.axhline(cap, ls=":", c="gray")
        ax.text(8, cap * 1.05, lab, fontsize=7, color="gray")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (billions)")
    ax.set_ylabel("weight memory (GB, computed from layer shapes)")
    ax.legend(fontsize=7)
    _save(fig, out / "memory_vs_size")
    encoding_figure(out / "encoding")


def encoding_figure(path: Path) -> None:
    """The 7-bit pair and 7-byte block layout, drawn from the format's constants and pack_block itself."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_pairs, pair_bits, n_bytes = qfmt.PAIRS_PER_BLOCK, qfmt.PAIR_BITS, qfmt.BLOCK_BYTES
    fig, ax = plt.subplots(figsize=(11, 3.2))
    cmap = plt.get_cmap("tab10")
    total_bits = 8 * n_bytes
    for bit in range(total_bits):
        pair = bit // pair_bits
        within = bit % pair_bits
        lane = "even (4-bit)" if within < qfmt.BITS_EVEN else "odd (3-bit)"
        ax.add_patch(plt.Rectangle((bit, 1), 1, 1, color=cmap(pair), alpha=0.9 if within < qfmt.BITS_EVEN else 0.5))
        ax.text(bit + 0.5, 1.5, f"w{2 * pair + (within >= qfmt.BITS_EVEN)}", ha="center", va="center", fontsize=5)
        del lane
    for b in range(n_bytes + 1):
        ax.axvline(8 * b, ymin=0.2, ymax=0.8, c="black", lw=1.5)
        if b < n_bytes:
            ax.text(8 * b + 4, 0.6, f"byte {b}", ha="center", fontsize=8)
    demo = reference.pack_block([reference.encode_pair(min(i * 2, 15), i % 8) for i in range(n_pairs)])
    ax.text(0, 2.4, f"{n_pairs} pair codes x {pair_bits} bits = {n_pairs * pair_bits} bits = {n_bytes} bytes for "
            f"{qfmt.WEIGHTS_PER_BLOCK} weights ({qfmt.PAYLOAD_BITS_PER_WEIGHT} bits/weight); pair i at bits 7i..7i+6 "
            f"(low {qfmt.BITS_EVEN} = even lane q4, high {qfmt.BITS_ODD} = odd lane q3), little-endian. "
            f"Example bytes: {' '.join(f'{b:02x}' for b in demo)}", fontsize=7)
    ax.set_xlim(-1, total_bits + 1)
    ax.set_ylim(0, 3)
    ax.axis("off")
    _save(fig, path)


def _save(fig, stem: Path) -> None:
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=130)
    fig.savefig(stem.with_suffix(".pdf"))
    import matplotlib.pyplot as plt
    plt.close(fig)


QUALITY_COLS = ["method", "kind", "bpw", "x_vs_fp16", "rel_rmse", "max_abs_err", "ppl", "bpb", "dppl_pct",
                "paired_p_vs_fp32"]


def write_all(out: Path, rows, synthetic, memory, evalset, info, pareto_front, caption_note, seconds,
              update_readme: bool = False) -> None:
    from bench.machine import provenance, provenance_line

    prov = provenance()
    line = provenance_line(prov)
    front = pareto_front([(r["method"], r["bpw"], r["ppl"]) for r in rows if 3.0 <= r["bpw"] <= 4.5 and r["tokens"]])
    for r in rows:
        r["pareto_3_4.5"] = r["method"] in front
    write_csv(out / "quality.csv", rows, line)
    write_csv(out / "synthetic_rmse.csv", synthetic, line)
    write_csv(out / "model_memory.csv", memory, line)
    cap = (f"SmolLM2-135M, every block linear quantized; {evalset.describe()}. {caption_note}")
    (out / "quality.tex").write_text(latex(rows, QUALITY_COLS, cap))
    (out / "synthetic_rmse.tex").write_text(latex(synthetic, ["model", "method", "bpw", "rel_rmse", "max_abs_err"],
                                                  "Synthetic heavy-tailed matrices with the exact in_features of "
                                                  "LLaMA linears (sampled rows; synthetic, not real weights)."))
    (out / "model_memory.tex").write_text(latex(memory, list(memory[0]), "Whole-model weight memory computed "
                                                "from layer shapes (embeddings/norms FP16)."))
    tgt = targets(rows, front)
    md = "\n".join([f"<!-- {line} -->", "### Perplexity and weight error, SmolLM2-135M (measured)", "",
                    f"Protocol: {evalset.describe()}", "", caption_note, "",
                    markdown(rows, QUALITY_COLS + ["quantize_s", "eval_s"]), "", "Targets (issue 6):", "",
                    *[f"    {t}" for t in tgt], "",
                    "### Synthetic LLaMA shapes (relative RMSE, mean over the shapes of each model)", "",
                    markdown(_synthetic_summary(synthetic), ["model", "method", "bpw", "rel_rmse"]), "",
                    "### Whole-model weight memory (computed from shapes)", "",
                    markdown(memory, list(memory[0])), "", f"`make tables` ran in {seconds / 60:.1f} min."])
    (out / "tables.md").write_text(md + "\n")
    (out / "provenance.json").write_text(json.dumps({**prov, "model": {k: str(v) for k, v in info.items()},
                                                     "texts_sha256": evalset.doc_sha256,
                                                     "tokens_sha256": evalset.tokens_sha256}, indent=1))
    figures(out, rows, synthetic, memory, front)
    print(md)
    if update_readme:
        from bench import readme_blocks
        text = readme_blocks.README.read_text()
        body = "\n".join([f"Measured by `make tables` ({line}).", "", f"Protocol: {evalset.describe()}", "",
                          caption_note, "", markdown(rows, QUALITY_COLS), "", *[f"    {t}" for t in tgt]])
        readme_blocks.README.write_text(readme_blocks.render(text, "tables", body))


def _synthetic_summary(synthetic):
    agg = {}
    for r in synthetic:
        agg.setdefault((r["model"], r["method"]), []).append(r)
    return [{"model": m, "method": meth, "bpw": float(np.mean([x["bpw"] for x in v])),
             "rel_rmse": float(np.mean([x["rel_rmse"] for x in v]))} for (m, meth), v in agg.items()]
