"""Statistics of the end-to-end benchmark from the workers' outputs: raw / config / summary / derived rows (Welch
and paired tests, Cohen's d: bench.report.stats), sanity flags, and the rows of its accuracy, efficiency,
trade-off and batch-sweep tables."""
from __future__ import annotations

import math

import numpy as np

from bench.report import cohens_d, paired, relative_change, summarize, welch

from .precisions import LABEL, bits_per_weight
from .probes import UNAVAILABLE

__all__ = ["RUN_METRICS", "ACC_HEAD", "EFF_HEAD", "TR_HEAD", "SWEEP_HEAD", "is_number", "baseline_precision",
           "tables_from_results", "sanity_checks", "median_of", "table_rows"]

RUN_METRICS = ("ttft_s", "prefill_tok_s", "decode_tok_s", "tpot_s", "e2e_s", "energy_j", "energy_idle_subtracted_j")


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def baseline_precision(device: str) -> str:
    return "fp32" if device == "cpu" else "fp16"


# --- tables from the workers' outputs -----------------------------------------------------------------------
def _raw_and_config_rows(results: list[dict]) -> tuple[list[dict], list[dict]]:
    raw, configs = [], []
    for res in results:
        key = {"model": res["model"], "precision": res["precision"], "device": res["device"]}
        raw += [{**key, **r} for r in res.get("runs", [])]
        ppl = res.get("ppl") or {}
        for c in res.get("configs", []):
            configs.append({**key, "batch": c["batch"], "peak_rss_bytes": c.get("peak_rss_bytes"),
                            "rss_before_bytes": c.get("rss_before_bytes"),
                            "weight_bytes": res.get("weight_bytes"), "block_linear_bytes": res.get("block_linear_bytes"),
                            "ppl": ppl.get("ppl"), "bpb": ppl.get("bpb"), "energy_status": res.get("energy_status"),
                            "kernel": (res.get("notes") or {}).get("kernel", ""),
                            "first_tokens": " ".join(map(str, c.get("first_tokens") or []))})
        if res.get("unavailable"):
            configs.append({**key, "batch": "", "unavailable": res["unavailable"]})
    return raw, configs


def _summary_rows(results: list[dict]) -> list[dict]:
    """Per (model, precision, batch, metric): statistics of the timed runs, and the single-valued metrics."""
    summary = []
    for res in results:
        key = {"model": res["model"], "precision": res["precision"], "device": res["device"]}
        for c in res.get("configs", []):
            b = c["batch"]
            runs = [r for r in res["runs"] if r["batch"] == b]
            for m in RUN_METRICS:
                vals = [r[m] for r in runs if is_number(r.get(m))]
                summary.append({**key, "batch": b, "metric": m,
                                **(summarize(vals) if vals else {"n": 0, "median": UNAVAILABLE})})
            for m, v in (("peak_rss_bytes", c.get("peak_rss_bytes")), ("weight_bytes", res.get("weight_bytes")),
                         ("ppl", (res.get("ppl") or {}).get("ppl")), ("bpb", (res.get("ppl") or {}).get("bpb"))):
                if v is not None:
                    summary.append({**key, "batch": b, "metric": m, "n": 1, "median": v, "mean": v})
    return summary


