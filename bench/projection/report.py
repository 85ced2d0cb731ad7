"""Text of the projection: numbers for display, markdown tables (rows, validation, formats, hardware, models),
notes on the CPU measurement and the utilisations, the LaTeX table and the docs/projection.md block. Every number
shown is modelled; the text says so."""
from __future__ import annotations

import math

from bench.formats import FORMATS
from bench.report import latex_table, markdown_table

from .context import Context
from .hardware import GPU_DEFAULT_UTILISATION, GPU_UTILISATION_SOURCE
from .models import kv_cache_bytes, param_counts

__all__ = ["sig", "gb", "VALIDATION_HEADERS", "DOCS_HEADERS", "validation_table", "validation_notes", "rows_table",
           "cpu_summary", "utilisation_summary", "projection_latex", "docs_block", "projection_markdown"]


def sig(x, digits: int = 3) -> str:
    """Round to `digits` significant figures for display (no scientific notation below 1e9)."""
    if x is None:
        return "n/a"
    if isinstance(x, int):
        return f"{x:,}"
    if x == 0 or not math.isfinite(x):
        return str(x)
    mag = math.floor(math.log10(abs(x)))
    if mag >= 9:
        return f"{x:.{digits - 1}e}"
    decimals = max(digits - 1 - mag, 0)
    return f"{x:,.{decimals}f}"


def gb(x: float) -> str:
    return sig(x / 1e9)


VALIDATION_HEADERS = ["published point", "role", "hardware", "model", "format", "devices (published / needed)",
                      "published", "projected (modelled)", "error %", "bandwidth-only bound (modelled)",
                      "its error %"]


def _metric_unit(metric: str) -> str:
    return "tok/s" if metric == "tok_s" else "ms/token"


def _validation_body(rows: list[dict], ctx: Context, bandwidth_only: bool) -> list[list[str]]:
    body = []
    for r in rows:
        u = _metric_unit(r["metric"])
        role = "calibration (0 by construction)" if r["role"] == "calibration" else "held-out validation"
        devs = f"{r['devices_published'] if r['devices_published'] else '?'} / {r['devices_modelled']}"
        row = [r["id"], role, ctx.hardware[r["hardware"]]["name"], ctx.models[r["model"]]["name"],
               FORMATS[r["format"]].label, devs, f"{sig(r['published'])} {u}", f"{sig(r['projected'])} {u}",
               f"{r['error_pct']:+.1f}"]
        if bandwidth_only:
            row += [f"{sig(r['bandwidth_only'])} {u}", f"{r['bandwidth_only_error_pct']:+,.1f}"]
        body.append(row)
    return body


def validation_table(rows: list[dict], ctx: Context) -> str:
    return markdown_table(VALIDATION_HEADERS, _validation_body(rows, ctx, bandwidth_only=True))


def validation_notes(rows: list[dict], ctx: Context) -> str:
    lines = []
    for hid, c in ctx.calibrations.items():
        lines.append(f"- {ctx.hardware[hid]['name']}: pipeline-latency model, tau = {sig(c['tau_s'] * 1e6)} us per "
                     f"decoder layer, calibrated on `{c['point']}` (modelled).")
    for r in rows:
        lines.append(f"- `{r['id']}`: {r['method']}; context {r['context']}, batch {r['batch']}. "
                     f"{r['format_note']}. Source: {r['source']}.")
    return "\n".join(lines)


def rows_table(rows: list[dict], ctx: Context, with_model: bool = True) -> str:
    headers = (["model"] if with_model else []) + [
        "format", "all-in bpw", "weights GB", "KV GB", "hardware", "devices (weights / +KV)",
        "decode tok/s bound", "decode tok/s at util.", "util.", "regime", "prefill tok/s bound", "J/token at TDP"]
    body = []
    for r in rows:
        body.append(([ctx.models[r["model"]]["name"]] if with_model else []) + [
            FORMATS[r["format"]].label, f"{r['bits_per_weight']:.3f}", gb(r["weights_bytes"]), gb(r["kv_bytes"]),
            ctx.hardware[r["hardware"]]["name"], f"{r['devices_weights']} / {r['devices']}",
            sig(r["decode_tok_s_bound"]), sig(r["decode_tok_s"]), f"{r['utilisation']:.2f}", r["regime"],
            sig(r["prefill_tok_s_bound"]), sig(r["energy_j_per_token"])])
    return markdown_table(headers, body)


