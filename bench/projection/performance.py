"""The two performance models of the projection (both MODELLED):

* roofline (GPUs, the CPU): decode tokens/s <= batch / max(bytes per step / (devices · bandwidth),
  FLOPs / (devices · peak)), with the bandwidth utilisation applied for the "at util." figure;
* pipeline latency (SRAM machines): time per token = layers · tau + memory time + compute time, tau calibrated
  on one published point per machine.
"""
from __future__ import annotations

import math

from bench.formats import Format, get_format

from .models import bytes_per_step, flops_per_token, kv_cache_bytes, linear_bits_per_weight, weight_bytes

__all__ = ["DEFAULT_CONTEXT", "DEFAULT_BATCH", "devices_needed", "roofline", "published_tok_s",
           "calibrate_pipeline", "project"]

DEFAULT_CONTEXT = 4096
DEFAULT_BATCH = 1


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


def published_tok_s(point: dict) -> float:
    return point["value"] if point["metric"] == "tok_s" else 1000.0 / point["value"]


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


def _decode_model(h: dict, r: dict, m: dict, batch: int, calibration: dict | None) -> dict:
    """The decode columns of a row: the pipeline model on SRAM machines, the roofline elsewhere."""
    if h["kind"] == "sram_asic":
        if calibration is None:
            raise ValueError(f"{h['id']}: SRAM machines need a pipeline calibration")
        t = m["layers"] * calibration["tau_s"] + r["t_mem"] + r["t_comp"]
        return {"decode_tok_s_bound": batch / t, "decode_tok_s": batch / t,
                "regime": "pipeline-latency-bound (calibrated)",
                "method": f"pipeline-latency model, tau calibrated on {calibration['point']}"}
    return {"decode_tok_s_bound": r["tok_s_bound"], "decode_tok_s": r["tok_s_util"], "regime": r["regime"],
            "method": "roofline (bandwidth and FP16 peak x devices, ideal tensor parallel)"
            if h["kind"] == "gpu" else "roofline with measured CPU bandwidth and float32 GEMM rate"}


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
    row.update(_decode_model(h, r, m, batch, calibration))
    power = h.get("power_w")
    row["energy_j_per_token"] = dev * power / row["decode_tok_s"] if power else None
    row["label"] = "modelled"
    return row