def _derived_row(res: dict, base: dict, c: dict, bc: dict) -> dict:
    """One precision vs the baseline at one batch size: speed-ups with Welch t-tests and Cohen's d from the raw
    runs, memory / weight / energy reductions, the accuracy drop with a paired test on per-window NLL."""
    b = c["batch"]
    runs = [r for r in res["runs"] if r["batch"] == b]
    bruns = [r for r in base["runs"] if r["batch"] == b]
    row = {"model": res["model"], "precision": res["precision"], "baseline": base["precision"], "batch": b}
    for m in ("decode_tok_s", "ttft_s", "e2e_s"):
        x, y = [r[m] for r in runs], [r[m] for r in bruns]
        mx, my = float(np.median(x)), float(np.median(y))
        row[f"speedup_{m}"] = (mx / my) if m == "decode_tok_s" else (my / mx)
        w = welch(x, y)
        row[f"welch_t_{m}"], row[f"welch_p_{m}"] = w["t"], w["p"]
        row[f"cohens_d_{m}"] = cohens_d(x, y)
    pr, pb = c.get("peak_rss_bytes"), bc.get("peak_rss_bytes")
    row["memory_reduction_pct"] = -relative_change(pr, pb) if pr and pb else math.nan
    row["weight_reduction_pct"] = -relative_change(res.get("weight_bytes"), base.get("weight_bytes"))
    ex = [r["energy_idle_subtracted_j"] for r in runs if is_number(r.get("energy_idle_subtracted_j"))]
    ey = [r["energy_idle_subtracted_j"] for r in bruns if is_number(r.get("energy_idle_subtracted_j"))]
    row["energy_reduction_pct"] = (-relative_change(float(np.median(ex)), float(np.median(ey)))
                                   if ex and ey else UNAVAILABLE)
    q, qb = res.get("ppl"), base.get("ppl")
    if q and qb:
        row["ppl"], row["ppl_baseline"] = q["ppl"], qb["ppl"]
        row["accuracy_drop_pct"] = relative_change(q["ppl"], qb["ppl"])
        pt = paired(q["nll"], qb["nll"])
        row["paired_nll_diff_per_window"], row["paired_t"], row["paired_p"] = pt["mean_diff"], pt["t"], pt["p"]
    else:
        row["accuracy_drop_pct"] = "n/a (synthetic: speed only)" if "synthetic" in res["model"] else math.nan
    return row


def _derived_rows(results: list[dict], by: dict) -> list[dict]:
    derived = []
    for res in results:
        base = by.get((res["model"], baseline_precision(res["device"])))
        if base is None or res is base or res.get("unavailable") or base.get("unavailable"):
            continue
        for c in res.get("configs", []):
            bc = next((x for x in base["configs"] if x["batch"] == c["batch"]), None)
            if bc is not None:
                derived.append(_derived_row(res, base, c, bc))
    return derived


def tables_from_results(results: list[dict]) -> dict:
    """raw rows, config rows, summary rows and derived rows from the workers' outputs."""
    by = {(res["model"], res["precision"]): res for res in results}
    raw, configs = _raw_and_config_rows(results)
    return {"raw": raw, "configs": configs, "summary": _summary_rows(results), "derived": _derived_rows(results, by),
            "by": by}


# --- sanity flags -------------------------------------------------------------------------------------------
def _pair_flags(model: str, lo: str, hi: str, a: dict, b: dict) -> list[str]:
    """Flags for a lower-bit precision ``lo`` (result ``a``) against a higher-bit ``hi`` (result ``b``)."""
    out = []
    blo, bhi = bits_per_weight(lo, model), bits_per_weight(hi, model)
    if a.get("ppl") and b.get("ppl"):
        pt = paired(a["ppl"]["nll"], b["ppl"]["nll"])
        if pt["mean_diff"] < 0 and is_number(pt["p"]) and pt["p"] < 0.05:
            out.append(f"FLAG {model}: {LABEL[lo]} ({blo:.3g} bits) has better perplexity than {LABEL[hi]} "
                       f"({bhi:.3g} bits) beyond noise (paired p={pt['p']:.3g}, {a['ppl']['ppl']:.3f} vs "
                       f"{b['ppl']['ppl']:.3f})")
        elif pt["mean_diff"] < 0:
            out.append(f"note {model}: {LABEL[lo]} perplexity {a['ppl']['ppl']:.3f} below {LABEL[hi]} "
                       f"{b['ppl']['ppl']:.3f}, within noise (paired p={pt['p']:.3g})")
    wa, wb = a.get("block_linear_bytes"), b.get("block_linear_bytes")
    if wa and wb and wa >= wb:
        out.append(f"FLAG {model}: block-linear weight bytes do not decrease with bits: {LABEL[lo]} "
                   f"{wa / 1e6:.1f} MB >= {LABEL[hi]} {wb / 1e6:.1f} MB")
    if a.get("weight_bytes") and b.get("weight_bytes") and a["weight_bytes"] >= b["weight_bytes"]:
        out.append(f"note {model}: whole-model weight bytes {LABEL[lo]} {a['weight_bytes'] / 1e6:.1f} MB "
                   f">= {LABEL[hi]} {b['weight_bytes'] / 1e6:.1f} MB (only block linears change precision; "
                   f"embeddings/lm_head keep {LABEL[lo]}'s model dtype)")
    pa = {c["batch"]: c.get("peak_rss_bytes") for c in a.get("configs", [])}
    pb = {c["batch"]: c.get("peak_rss_bytes") for c in b.get("configs", [])}
    for bb in sorted(set(pa) & set(pb)):
        if pa[bb] and pb[bb] and pa[bb] >= pb[bb]:
            out.append(f"FLAG {model} batch {bb}: peak RSS does not decrease with bits: {LABEL[lo]} "
                       f"{pa[bb] / 2**20:.0f} MiB >= {LABEL[hi]} {pb[bb] / 2**20:.0f} MiB (whole process; "
                       "non-block weights keep each configuration's model dtype)")
    return out


