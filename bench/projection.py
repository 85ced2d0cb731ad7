"""Modelled accelerator throughput / memory projection for LLaMA-architecture models (issue 5).

Everything this module prints is MODELLED (a bound computed from published specifications). The CPU row's
inputs (bandwidth, GEMM rate, memory size) are measured in the same run by `bench.machine`; its tokens/s are
still modelled from them. Inputs:

* bench/catalog/hardware.json, models.json, published.json: data with a `source` on every entry (the loaders
  raise ValueError on an entry without one);
* storage formulas for FP16, INT8, INT4 g128 and NF4 written below; q35 sizes come from
  `qfmt.encoded_nbytes` per layer shape (padding and group count depend on K).

The model (per decode step of `batch` streams at `context` tokens of history):

* weights stored = quantized linears at the format's size + embedding + lm_head (FP16; counted once when
  tied) + RMSNorm vectors (FP16);
* KV cache = 2 · layers · kv_heads · head_dim · context · 2 bytes (FP16) · batch  (GQA aware);
* devices = ceil((weights + KV) / device memory);
* bytes read per step = every linear + the lm_head matrix + norms + one embedding row per stream + the KV;
* GPUs/CPU: roofline. decode tokens/s <= batch / max(bytes / (devices · bandwidth · utilisation),
  FLOPs / (devices · peak FP16)); FLOPs per token = 2 · (linear + lm_head params) + 4 · layers · heads ·
  head_dim · context (attention). Regime = memory-bound when FLOPs/byte < peak FLOP/s / bandwidth;
  prefill tokens/s <= compute / FLOPs per prompt token (ideal tensor parallelism, interconnect ignored);
* SRAM machines (Groq, Cerebras): bandwidth/bytes predicts ~1e5 tokens/s, far above reality, so the model is a
  PIPELINE-LATENCY model: time per token = layers · tau + bytes / (devices · bandwidth) + FLOPs / compute,
  with tau (per-layer latency: inter-chip hops, synchronisation, scheduling) CALIBRATED on one published
  point per machine (its error is 0 by construction) and checked on held-out points;
* energy per token = devices · power / tokens/s (at TDP; modelled) where a power figure exists.

`python -m bench.projection --all [--update-readme]` writes bench/results/projection/ (markdown, CSV, LaTeX,
figures, provenance) and can rewrite the README block between the projection markers;
`q35 project --model llama-2-70b --format q35` prints one model/format row for every hardware entry.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from q35 import format as qfmt

from . import machine

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
CATALOG_DIR = HERE / "catalog"
RESULTS_DIR = HERE / "results"
OUT_DIR = RESULTS_DIR / "projection"
README = REPO_ROOT / "README.md"
README_START = "<!-- projection:start -->"
README_END = "<!-- projection:end -->"

KV_BYTES_PER_ELEMENT = 2           # FP16 KV cache
HIGH_PRECISION_BYTES = 2           # embeddings, lm_head and norms stay FP16
DEFAULT_CONTEXT = 4096
DEFAULT_BATCH = 1
# GPU bandwidth utilisation (the efficiency factor) used where no measured rows exist.
GPU_DEFAULT_UTILISATION = 0.9
GPU_UTILISATION_SOURCE = ("default 0.9 = llm-analysis's hbm_memory_efficiency 'as observed by the literature' "
                          "(github.com/cli99/llm-analysis examples/llama/README.md); not measured here")
CPU_UTILISATION_SOURCE = "1.0 relative to the STREAM-like triad bandwidth measured in this run"
MEASURED_UTILISATION_COLUMNS = ("bandwidth_utilisation", "bandwidth_utilization", "bw_utilisation", "mbu")
MAIN_FIGURE_MODELS = ("llama-3-8b", "llama-2-70b")


# --- catalogues ---------------------------------------------------------------------------------------------
def _load_entries(path: Path, key: str, required: tuple[str, ...], positive: tuple[str, ...] = ()) -> list[dict]:
    data = json.loads(Path(path).read_text())
    entries = data.get(key)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty list under {key!r}")
    seen = set()
    for e in entries:
        name = e.get("id", "<no id>")
        src = e.get("source")
        if not isinstance(src, str) or not src.strip():
            raise ValueError(f"{path}: entry {name!r} has no source string")
        missing = [f for f in ("id", *required) if f not in e]
        if missing:
            raise ValueError(f"{path}: entry {name!r} lacks {missing}")
        for f in positive:
            v = e[f]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or not math.isfinite(v):
                raise ValueError(f"{path}: entry {name!r} field {f!r} must be a positive number, got {v!r}")
        if name in seen:
            raise ValueError(f"{path}: duplicate id {name!r}")
        seen.add(name)
    return entries


def load_hardware(path: Path = CATALOG_DIR / "hardware.json") -> dict[str, dict]:
    out = {}
    for e in _load_entries(path, "hardware", ("name", "kind")):
        if e["kind"] not in ("gpu", "sram_asic", "cpu"):
            raise ValueError(f"{path}: entry {e['id']!r} has unknown kind {e['kind']!r}")
        if not e.get("measured"):
            _load_entries_check_numbers(path, e, ("memory_gb", "bandwidth_gbps", "fp16_tflops"))
            for f in ("power_w", "int8_tops"):
                v = e.get(f)
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
                    raise ValueError(f"{path}: entry {e['id']!r} field {f!r} must be positive or null")
        if e["kind"] == "sram_asic" and not e.get("calibration"):
            raise ValueError(f"{path}: SRAM entry {e['id']!r} needs a `calibration` point id")
        out[e["id"]] = e
    return out


def _load_entries_check_numbers(path, e, fields) -> None:
    for f in fields:
        v = e.get(f)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or not math.isfinite(v):
            raise ValueError(f"{path}: entry {e['id']!r} field {f!r} must be a positive number, got {v!r}")


def load_models(path: Path = CATALOG_DIR / "models.json") -> dict[str, dict]:
    fields = ("layers", "hidden", "intermediate", "heads", "kv_heads", "vocab")
    out = {}
    for e in _load_entries(path, "models", ("name", "tied_embeddings", *fields), positive=fields):
        if e["hidden"] % e["heads"] or e["heads"] % e["kv_heads"]:
            raise ValueError(f"{path}: model {e['id']!r}: heads must divide hidden and kv_heads divide heads")
        out[e["id"]] = e
    return out


def load_published(path: Path = CATALOG_DIR / "published.json") -> list[dict]:
    pts = _load_entries(path, "points", ("role", "hardware", "model", "format", "context", "batch", "metric",
                                         "value"), positive=("context", "batch", "value"))
    for p in pts:
        if p["metric"] not in ("tok_s", "ms_per_token") or p["role"] not in ("calibration", "validation"):
            raise ValueError(f"{path}: point {p['id']!r}: bad metric or role")
    return pts


# --- formats ------------------------------------------------------------------------------------------------
def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Format:
    """A weight storage format: bytes for one [N out, K in] matrix, written out as its storage layout."""
    id: str
    label: str
    source: str
    nbytes: Callable[[int, int], int]

    def bits_per_weight(self, n: int, k: int) -> float:
        return 8 * self.nbytes(n, k) / (n * k)


def fp16_nbytes(n: int, k: int) -> int:
    return 2 * n * k


def int8_per_channel_nbytes(n: int, k: int) -> int:
    """int8 codes + one fp16 scale per output channel (symmetric)."""
    return n * k + 2 * n


def int4_nbytes(n: int, k: int, group: int = 128) -> int:
    """Two 4-bit codes per byte along each row + fp16 scale and fp16 zero per group of `group` (GPTQ/AWQ style)."""
    return n * _ceil_div(k, 2) + 4 * n * _ceil_div(k, group)


def nf4_nbytes(n: int, k: int, blocksize: int = 64, nested_blocksize: int = 256) -> int:
    """bitsandbytes NF4 with double quantization over the flattened tensor.

    4-bit codes; one absmax per `blocksize` block, itself quantized to 8 bits; one fp32 absmax per
    `nested_blocksize` absmax values; per tensor: fp32 offset, the 256-entry fp32 code of the nested 8-bit
    quantizer and the 16-entry fp32 NF4 code (bitsandbytes serialises both with each tensor).
    """
    numel = n * k
    blocks = _ceil_div(numel, blocksize)
    nested = _ceil_div(blocks, nested_blocksize)
    return _ceil_div(numel, 2) + blocks + 4 * nested + 4 + 4 * 256 + 4 * 16


def q35_nbytes(group_size: int | None) -> Callable[[int, int], int]:
    def f(n: int, k: int) -> int:
        return int(qfmt.encoded_nbytes(n, k, group_size)["total"])
    return f


def _q35_format(g: int | None) -> Format:
    tag = f"g{g}" if g else "row"
    return Format(f"q35-{tag}", f"q35 {tag}",
                  f"SPEC.md sect. 4 via qfmt.encoded_nbytes(N, K, {g}) (7 bytes per 16 weights + fp16 scale and "
                  f"zero per group)", q35_nbytes(g))


FORMATS: dict[str, Format] = {f.id: f for f in [
    Format("fp16", "FP16", "2 bytes per weight", fp16_nbytes),
    Format("int8", "INT8 per-channel", "int8 weights + fp16 scale per output channel (weight-only W8A16, symmetric)",
           int8_per_channel_nbytes),
    Format("int4-g128", "INT4 g128", "4-bit codes + fp16 scale and fp16 zero per 128 weights (GPTQ/AWQ g128): "
           "4 + 32/128 bits per weight", int4_nbytes),
    Format("nf4", "NF4 (bnb, bs64+DQ)", "bitsandbytes NF4, blocksize 64, double quantization (8-bit absmax, fp32 "
           "absmax per 256 blocks; QLoRA paper sect. 3) + per-tensor codes", nf4_nbytes),
    _q35_format(64), _q35_format(128), _q35_format(256), _q35_format(None),
    Format("q35c-g128", "q35 compact g128", "SPEC.md sect. 8 via qfmt.encoded_nbytes(N, K, 128, 'compact') (7 bytes "
           "per 16 weights + fp16 row scale + 10-bit group codes)",
           lambda n, k: int(qfmt.encoded_nbytes(n, k, 128, "compact")["total"])),
]}
FORMAT_ALIASES = {"q35": f"q35-g{qfmt.DEFAULT_GROUP_SIZE}", "int4": "int4-g128", "bf16": "fp16"}


def get_format(name: str) -> Format:
    key = FORMAT_ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise KeyError(f"unknown format {name!r}; choose from {sorted(FORMATS) + sorted(FORMAT_ALIASES)}")
    return FORMATS[key]


# --- model arithmetic ---------------------------------------------------------------------------------------
def head_dim(m: dict) -> int:
    return m["hidden"] // m["heads"]


def linear_shapes(m: dict) -> list[tuple[str, int, int]]:
    """(name, N out, K in) of the linears of ONE decoder layer (LLaMA: q, k, v, o, gate, up, down)."""
    h, hd = m["hidden"], head_dim(m)
    q, kv, f = m["heads"] * hd, m["kv_heads"] * hd, m["intermediate"]
    return [("q_proj", q, h), ("k_proj", kv, h), ("v_proj", kv, h), ("o_proj", h, q),
            ("gate_proj", f, h), ("up_proj", f, h), ("down_proj", h, f)]


def param_counts(m: dict) -> dict[str, int]:
    linear = m["layers"] * sum(n * k for _, n, k in linear_shapes(m))
    emb = m["vocab"] * m["hidden"]
    head = 0 if m["tied_embeddings"] else emb
    norms = (2 * m["layers"] + 1) * m["hidden"]
    return {"linear": linear, "embedding": emb, "lm_head": head, "norms": norms,
            "total": linear + emb + head + norms}


def weight_bytes(m: dict, fmt: Format) -> dict[str, int]:
    """Stored bytes: linears in `fmt`, embedding/lm_head/norms FP16, tied embedding counted once."""
    linear = m["layers"] * sum(fmt.nbytes(n, k) for _, n, k in linear_shapes(m))
    p = param_counts(m)
    out = {"linear": linear, "embedding": HIGH_PRECISION_BYTES * p["embedding"],
           "lm_head": HIGH_PRECISION_BYTES * p["lm_head"], "norms": HIGH_PRECISION_BYTES * p["norms"]}
    out["total"] = sum(out.values())
    return out


def linear_bits_per_weight(m: dict, fmt: Format) -> float:
    """All-in bits per weight over the model's quantized linears (per-layer-shape sizes, averaged by weight)."""
    return 8 * weight_bytes(m, fmt)["linear"] / param_counts(m)["linear"]


