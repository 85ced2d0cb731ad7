"""Figures of the end-to-end benchmark: quality (perplexity) vs latency / memory / energy with the Pareto front and
the FP32 reference, and the batch-size sweep. Each precision is labelled with its all-in bits per weight."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench import machine
from bench.report import add_footer, pareto_front, place_labels, pyplot, save_figure

from .precisions import labelled
from .report import is_number, median_of

__all__ = ["QUALITY_AXES", "figures", "quality_figure", "sweep_figure"]

# metric -> (axis label, file stem, scale to the axis unit)
QUALITY_AXES = {"tpot_s": ("time per output token, batch 1 (s, median)", "quality_vs_latency", 1.0),
                "peak_rss_bytes": ("peak RSS during generation, batch 1 (MiB)", "quality_vs_memory", 2.0 ** -20),
                "energy_idle_subtracted_j": ("energy per run, idle-subtracted (J, median)", "quality_vs_energy", 1.0)}
PRECISION_NOTE = ("INT8 dynamic = int8 weights with activations quantized on the fly (torch.ao); INT4 weight-only "
                  "= 4-bit weights, bf16 activations (torch CPU int4 kernel); bpw = all-in bits per weight of the "
                  "block linears (codes + scales + zeros).")


def quality_figure(t: dict, metric: str, footer: str, out: Path) -> list[Path]:
    """Perplexity vs ``metric`` at each precision's smallest batch; Pareto-optimal points as stars, FP32 dotted."""
    xlabel, stem, scale = QUALITY_AXES[metric]
    pts = []
    for (m, p), r in t["by"].items():
        if r.get("ppl") and not r.get("unavailable"):
            x = median_of(t, m, p, min(c["batch"] for c in r["configs"]), metric)
            if is_number(x):
                pts.append((m, p, x * scale, r["ppl"]["ppl"]))
    if not pts:
        return []
    plt = pyplot()
    model = pts[0][0]
    opt = pareto_front([(x, y) for _, _, x, y in pts])
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    for (_, _, x, y), o in zip(pts, opt):
        ax.scatter([x], [y], s=110 if o else 45, marker="*" if o else "o", color="C3" if o else "C0", zorder=3)
    front = sorted((x, y) for (_, _, x, y), o in zip(pts, opt) if o)
    if len(front) > 1:
        ax.plot(*zip(*front), color="C3", lw=1, ls="--", zorder=2)
    handles = [plt.Line2D([], [], ls="", marker="*", ms=11, color="C3", label="Pareto-optimal"),
               plt.Line2D([], [], ls="", marker="o", ms=7, color="C0", label="dominated"),
               plt.Line2D([], [], ls="--", color="C3", label="Pareto front")]
    fp32 = next((y for _, p, _, y in pts if p == "fp32"), None)
    if fp32 is not None:
        ax.axhline(fp32, color="dimgrey", lw=1, ls=":")
        handles.append(plt.Line2D([], [], ls=":", color="dimgrey", label=f"FP32 reference (ppl {fp32:.2f})"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"perplexity ({model}, lower is better)")
    ax.set_title(f"{model}: quality vs {stem.split('_vs_')[1]} (measured)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.margins(0.12, 0.12)
    place_labels(ax, [x for _, _, x, _ in pts], [y for _, _, _, y in pts], [labelled(p, m) for m, p, _, _ in pts],
                 fontsize=8)
    ax.legend(handles=handles, fontsize=8, loc="best")
    add_footer(fig, PRECISION_NOTE + " " + footer)
    return save_figure(fig, out / stem)


def sweep_figure(t: dict, model: str, series: dict, footer: str, out: Path) -> list[Path]:
    """Decode throughput vs batch size, one line per precision (median, bars min-max)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    for p, v in series.items():
        bs, med, lo, hi = zip(*v)
        ax.errorbar(bs, med, yerr=[np.subtract(med, lo), np.subtract(hi, med)], marker="o", capsize=3,
                    label=labelled(p, model))
    ax.set_xlabel("batch size")
    ax.set_ylabel("decode throughput (tokens/s, median; bars min-max)")
    ax.set_title(f"{model}: batch-size sweep on CPU (measured)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    add_footer(fig, PRECISION_NOTE + " " + footer)
    return save_figure(fig, out / f"batch_sweep_{model}")


def figures(t: dict, prov: dict, out: Path) -> list[Path]:
    footer = machine.provenance_line(prov)
    metrics = ["tpot_s", "peak_rss_bytes"]
    if any(is_number(r.get("energy_idle_subtracted_j")) for r in t["raw"]):
        metrics.append("energy_idle_subtracted_j")
    files = [p for m in metrics for p in quality_figure(t, m, footer, out)]
    sweep: dict = {}
    for r in t["summary"]:
        if r["metric"] == "decode_tok_s" and is_number(r.get("median")):
            sweep.setdefault((r["model"], r["precision"]), []).append((r["batch"], r["median"], r.get("min"),
                                                                       r.get("max")))
    for model in sorted({m for m, _ in sweep}):
        series = {p: sorted(v) for (m, p), v in sweep.items() if m == model and len(v) > 1}
        if series:
            files += sweep_figure(t, model, series, footer, out)
    return files