def _speed_flags(row: dict) -> list[str]:
    out, where = [], f"FLAG {row['model']} batch {row['batch']}: {LABEL[row['precision']]}"
    base = LABEL[row["baseline"]]
    if is_number(row.get("speedup_decode_tok_s")) and row["speedup_decode_tok_s"] < 1:
        sig = row.get("welch_p_decode_tok_s")
        out.append(f"{where} decodes slower than {base} ({row['speedup_decode_tok_s']:.2f}×"
                   + (f", Welch p={sig:.3g})" if is_number(sig) else ")"))
    if is_number(row.get("speedup_ttft_s")) and row["speedup_ttft_s"] < 1:
        out.append(f"{where} prefill (TTFT) slower than {base} ({row['speedup_ttft_s']:.2f}×)")
    return out


def sanity_checks(t: dict) -> list[str]:
    """Flags (never hidden): lower precision with better quality beyond noise, memory not decreasing with bits,
    lower precision slower than the baseline."""
    out, by = [], t["by"]
    for model in sorted({k[0] for k in by}):
        avail = [p for (m, p), r in by.items() if m == model and not r.get("unavailable")]
        order = sorted(avail, key=lambda p: -bits_per_weight(p, model))
        for i, hi in enumerate(order):
            for lo in order[i + 1:]:
                if bits_per_weight(lo, model) < bits_per_weight(hi, model):
                    out += _pair_flags(model, lo, hi, by[(model, lo)], by[(model, hi)])
    for row in t["derived"]:
        out += _speed_flags(row)
    for (m, p), r in by.items():
        if any(x.get("nondeterministic") for x in r.get("runs", [])):
            out.append(f"FLAG {m} {p}: greedy tokens differ between runs")
        if r.get("unavailable"):
            out.append(f"note {m} {p}: unavailable: {r['unavailable']}")
    return out or ["no flags"]


# --- tables -------------------------------------------------------------------------------------------------
def median_of(t: dict, model: str, prec: str, batch: int, metric: str):
    for r in t["summary"]:
        if (r["model"], r["precision"], r["batch"], r["metric"]) == (model, prec, batch, metric):
            return r.get("median")
    return None


def _fmt(v, spec=".2f"):
    return format(v, spec) if is_number(v) else ("—" if v is None else str(v))


def _smallest_batch(res: dict) -> int:
    return min(c["batch"] for c in res["configs"])


ACC_HEAD = ["model", "precision", "all-in bits/weight (block linears)", "perplexity", "bits/byte",
            "ppl change % vs FP32", "paired p (per-window NLL)"]
EFF_HEAD = ["model", "precision", "TTFT ms", "prefill tok/s", "decode tok/s", "TPOT ms", "e2e s", "peak RSS MiB",
            "weights MB", "block linears MB", "energy J"]
TR_HEAD = ["model", "precision", "decode speed-up", "TTFT speed-up", "peak-RSS reduction %", "weight reduction %",
           "accuracy drop % (ppl)", "energy reduction %", "Welch p (decode)", "Cohen d (decode)"]