def kv_cache_bytes(m: dict, context: int, batch: int = 1, bytes_per_element: int = KV_BYTES_PER_ELEMENT) -> int:
    """2 (K and V) · layers · kv_heads · head_dim · context · bytes · batch."""
    return 2 * m["layers"] * m["kv_heads"] * head_dim(m) * context * bytes_per_element * batch


def bytes_per_step(m: dict, fmt: Format, context: int, batch: int = 1) -> dict[str, int]:
    """Bytes read from memory for one decode step of `batch` streams (weights once, KV per stream)."""
    w = weight_bytes(m, fmt)
    lm_head_matrix = HIGH_PRECISION_BYTES * m["vocab"] * m["hidden"]   # read as lm_head even when tied
    emb_rows = HIGH_PRECISION_BYTES * m["hidden"] * batch
    weights = w["linear"] + lm_head_matrix + w["norms"] + emb_rows
    kv = kv_cache_bytes(m, context, batch)
    return {"weights": weights, "kv": kv, "total": weights + kv}


def flops_per_token(m: dict, context: int) -> int:
    """2 FLOPs per multiply-add of every linear and the lm_head, plus attention over `context` positions."""
    p = param_counts(m)
    attention = 4 * m["layers"] * m["heads"] * head_dim(m) * context
    return 2 * (p["linear"] + m["vocab"] * m["hidden"]) + attention