def cpu_summary(ctx: Context) -> str:
    if ctx.cpu is None:
        return "CPU not measured in this run."
    bw = ctx.cpu["bandwidth"]
    kern = "; ".join(f"{k} median {sig(v['median_gbps'])} GB/s (IQR {sig(v['iqr_gbps'])})"
                     for k, v in bw["kernels"].items())
    mm = ctx.cpu["gemm"]
    return (f"CPU (measured in this run): {ctx.cpu['cpu_model']}, {bw['threads']} threads, {sig(bw['size_mib'])} "
            f"MiB arrays x {bw['repeats']} repeats: {kern}; the projection uses the {bw['headline_kernel']} "
            f"median. float32 GEMM n={mm['n']} x {mm['repeats']}: best {sig(mm['max_gflops'])} GFLOP/s (used as the "
            f"compute ceiling), median {sig(mm['median_gflops'])}. Memory "
            f"{gb(ctx.cpu['memory_bytes'])} GB (MemTotal).")


def utilisation_summary(ctx: Context) -> str:
    if not ctx.measured:
        return ("Measured bandwidth utilisation: no measured rows yet (bench/results/*.csv with `hardware` and "
                f"`bandwidth_utilisation` columns); GPUs use the documented default {GPU_DEFAULT_UTILISATION} "
                f"({GPU_UTILISATION_SOURCE}).")
    parts = [f"{hw}: {sig(v['median'])} (median of {v['n']} rows, {', '.join(v['files'])})"
             for hw, v in sorted(ctx.measured.items())]
    return ("Measured bandwidth utilisation in use: " + "; ".join(parts) +
            f". Other GPUs use the documented default {GPU_DEFAULT_UTILISATION} ({GPU_UTILISATION_SOURCE}).")


def projection_latex(rows: list[dict], ctx: Context, prov_line: str) -> str:
    cols = ["Model", "Format", "bpw", "GB", "Hardware", "Devices", "tok/s bound", "Regime"]
    body = [[ctx.models[r["model"]]["name"], FORMATS[r["format"]].label, f"{r['bits_per_weight']:.3f}",
             gb(r["weights_bytes"]), ctx.hardware[r["hardware"]]["name"], str(r["devices"]),
             sig(r["decode_tok_s_bound"]), r["regime"]] for r in rows]
    return latex_table(cols, body, f"Modelled decode throughput bound (batch {rows[0]['batch']}, context "
                       f"{rows[0]['context']}). All figures modelled.", label="projection", align="llrrlrrl",
                       longtable=True, comment=f"generated by bench.projection -- all numbers modelled; {prov_line}")


DOCS_HEADERS = ["published point", "role", "hardware", "model", "format", "devices (published / needed, MODELLED)",
                "published (source)", "projected (MODELLED)", "error of the model %"]


def _docs_table(rows: list[dict], ctx: Context) -> str:
    """The validation table without the bandwidth-only columns (they stay in validation.md)."""
    return markdown_table(DOCS_HEADERS, _validation_body(rows, ctx, bandwidth_only=False))


def _bandwidth_only_note(rows: list[dict], ctx: Context) -> str:
    """Why the SRAM machines use the pipeline-latency model, as the ratio bandwidth-only bound / published."""
    ratios = [r["bandwidth_only"] / r["published"] for r in rows
              if r["hardware"] in ctx.calibrations and r["metric"] == "tok_s" and r["published"]]
    if not ratios:
        return ""
    return (f" For the Groq/Cerebras points, bytes / on-chip bandwidth alone (a plain roofline) would predict "
            f"{sig(min(ratios))}x to {sig(max(ratios))}x their published tokens/s: weight streaming is not what "
            "limits those machines, hence the calibrated per-layer latency. That bandwidth-only bound and its "
            "error are in bench/results/projection/validation.md.")