SWEEP_HEAD = ["model", "precision", "batch", "decode tok/s", "TTFT ms", "peak RSS MiB"]


def _accuracy_row(t: dict, m: str, p: str, r: dict) -> list[str]:
    b = _smallest_batch(r)
    d = next((x for x in t["derived"] if x["model"] == m and x["precision"] == p and x["batch"] == b), {})
    return [m, LABEL[p], _fmt(bits_per_weight(p, m), ".4f"), _fmt(r["ppl"]["ppl"], ".3f"), _fmt(r["ppl"]["bpb"], ".4f"),
            _fmt(d.get("accuracy_drop_pct"), "+.2f") if d else "baseline", _fmt(d.get("paired_p"), ".3g") if d else "—"]


def _efficiency_row(t: dict, m: str, p: str, r: dict) -> list[str]:
    b = _smallest_batch(r)
    cfg = next(c for c in r["configs"] if c["batch"] == b)
    en = median_of(t, m, p, b, "energy_idle_subtracted_j")
    return [m, LABEL[p], _fmt(1e3 * median_of(t, m, p, b, "ttft_s"), ".1f"),
            _fmt(median_of(t, m, p, b, "prefill_tok_s"), ".1f"), _fmt(median_of(t, m, p, b, "decode_tok_s"), ".2f"),
            _fmt(1e3 * median_of(t, m, p, b, "tpot_s"), ".1f"), _fmt(median_of(t, m, p, b, "e2e_s"), ".2f"),
            _fmt((cfg.get("peak_rss_bytes") or math.nan) / 2**20, ".0f"),
            _fmt(r["weight_bytes"] / 1e6, ".1f"), _fmt(r["block_linear_bytes"] / 1e6, ".1f"),
            _fmt(en, ".1f") if is_number(en) else UNAVAILABLE]


def _tradeoff_row(d: dict) -> list[str]:
    return [d["model"], LABEL[d["precision"]], _fmt(d["speedup_decode_tok_s"]) + "×", _fmt(d["speedup_ttft_s"]) + "×",
            _fmt(d["memory_reduction_pct"], ".1f"), _fmt(d["weight_reduction_pct"], ".1f"),
            _fmt(d["accuracy_drop_pct"], "+.2f") if is_number(d["accuracy_drop_pct"]) else str(d["accuracy_drop_pct"]),
            _fmt(d["energy_reduction_pct"], ".1f") if is_number(d["energy_reduction_pct"]) else UNAVAILABLE,
            _fmt(d["welch_p_decode_tok_s"], ".3g"), _fmt(d["cohens_d_decode_tok_s"], ".2f")]


def _sweep_rows(t: dict) -> list[list]:
    rows = []
    for (m, p), r in t["by"].items():
        if r.get("unavailable") or len(r["configs"]) < 2:
            continue
        for c in r["configs"]:
            b = c["batch"]
            rows.append([m, LABEL[p], b, _fmt(median_of(t, m, p, b, "decode_tok_s"), ".2f"),
                         _fmt(1e3 * median_of(t, m, p, b, "ttft_s"), ".1f"),
                         _fmt((c.get("peak_rss_bytes") or math.nan) / 2**20, ".0f")])
    return rows


def table_rows(t: dict) -> dict[str, list[list]]:
    """The accuracy, efficiency, trade-off (batch 1 = each configuration's smallest batch) and sweep tables."""
    acc, eff = [], []
    for (m, p), r in t["by"].items():
        if r.get("unavailable"):
            eff.append([m, LABEL[p]] + [UNAVAILABLE] * 9)
            continue
        if r.get("ppl"):
            acc.append(_accuracy_row(t, m, p, r))
        eff.append(_efficiency_row(t, m, p, r))
    tr = [_tradeoff_row(d) for d in t["derived"] if d["batch"] == _smallest_batch(t["by"][(d["model"], d["precision"])])]
    return {"accuracy": acc, "efficiency": eff, "tradeoffs": tr, "sweep": _sweep_rows(t)}