# --- hardware resolution ------------------------------------------------------------------------------------
def measured_utilisation(results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    """Bandwidth utilisation measured by the benchmark: rows of bench/results/*.csv that have a `hardware`
    column matching a catalogue id and a utilisation column (bandwidth_utilisation, ...). Median per hardware."""
    found: dict[str, dict] = {}
    for path in sorted(Path(results_dir).glob("*.csv")):
        try:
            rows = list(csv.DictReader(path.open(newline="")))
        except (OSError, csv.Error, UnicodeDecodeError):
            continue
        if not rows:
            continue
        col = next((c for c in MEASURED_UTILISATION_COLUMNS if c in rows[0]), None)
        if col is None or "hardware" not in rows[0]:
            continue
        for r in rows:
            try:
                u = float(r[col])
            except (TypeError, ValueError):
                continue
            if math.isfinite(u) and u > 0:
                d = found.setdefault(r["hardware"], {"values": [], "files": set()})
                d["values"].append(u)
                d["files"].add(path.name)
    return {hw: {"median": statistics.median(d["values"]), "n": len(d["values"]), "files": sorted(d["files"])}
            for hw, d in found.items()}


def resolve_hardware(hw: dict, cpu: dict | None, measured: dict[str, dict]) -> dict:
    """A copy of a catalogue entry with numbers in SI units, the CPU filled from measurements, and its
    bandwidth utilisation (measured rows > documented default)."""
    h = dict(hw)
    if h.get("measured"):
        if cpu is None:
            raise ValueError("the cpu-local entry needs run-time measurements")
        h.update(memory_bytes=cpu["memory_bytes"], bandwidth_Bps=cpu["bandwidth_gbps"] * 1e9,
                 flops=cpu["gemm_gflops"] * 1e9, power_w=None, name=f"CPU: {cpu['cpu_model']} (measured)")
    else:
        h.update(memory_bytes=h["memory_gb"] * 1e9, bandwidth_Bps=h["bandwidth_gbps"] * 1e9,
                 flops=h["fp16_tflops"] * 1e12)
    if h["id"] in measured:
        mu = measured[h["id"]]
        h["utilisation"] = mu["median"]
        h["utilisation_source"] = f"measured: median of {mu['n']} rows in bench/results/{', '.join(mu['files'])}"
    elif h["kind"] == "gpu":
        h["utilisation"], h["utilisation_source"] = GPU_DEFAULT_UTILISATION, GPU_UTILISATION_SOURCE
    elif h["kind"] == "cpu":
        h["utilisation"], h["utilisation_source"] = 1.0, CPU_UTILISATION_SOURCE
    else:
        h["utilisation"], h["utilisation_source"] = 1.0, "not used: pipeline-latency model"
    return h


def measure_cpu(quick: bool = False) -> dict:
    bw = machine.measure_bandwidth(size_mib=64 if quick else 128, repeats=5 if quick else 9)
    mm = machine.measure_matmul_flops(n=512 if quick else 1024, repeats=7 if quick else 11)
    mem = machine.memory_total_bytes()
    if mem is None:
        raise RuntimeError("cannot read the machine's memory size (/proc/meminfo)")
    return {"cpu_model": machine.cpu_model(), "bandwidth_gbps": bw["median_gbps"], "bandwidth": bw,
            # a compute ceiling is a peak: best of repeats (as HPL/STREAM report best rates); median kept too
            "gemm_gflops": mm["max_gflops"], "gemm": mm, "memory_bytes": mem}


# --- projection ---------------------------------------------------------------------------------------------
def devices_needed(nbytes: float, capacity_bytes: float) -> int:
    return max(1, math.ceil(nbytes / capacity_bytes))


def roofline(m: dict, fmt: Format, h: dict, context: int, batch: int, devices: int) -> dict:
    step = bytes_per_step(m, fmt, context, batch)
    flops = batch * flops_per_token(m, context)
    t_mem = step["total"] / (devices * h["bandwidth_Bps"])
    t_comp = flops / (devices * h["flops"])
    intensity = flops / step["total"]
    balance = h["flops"] / h["bandwidth_Bps"]
    return {"step_bytes": step["total"], "step_flops": flops, "t_mem": t_mem, "t_comp": t_comp,
            "intensity": intensity, "balance": balance,
            "regime": "memory-bound" if intensity < balance else "compute-bound",
            "tok_s_bound": batch / max(t_mem, t_comp),
            "tok_s_util": batch / max(t_mem / h["utilisation"], t_comp)}


def calibrate_pipeline(point: dict, models: dict, hardware: dict) -> dict:
    """Fit tau (seconds of fixed latency per decoder layer) so the pipeline model reproduces `point`."""
    m, h, fmt = models[point["model"]], hardware[point["hardware"]], get_format(point["format"])
    devices = point.get("devices") or devices_needed(
        weight_bytes(m, fmt)["total"] + kv_cache_bytes(m, point["context"], point["batch"]), h["memory_bytes"])
    r = roofline(m, fmt, h, point["context"], point["batch"], devices)
    t_token = point["batch"] / published_tok_s(point)
    tau = (t_token - r["t_mem"] - r["t_comp"]) / m["layers"]
    if not tau > 0:
        raise ValueError(f"calibration point {point['id']!r} is faster than the bandwidth/compute bound")
    return {"tau_s": tau, "point": point["id"], "devices": devices}


def published_tok_s(point: dict) -> float:
    return point["value"] if point["metric"] == "tok_s" else 1000.0 / point["value"]


def project(m: dict, fmt: Format, h: dict, context: int = DEFAULT_CONTEXT, batch: int = DEFAULT_BATCH,
            calibration: dict | None = None, devices: int | None = None) -> dict:
    """One modelled row: memory, devices, decode tokens/s bound and regime, prefill bound, energy."""
    w = weight_bytes(m, fmt)
    kv = kv_cache_bytes(m, context, batch)
    dev_w = devices_needed(w["total"], h["memory_bytes"])
    dev = devices or devices_needed(w["total"] + kv, h["memory_bytes"])
    r = roofline(m, fmt, h, context, batch, dev)
    prefill = dev * h["flops"] / flops_per_token(m, context // 2)   # mean position over a `context` prompt
    row = {"model": m["id"], "format": fmt.id, "hardware": h["id"], "kind": h["kind"], "context": context,
           "batch": batch, "bits_per_weight": linear_bits_per_weight(m, fmt), "weights_bytes": w["total"],
           "kv_bytes": kv, "devices_weights": dev_w, "devices": dev, "intensity_flop_per_byte": r["intensity"],
           "balance_flop_per_byte": r["balance"], "bandwidth_bound_tok_s": r["tok_s_bound"],
           "prefill_tok_s_bound": prefill, "utilisation": h["utilisation"],
           "utilisation_source": h["utilisation_source"]}
    if h["kind"] == "sram_asic":
        if calibration is None:
            raise ValueError(f"{h['id']}: SRAM machines need a pipeline calibration")
        t = m["layers"] * calibration["tau_s"] + r["t_mem"] + r["t_comp"]
        row.update(decode_tok_s_bound=batch / t, decode_tok_s=batch / t,
                   regime="pipeline-latency-bound (calibrated)",
                   method=f"pipeline-latency model, tau calibrated on {calibration['point']}")
    else:
        row.update(decode_tok_s_bound=r["tok_s_bound"], decode_tok_s=r["tok_s_util"], regime=r["regime"],
                   method="roofline (bandwidth and FP16 peak x devices, ideal tensor parallel)"
                   if h["kind"] == "gpu" else "roofline with measured CPU bandwidth and float32 GEMM rate")
    power = h.get("power_w")
    row["energy_j_per_token"] = dev * power / row["decode_tok_s"] if power else None
    row["label"] = "modelled"
    return row


@dataclass
class Context:
    models: dict
    hardware: dict          # resolved
    published: list
    calibrations: dict      # hardware id -> calibration
    cpu: dict | None
    measured: dict


def build_context(quick: bool = False, measure: bool = True) -> Context:
    models, raw_hw, published = load_hardware_models_published()
    cpu = measure_cpu(quick) if measure else None
    measured = measured_utilisation()
    hardware = {k: resolve_hardware(v, cpu, measured) for k, v in raw_hw.items() if measure or not v.get("measured")}
    by_id = {p["id"]: p for p in published}
    calibrations = {}
    for hid, h in hardware.items():
        if h["kind"] == "sram_asic":
            pt = by_id.get(h["calibration"])
            if pt is None or pt["hardware"] != hid:
                raise ValueError(f"{hid}: calibration point {h['calibration']!r} missing or for other hardware")
            calibrations[hid] = calibrate_pipeline(pt, models, hardware)
    return Context(models, hardware, published, calibrations, cpu, measured)


def load_hardware_models_published():
    return load_models(), load_hardware(), load_published()


def project_in(ctx: Context, model_id: str, fmt: Format, hw_id: str, context: int, batch: int,
               devices: int | None = None) -> dict:
    return project(ctx.models[model_id], fmt, ctx.hardware[hw_id], context, batch, ctx.calibrations.get(hw_id),
                   devices)


def error_pct(projected: float, published: float) -> float:
    return 100.0 * (projected - published) / published


def validation_rows(ctx: Context) -> list[dict]:
    rows = []
    for p in ctx.published:
        fmt = get_format(p["format"])
        h = dict(ctx.hardware[p["hardware"]])
        if "utilisation" in p:
            h["utilisation"] = p["utilisation"]
        row = project(ctx.models[p["model"]], fmt, h, p["context"], p["batch"], ctx.calibrations.get(h["id"]),
                      p.get("devices"))
        needed = devices_needed(row["weights_bytes"] + row["kv_bytes"], h["memory_bytes"])
        if p["metric"] == "tok_s":
            proj, naive = row["decode_tok_s"], row["bandwidth_bound_tok_s"]
        else:
            proj, naive = 1000.0 / row["decode_tok_s"], 1000.0 / row["bandwidth_bound_tok_s"]
        rows.append({
            "id": p["id"], "role": p["role"], "hardware": p["hardware"], "model": p["model"], "format": fmt.id,
            "context": p["context"], "batch": p["batch"], "devices_published": p.get("devices"),
            "devices_modelled": needed, "metric": p["metric"], "published": p["value"],
            "projected": proj, "error_pct": error_pct(proj, p["value"]),
            "bandwidth_only": naive, "bandwidth_only_error_pct": error_pct(naive, p["value"]),
            "method": row["method"] + (f" at utilisation {h['utilisation']:g}" if h["kind"] != "sram_asic" else ""),
            "format_note": p.get("format_note", ""), "source": p["source"], "label": "modelled"})
    return rows


def all_rows(ctx: Context, context: int, batch: int, roles=("main",)) -> list[dict]:
    return [project_in(ctx, mid, fmt, hid, context, batch)
            for mid, m in ctx.models.items() if m.get("role", "main") in roles
            for fmt in FORMATS.values() for hid in ctx.hardware]


# --- formatting ---------------------------------------------------------------------------------------------
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


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


VALIDATION_HEADERS = ["published point", "role", "hardware", "model", "format", "devices (published / needed)",
                      "published", "projected (modelled)", "error %", "bandwidth-only bound (modelled)",
                      "its error %"]


def _metric_unit(metric: str) -> str:
    return "tok/s" if metric == "tok_s" else "ms/token"


def validation_table(rows: list[dict], ctx: Context) -> str:
    body = []
    for r in rows:
        u = _metric_unit(r["metric"])
        role = "calibration (0 by construction)" if r["role"] == "calibration" else "held-out validation"
        devs = f"{r['devices_published'] if r['devices_published'] else '?'} / {r['devices_modelled']}"
        body.append([r["id"], role, ctx.hardware[r["hardware"]]["name"], ctx.models[r["model"]]["name"],
                     FORMATS[r["format"]].label, devs, f"{sig(r['published'])} {u}", f"{sig(r['projected'])} {u}",
                     f"{r['error_pct']:+.1f}", f"{sig(r['bandwidth_only'])} {u}",
                     f"{r['bandwidth_only_error_pct']:+,.1f}"])
    return md_table(VALIDATION_HEADERS, body)


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
    return md_table(headers, body)


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


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in s)


def latex_table(rows: list[dict], ctx: Context, prov_line: str) -> str:
    cols = ["Model", "Format", "bpw", "GB", "Hardware", "Devices", "tok/s bound", "Regime"]
    out = [f"% generated by bench.projection -- all numbers modelled; {latex_escape(prov_line)}",
           r"\begin{longtable}{llrrlrrl}",
           r"\caption{Modelled decode throughput bound (batch " + str(rows[0]["batch"]) + ", context " +
           str(rows[0]["context"]) + r"). All figures modelled.}\\",
           r"\hline " + " & ".join(cols) + r" \\ \hline\endhead"]
    for r in rows:
        out.append(" & ".join(latex_escape(c) for c in [
            ctx.models[r["model"]]["name"], FORMATS[r["format"]].label, f"{r['bits_per_weight']:.3f}",
            gb(r["weights_bytes"]), ctx.hardware[r["hardware"]]["name"], str(r["devices"]),
            sig(r["decode_tok_s_bound"]), r["regime"]]) + r" \\")
    out += [r"\hline", r"\end{longtable}", ""]
    return "\n".join(out)


def write_csv(path: Path, rows: list[dict], prov_line: str) -> None:
    buf = io.StringIO()
    buf.write(f"# modelled projection; provenance: {prov_line}\n")
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())


