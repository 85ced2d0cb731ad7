"""Figures of `make tables`, drawn from its rows (the run's own, or its CSVs read back by --report-only):
perplexity vs bits (Pareto front, FP32 reference), weight error vs bits (SmolLM2 and synthetic LLaMA shapes),
whole-model memory vs model size, and the 7-bit pair / 7-byte block layout."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from q35 import format as qfmt
from q35 import reference

from bench.projection.catalogue import load_hardware
from bench.projection.figures import memory_vs_size_figure
from bench.report import add_footer, place_labels, pyplot, save_figure

__all__ = ["KIND_STYLE", "figures", "ppl_figure", "rmse_figure", "memory_figure", "encoding_figure"]

MAX_BPW = 9          # the quality figures show the methods up to 9 bits per weight (FP32 is a reference line)
ZOOM_BPW, ZOOM_PPL = 5.0, 2.5   # perplexity zoom panel: <= 5 bits per weight and <= 2.5x the FP32 perplexity
RMSE_ZOOM_BPW = (3.0, 4.1)      # weight-error zoom panel: the 3-4 bit class, where q35 and the 3-bit anchors crowd
KIND_STYLE = {"q35": {"color": "tab:red", "marker": "o"}, "baseline": {"color": "tab:blue", "marker": "s"},
              "anchor": {"color": "tab:green", "marker": "^"}}
KIND_LABEL = {"q35": "q35 (this work)", "baseline": "baseline (RTN, FP16, INT8)",
              "anchor": "anchor (HQQ, llama.cpp)"}


def _kind_handles(plt, kinds) -> list:
    return [plt.Line2D([], [], ls="", ms=7, label=KIND_LABEL[k], **KIND_STYLE[k]) for k in KIND_STYLE if k in kinds]


def _scatter_by_kind(ax, rows: list[dict], y: str, size: float = 30) -> None:
    for kind, style in KIND_STYLE.items():
        sel = [r for r in rows if r["kind"] == kind]
        if sel:
            ax.scatter([r["bpw"] for r in sel], [r[y] for r in sel], s=size, zorder=3, c=style["color"],
                       marker=style["marker"])


def _ppl_panel(ax, pts: list[dict], front: set[str], labelled: list[dict]) -> None:
    """Points by kind, the Pareto-front points ringed and joined, labels on ``labelled``."""
    _scatter_by_kind(ax, pts, "ppl")
    on = sorted((r for r in pts if r["method"] in front), key=lambda r: r["bpw"])
    ax.scatter([r["bpw"] for r in on], [r["ppl"] for r in on], s=140, facecolors="none", edgecolors="black",
               lw=1.2, zorder=4)
    ax.plot([r["bpw"] for r in on], [r["ppl"] for r in on], "k--", lw=1)
    ax.set_xlabel("all-in bits per weight (block linears)")
    ax.grid(alpha=0.3, which="both")
    place_labels(ax, [r["bpw"] for r in labelled], [r["ppl"] for r in labelled], [r["method"] for r in labelled])


def ppl_figure(rows: list[dict], front: set[str], stem: Path, footer: str) -> list[Path]:
    """Perplexity vs all-in bits per weight: left every method up to MAX_BPW (log scale), right a linear zoom on
    the methods within ZOOM_PPL x FP32's perplexity at <= ZOOM_BPW bits, where most of them crowd; the measured
    Pareto front ringed and joined; FP32 as a reference line."""
    plt = pyplot()
    pts = [r for r in rows if r["bpw"] <= MAX_BPW and r["tokens"]]
    fp32 = next((r for r in rows if r["method"] == "FP32" and r["tokens"]), None)
    zoom = [r for r in pts if fp32 and r["bpw"] <= ZOOM_BPW and r["ppl"] <= ZOOM_PPL * fp32["ppl"]]
    fig, (ax, az) = plt.subplots(1, 2, figsize=(16, 7.5), gridspec_kw={"width_ratios": [1, 1.3]})
    _ppl_panel(ax, pts, front, [r for r in pts if r not in zoom])
    ax.set_yscale("log")
    ax.set_ylabel("token perplexity (SmolLM2-135M)")
    ax.set_title("All methods up to 9 bits per weight (log scale)", fontsize=10)
    handles = _kind_handles(plt, {r["kind"] for r in pts}) + [
        plt.Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec="black", label="on the Pareto front (3-4.5 bpw)"),
        plt.Line2D([], [], ls="--", c="k", label="Pareto front (measured)")]
    if fp32 is not None:
        for a in (ax, az):
            a.axhline(fp32["ppl"], color="dimgrey", lw=1, ls=":")
        handles.append(plt.Line2D([], [], ls=":", c="dimgrey", label=f"FP32 reference (ppl {fp32['ppl']:.2f})"))
    if zoom:
        _ppl_panel(az, zoom, front, zoom)
        az.margins(0.08, 0.1)
        az.set_title(f"Zoom (grey box): <= {ZOOM_BPW:g} bits per weight and <= {ZOOM_PPL:g}x the FP32 perplexity, "
                     "linear scale", fontsize=10)
        ax.indicate_inset_zoom(az, edgecolor="grey")
    else:
        az.set_visible(False)
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    fig.suptitle("Perplexity vs bits per weight (measured in this run)")
    add_footer(fig, footer)
    return save_figure(fig, stem)


def _synthetic_means(synthetic: list[dict]) -> list[dict]:
    """Each method's mean bits and relative RMSE over every synthetic shape of every model."""
    by: dict[str, list[dict]] = {}
    for r in synthetic:
        by.setdefault(r["method"], []).append(r)
    return [{"method": m, "kind": "q35" if m.startswith("q35") else "baseline",
             "bpw": float(np.mean([x["bpw"] for x in v])), "rel_rmse": float(np.mean([x["rel_rmse"] for x in v]))}
            for m, v in by.items()]


