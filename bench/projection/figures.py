"""The projection's figures (all numbers modelled): weight memory vs model size with each device's capacity, and
decode tokens/s vs bits per weight on every hardware entry."""
from __future__ import annotations

from pathlib import Path

from bench.report import add_footer, distinct_styles, label_lines_right, pyplot, save_figure

from .context import Context
from .models import param_counts, weight_bytes
from .report import sig

__all__ = ["MAIN_FIGURE_MODELS", "device_capacities", "memory_vs_size_figure", "memory_figure", "tokens_figure", "make_figures"]

MAIN_FIGURE_MODELS = ("llama-3-8b", "llama-2-70b")


def _capacity_lines(ax, capacities: dict[float, list[str]]) -> None:
    """One dotted line per device memory size (GB), its devices named in the right margin."""
    for cap in capacities:
        ax.axhline(cap, ls=":", lw=0.8, color="grey")
    label_lines_right(ax, list(capacities), [f"{sig(cap)} GB: {', '.join(names)}" for cap, names in capacities.items()])


def device_capacities(hardware: dict) -> dict[float, list[str]]:
    """Memory per device in GB -> the names of the devices with that much (resolved hardware entries)."""
    out: dict[float, list[str]] = {}
    for h in hardware.values():
        out.setdefault(h["memory_bytes"] / 1e9, []).append(h["name"])
    return out


def memory_vs_size_figure(series: dict[str, tuple[list, list, float]], capacities: dict[float, list[str]],
                          stem: Path, footer: str, title: str) -> list[Path]:
    """Top: weight GB vs parameters (billions) per format, with one device's capacity; bottom: the formats under
    6 bits per weight as stored bits per parameter, where formats a few percent apart separate.
    ``series``: format label -> (parameters in billions, GB, the format's nominal bits per weight)."""
    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9.5, 10), sharex=True)
    for (label, (xs, gbs, bits)), style in zip(series.items(), distinct_styles(len(series))):
        ax.plot(xs, gbs, ms=4, lw=1, label=label, **style)
        if bits < 6:
            ax2.plot(xs, [8 * g / x for g, x in zip(gbs, xs)], ms=4, lw=1, label=label, **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel("weight memory, GB")
    ax.set_title(title + "; dotted lines: one device's memory", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax2.set_xlabel("model parameters (billions)")
    ax2.set_ylabel("stored bits per parameter, whole model")
    ax2.set_title("Formats under 6 bits per weight, per parameter (embeddings and norms included)", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, loc="upper right")
    fig.subplots_adjust(right=0.62, hspace=0.15, bottom=0.08)
    _capacity_lines(ax, capacities)
    add_footer(fig, footer)
    return save_figure(fig, stem)


def memory_figure(ctx: Context, out_dir: Path, prov_line: str) -> list[Path]:
    main = sorted((m for m in ctx.models.values() if m.get("role", "main") == "main"),
                  key=lambda m: param_counts(m)["total"])
    xs = [param_counts(m)["total"] / 1e9 for m in main]
    series = {f.label: (xs, [weight_bytes(m, f)["total"] / 1e9 for m in main], f.bits_per_weight(4096, 4096))
              for f in ctx.formats}
    return memory_vs_size_figure(series, device_capacities(ctx.hardware), out_dir / "memory_vs_model_size",
                                 prov_line, "Weight memory vs model size (modelled; FP16 embeddings and norms)")


def _device_note(pts: list[tuple]) -> str:
    """Device counts at the fewest and at the most bits per weight ('' when one device always suffices)."""
    lo, hi = pts[0][2], pts[-1][2]
    if lo == hi == 1:
        return ""
    return f" [{lo} device{'s' if lo > 1 else ''}" + ("" if lo == hi else f" -> {hi} at {pts[-1][0]:.0f} bpw") + "]"


def tokens_figure(ctx: Context, rows: list[dict], out_dir: Path, prov_line: str) -> list[Path]:
    """Decode tokens/s vs bits per weight, one panel per main model; the legend gives each machine's device
    count (the minimum that holds weights + KV)."""
    plt = pyplot()
    models = [mid for mid in MAIN_FIGURE_MODELS if mid in ctx.models]
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 6.5), squeeze=False)
    for ax, mid in zip(axes[0], models):
        for hid, h in ctx.hardware.items():
            pts = sorted((r["bits_per_weight"], r["decode_tok_s"], r["devices"]) for r in rows
                         if r["model"] == mid and r["hardware"] == hid)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                        label=h["name"] + _device_note(pts))
        ax.set_yscale("log")
        ax.set_xlabel("all-in bits per weight of the linears")
        ax.set_ylabel("decode tokens/s, batch 1 (modelled)")
        ax.set_title(f"{ctx.models[mid]['name']}: decode tokens/s vs bits per weight (modelled)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2,
                  title="[devices: minimum that holds weights + KV, ideal tensor parallel]", title_fontsize=6.5)
    fig.tight_layout()
    add_footer(fig, prov_line)
    return save_figure(fig, out_dir / "tokens_vs_bits_per_weight")


def make_figures(ctx: Context, rows: list[dict], out_dir: Path, prov_line: str) -> list[Path]:
    return memory_figure(ctx, out_dir, prov_line) + tokens_figure(ctx, rows, out_dir, prov_line)