def docs_block(vrows: list[dict], ctx: Context, prov: dict) -> str:
    """The `projection` block of docs/projection.md."""
    sha = (prov.get("git_sha") or "no-git")[:12]
    return "\n".join([
        "### Throughput projection: validation against published figures (every projection MODELLED)",
        "",
        f"Generated by `python -m bench.projection --all --update-docs` on {prov['date_utc']} (git {sha}); "
        "every number below except the published figures is MODELLED by that command (computed from published "
        "specifications, not measured on that hardware); do not edit by hand. Error of the model % = (projected - "
        "published) / published. GPU rows use the HBM roofline; Groq/Cerebras rows use a pipeline-latency model "
        "whose per-layer latency is calibrated on the row marked calibration (its 0 % is not evidence)."
        + _bandwidth_only_note(vrows, ctx),
        "",
        _docs_table(vrows, ctx),
        "",
        validation_notes(vrows, ctx),
        "",
        "Full tables, figures and provenance: `bench/results/projection/` (`make projection`).",
    ])


def _inputs_tables(ctx: Context, context: int, batch: int) -> list[str]:
    """The formats, hardware and models the projection used, with their sources."""
    return [
        "## Formats\n",
        markdown_table(["format", "storage formula (source)"], [[f.label, f.source] for f in ctx.formats]) + "\n",
        "## Hardware\n",
        markdown_table(["id", "name", "memory GB", "bandwidth GB/s", "FP16 TFLOP/s", "power W", "util.", "source"],
                       [[h["id"], h["name"], gb(h["memory_bytes"]), sig(h["bandwidth_Bps"] / 1e9),
                         sig(h["flops"] / 1e12), sig(h.get("power_w")), f"{h['utilisation']:.2f}", h["source"]]
                        for h in ctx.hardware.values()]) + "\n",
        "## Models\n",
        markdown_table(["id", "params (B)", "linear params (B)", "tied", f"KV GB at {context} x {batch}", "source"],
                       [[m["id"], sig(param_counts(m)["total"] / 1e9), sig(param_counts(m)["linear"] / 1e9),
                         str(m["tied_embeddings"]), gb(kv_cache_bytes(m, context, batch)), m["source"]]
                        for m in ctx.models.values()]) + "\n"]


def projection_markdown(rows: list[dict], vrows: list[dict], ctx: Context, context: int, batch: int,
                        prov_line: str) -> str:
    """bench/results/projection/projection.md: settings, validation, inputs, then one table per model."""
    md = ["# Modelled accelerator throughput projection\n",
          f"Provenance: {prov_line}\n",
          f"Every tokens/s, GB, device count and J/token below is **modelled** (batch {batch}, context {context}, "
          f"FP16 KV cache, FP16 embeddings/lm_head/norms, weight-only quantization of the decoder linears). "
          f"'decode tok/s bound' = roofline at utilisation 1.0 (GPU/CPU) or the calibrated pipeline model "
          f"(Groq/Cerebras); 'at util.' applies the bandwidth utilisation. Multi-device rows assume ideal tensor "
          f"parallelism (interconnect ignored) on the minimum device count that holds weights + KV.\n",
          cpu_summary(ctx) + "\n", utilisation_summary(ctx) + "\n",
          "## Validation\n", validation_table(vrows, ctx) + "\n", validation_notes(vrows, ctx) + "\n",
          *_inputs_tables(ctx, context, batch)]
    for mid, m in ctx.models.items():
        sub = [r for r in rows if r["model"] == mid]
        if sub:
            md += [f"## {m['name']} (modelled)\n", rows_table(sub, ctx, with_model=False) + "\n"]
    return "\n".join(md)