def _rmse_panel(plt, a, pts: list[dict], title: str, labelled: list[dict] | None = None) -> None:
    """Points by kind, labels on ``labelled`` (default: every point)."""
    labelled = pts if labelled is None else labelled
    _scatter_by_kind(a, pts, "rel_rmse")
    a.set_yscale("log")
    a.set_xlabel("all-in bits per weight")
    a.set_ylabel("relative RMSE of the weights vs FP32 (log scale)")
    a.set_title(title, fontsize=10)
    a.grid(alpha=0.3, which="both")
    a.margins(0.06, 0.08)
    place_labels(a, [r["bpw"] for r in labelled], [r["rel_rmse"] for r in labelled],
                 [r["method"] for r in labelled])
    a.legend(handles=_kind_handles(plt, {r["kind"] for r in pts}), fontsize=8, loc="upper right")


def rmse_figure(rows: list[dict], synthetic: list[dict], stem: Path, footer: str) -> list[Path]:
    """Relative RMSE of the weights vs bits: SmolLM2's block linears (all methods, and a zoom on the 3-4 bit
    class where q35 and the 3-bit anchors crowd), and the synthetic LLaMA shapes."""
    plt = pyplot()
    fig = plt.figure(figsize=(16, 13))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.3, 1], width_ratios=[1, 1.3])
    ax, az, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    pts = [r for r in rows if r["bpw"] <= MAX_BPW and r["rel_rmse"] > 0]
    lo, hi = RMSE_ZOOM_BPW
    zoom = [r for r in pts if lo <= r["bpw"] <= hi]
    _rmse_panel(plt, ax, pts, "SmolLM2-135M block linears (real weights)", [r for r in pts if r not in zoom])
    if zoom:
        _rmse_panel(plt, az, zoom, f"Zoom (grey box): SmolLM2-135M, {lo:g}-{hi:g} bits per weight")
        ax.indicate_inset_zoom(az, edgecolor="grey")
    else:
        az.set_visible(False)
    _rmse_panel(plt, ax2, [r for r in _synthetic_means(synthetic) if r["bpw"] <= MAX_BPW],
                "Synthetic heavy-tailed matrices with LLaMA-2/3 shapes (mean over the models; not real weights)")
    fig.suptitle("Weight error vs bits per weight (measured in this run)")
    fig.tight_layout()
    add_footer(fig, footer)
    return save_figure(fig, stem)