# --- figures ------------------------------------------------------------------------------------------------
def make_figures(ctx: Context, rows: list[dict], out_dir: Path, prov_line: str) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    main = [m for m in ctx.models.values() if m.get("role", "main") == "main"]
    main.sort(key=lambda m: param_counts(m)["total"])
    fig, ax = plt.subplots(figsize=(8, 5.5))
    xs = [param_counts(m)["total"] / 1e9 for m in main]
    for fmt in FORMATS.values():
        ax.plot(xs, [weight_bytes(m, fmt)["total"] / 1e9 for m in main], marker="o", ms=3, label=fmt.label)
    capacities: dict[float, list[str]] = {}
    close_flip = False
    for h in ctx.hardware.values():
        capacities.setdefault(h["memory_bytes"], []).append(h["name"])
    previous = None
    for cap, names in sorted(capacities.items(), reverse=True):   # a label close above another goes below its line
        ax.axhline(cap / 1e9, ls=":", lw=0.8, color="grey")
        close = previous is not None and previous / cap < 1.25 and close_flip is False
        ax.annotate(f"{' / '.join(names)}: {sig(cap / 1e9)} GB per device", (xs[0], cap / 1e9),
                    fontsize=6, color="dimgrey", va="top" if close else "bottom")
        close_flip, previous = close, cap
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model parameters (billions)")
    ax.set_ylabel("weight memory, GB (modelled)")
    ax.set_title("Weight memory vs model size, with one device's capacity (modelled)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.text(0.01, 0.005, prov_line[:160], fontsize=5, color="grey")
    written += _save(fig, out_dir / "memory_vs_model_size")
    plt.close(fig)

    models = [mid for mid in MAIN_FIGURE_MODELS if mid in ctx.models]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 5), squeeze=False)
    for ax, mid in zip(axes[0], models):
        for hid, h in ctx.hardware.items():
            pts = sorted((r["bits_per_weight"], r["decode_tok_s"], r["devices"]) for r in rows
                         if r["model"] == mid and r["hardware"] == hid)
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=h["name"])
            for x, y, d in (pts[0], pts[-1]):   # device counts (>1) at the fewest and the most bits
                if d > 1:
                        ax.annotate(f"x{d}", (x, y), fontsize=6, color=line.get_color(), xytext=(3, 3),
                                textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel("all-in bits per weight of the linears")
        ax.set_ylabel("decode tokens/s, batch 1 (modelled)")
        ax.set_title(f"{ctx.models[mid]['name']}: decode tokens/s vs bits per weight (modelled)\n"
                     f"xN = devices (minimum that holds weights + KV, ideal tensor parallel)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    fig.text(0.01, 0.005, prov_line[:200], fontsize=5, color="grey")
    written += _save(fig, out_dir / "tokens_vs_bits_per_weight")
    plt.close(fig)
    return written


def _save(fig, stem: Path) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        p = stem.with_suffix("." + ext)
        fig.savefig(p, dpi=150, bbox_inches="tight", metadata={"CreationDate": None} if ext == "pdf" else None)
        paths.append(p)
    return paths


# --- README block -------------------------------------------------------------------------------------------
def replace_readme_block(text: str, block: str) -> str:
    """Put `block` between the projection markers, or append markers + block at the end if absent."""
    s, e = text.find(README_START), text.find(README_END)
    if (s < 0) != (e < 0) or (s >= 0 and e < s) or text.count(README_START) > 1 or text.count(README_END) > 1:
        raise ValueError("README projection markers are unbalanced")
    inner = f"{README_START}\n{block.strip()}\n{README_END}"
    if s < 0:
        sep = "" if text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + inner + "\n"
    return text[:s] + inner + text[e + len(README_END):]


def readme_block(vrows: list[dict], ctx: Context, prov: dict) -> str:
    sha = (prov.get("git_sha") or "no-git")[:12]
    return "\n".join([
        "### Throughput projection: validation against published figures (all projections modelled)",
        "",
        f"Generated by `python -m bench.projection --all --update-readme` on {prov['date_utc']} (git {sha}); "
        "every number below is computed by that command, do not edit by hand. Error % = (projected - "
        "published) / published. GPU rows use the HBM roofline; Groq/Cerebras rows use a pipeline-latency model "
        "whose per-layer latency is calibrated on the row marked calibration (its 0 % is not evidence). "
        "The bandwidth-only column shows what bandwidth/bytes alone would predict.",
        "",
        validation_table(vrows, ctx),
        "",
        validation_notes(vrows, ctx),
        "",
        "Full tables, figures and provenance: `bench/results/projection/` (`make projection`).",
    ])


# --- drivers ------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_all(out_dir: Path, context: int, batch: int, quick: bool, figures: bool, update_readme: bool) -> int:
    prov = machine.provenance()
    ctx = build_context(quick=quick)
    pline = machine.provenance_line(prov)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = all_rows(ctx, context, batch)
    vrows = validation_rows(ctx)

    vt = validation_table(vrows, ctx)
    print("Validation: projection vs published figures (projections modelled)\n")
    print(vt)
    print()
    print(validation_notes(vrows, ctx))
    print()
    print(cpu_summary(ctx))
    print(utilisation_summary(ctx))

    write_csv(out_dir / "projection.csv", rows, pline)
    write_csv(out_dir / "validation.csv", vrows, pline)
    (out_dir / "projection.tex").write_text(latex_table(rows, ctx, pline))
    (out_dir / "validation.md").write_text(
        f"# Projection validation (modelled)\n\nProvenance: {pline}\n\n{vt}\n\n{validation_notes(vrows, ctx)}\n")
    md = [f"# Modelled accelerator throughput projection\n",
          f"Provenance: {pline}\n",
          f"Every tokens/s, GB, device count and J/token below is **modelled** (batch {batch}, context {context}, "
          f"FP16 KV cache, FP16 embeddings/lm_head/norms, weight-only quantization of the decoder linears). "
          f"'decode tok/s bound' = roofline at utilisation 1.0 (GPU/CPU) or the calibrated pipeline model "
          f"(Groq/Cerebras); 'at util.' applies the bandwidth utilisation. Multi-device rows assume ideal tensor "
          f"parallelism (interconnect ignored) on the minimum device count that holds weights + KV.\n",
          cpu_summary(ctx) + "\n", utilisation_summary(ctx) + "\n",
          "## Validation\n", vt + "\n", validation_notes(vrows, ctx) + "\n",
          "## Formats\n",
          md_table(["format", "storage formula (source)"], [[f.label, f.source] for f in FORMATS.values()]) + "\n",
          "## Hardware\n",
          md_table(["id", "name", "memory GB", "bandwidth GB/s", "FP16 TFLOP/s", "power W", "util.", "source"],
                   [[h["id"], h["name"], gb(h["memory_bytes"]), sig(h["bandwidth_Bps"] / 1e9),
                     sig(h["flops"] / 1e12), sig(h.get("power_w")), f"{h['utilisation']:.2f}", h["source"]]
                    for h in ctx.hardware.values()]) + "\n",
          "## Models\n",
          md_table(["id", "params (B)", "linear params (B)", "tied", f"KV GB at {context} x {batch}", "source"],
                   [[m["id"], sig(param_counts(m)["total"] / 1e9), sig(param_counts(m)["linear"] / 1e9),
                     str(m["tied_embeddings"]), gb(kv_cache_bytes(m, context, batch)), m["source"]]
                    for m in ctx.models.values()]) + "\n"]
    for mid, m in ctx.models.items():
        sub = [r for r in rows if r["model"] == mid]
        if sub:
            md += [f"## {m['name']} (modelled)\n", rows_table(sub, ctx, with_model=False) + "\n"]
    (out_dir / "projection.md").write_text("\n".join(md))
    files = [out_dir / n for n in ("projection.md", "projection.csv", "projection.tex", "validation.md",
                                   "validation.csv")]
    if figures:
        files += make_figures(ctx, rows, out_dir, pline)
    record = {"provenance": prov, "settings": {"context": context, "batch": batch, "quick": quick},
              "cpu_measurement": ctx.cpu, "measured_utilisation": ctx.measured,
              "calibrations": ctx.calibrations,
              "catalogues_sha256": {p.name: _sha256(p) for p in sorted(CATALOG_DIR.glob("*.json"))},
              "outputs": [str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p) for p in files]}
    (out_dir / "provenance.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    if update_readme:
        README.write_text(replace_readme_block(README.read_text(), readme_block(vrows, ctx, prov)))
        print(f"\nREADME.md: rewrote the block between {README_START} and {README_END}")
    print(f"\nwrote {len(files) + 1} files to {out_dir}")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="q35 project", description=__doc__.split("\n")[0])
    p.add_argument("--model", help="model id from bench/catalog/models.json (e.g. llama-2-70b)")
    p.add_argument("--format", default="q35", help=f"one of {', '.join(list(FORMATS) + list(FORMAT_ALIASES))}")
    p.add_argument("--hardware", help="comma-separated hardware ids (default: all)")
    p.add_argument("--context", type=int, default=DEFAULT_CONTEXT)
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    p.add_argument("--all", action="store_true", help="write every table and figure to --out")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    p.add_argument("--quick", action="store_true", help="shorter CPU measurement")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--update-readme", action="store_true",
                   help=f"rewrite the README.md block between {README_START} and {README_END}")
    a = p.parse_args(argv)
    if a.context < 1 or a.batch < 1:
        p.error("--context and --batch must be >= 1")
    if a.all or a.update_readme:
        return run_all(a.out, a.context, a.batch, a.quick, not a.no_figures, a.update_readme)
    if not a.model:
        p.error("give --model (and --format), or --all")
    return run_one(a.model, a.format, a.hardware.split(",") if a.hardware else None, a.context, a.batch)


if __name__ == "__main__":
    sys.exit(main())