def memory_figure(memory: list[dict], stem: Path, footer: str) -> list[Path]:
    """Whole-model weight memory of LLaMA-2/3 models per format, with the memory of one catalogued device."""
    series: dict[str, tuple[list, list, float]] = {}
    for fmt in dict.fromkeys(r["format"] for r in memory):
        rs = sorted((r for r in memory if r["format"] == fmt), key=lambda r: r["params_B"])
        series[fmt] = ([r["params_B"] for r in rs], [r["weights_GB"] for r in rs],
                       float(np.mean([r["linear_bpw"] for r in rs])))
    capacities: dict[float, list[str]] = {}
    for h in load_hardware().values():
        if not h.get("measured"):
            capacities.setdefault(float(h["memory_gb"]), []).append(h["name"])
    return memory_vs_size_figure(series, capacities, stem, footer,
                                 "Weight memory of LLaMA-2/3 models, computed from layer shapes")


def encoding_figure(path: Path) -> list[Path]:
    """The 7-bit pair and 7-byte block layout, drawn from the format's constants and pack_block itself."""
    plt = pyplot()
    n_pairs, pair_bits, n_bytes = qfmt.PAIRS_PER_BLOCK, qfmt.PAIR_BITS, qfmt.BLOCK_BYTES
    fig, ax = plt.subplots(figsize=(11, 3.2))
    cmap = plt.get_cmap("tab10")
    total_bits = 8 * n_bytes
    for bit in range(total_bits):
        pair, within = bit // pair_bits, bit % pair_bits
        ax.add_patch(plt.Rectangle((bit, 1), 1, 1, color=cmap(pair), alpha=0.9 if within < qfmt.BITS_EVEN else 0.5))
        ax.text(bit + 0.5, 1.5, f"w{2 * pair + (within >= qfmt.BITS_EVEN)}", ha="center", va="center", fontsize=5)
    for b in range(n_bytes + 1):
        ax.vlines(8 * b, 0.4, 2.2, colors="black", lw=1.5)
        if b < n_bytes:
            ax.text(8 * b + 4, 0.6, f"byte {b}", ha="center", fontsize=8)
    demo = reference.pack_block([reference.encode_pair(min(i * 2, 15), i % 8) for i in range(n_pairs)])
    caption = (f"{n_pairs} pair codes x {pair_bits} bits = {n_pairs * pair_bits} bits = {n_bytes} bytes for "
            f"{qfmt.WEIGHTS_PER_BLOCK} weights ({qfmt.PAYLOAD_BITS_PER_WEIGHT} bits/weight); pair i at bits 7i..7i+6 "
            f"(low {qfmt.BITS_EVEN} = even lane q4, high {qfmt.BITS_ODD} = odd lane q3), little-endian. "
            f"Example bytes: {' '.join(f'{b:02x}' for b in demo)}")
    ax.text(0, 2.35, "\n".join(textwrap.wrap(caption, 120)), fontsize=8, va="bottom")
    ax.set_xlim(-1, total_bits + 1)
    ax.set_ylim(0, 3.2)
    ax.axis("off")
    return save_figure(fig, path)


def figures(out: Path, rows, synthetic, memory, front: set[str], footer: str) -> list[Path]:
    return (ppl_figure(rows, front, out / "ppl_vs_bpw", footer)
            + rmse_figure(rows, synthetic, out / "rmse_vs_bpw", footer)
            + memory_figure(memory, out / "memory_vs_size", footer)
            + encoding_figure(out / "encoding"))
