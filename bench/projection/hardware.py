"""Hardware entries resolved for the performance models: SI units, the CPU of this machine measured now
(bench.machine), and each machine's bandwidth utilisation (measured rows in bench/results/*.csv, else a documented
default)."""
from __future__ import annotations

import math
import statistics
from pathlib import Path

from bench import machine
from bench.report import read_csv

__all__ = ["RESULTS_DIR", "GPU_DEFAULT_UTILISATION", "GPU_UTILISATION_SOURCE", "CPU_UTILISATION_SOURCE",
           "MEASURED_UTILISATION_COLUMNS", "measured_utilisation", "resolve_hardware", "measure_cpu"]

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
# GPU bandwidth utilisation (the efficiency factor) used where no measured rows exist.
GPU_DEFAULT_UTILISATION = 0.9
GPU_UTILISATION_SOURCE = ("default 0.9 = llm-analysis's hbm_memory_efficiency 'as observed by the literature' "
                          "(github.com/cli99/llm-analysis examples/llama/README.md); not measured here")
CPU_UTILISATION_SOURCE = "1.0 relative to the STREAM-like triad bandwidth measured in this run"
MEASURED_UTILISATION_COLUMNS = ("bandwidth_utilisation", "bandwidth_utilization", "bw_utilisation", "mbu")


def _utilisation_values(rows: list[dict]):
    """(hardware id, utilisation) of the rows with a positive, finite utilisation."""
    col = next((c for c in MEASURED_UTILISATION_COLUMNS if c in rows[0]), None)
    if col is None or "hardware" not in rows[0]:
        return
    for r in rows:
        try:
            u = float(r[col])
        except (TypeError, ValueError):
            continue
        if math.isfinite(u) and u > 0:
            yield r["hardware"], u


def measured_utilisation(results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    """Bandwidth utilisation measured by the benchmark: rows of bench/results/*.csv that have a `hardware`
    column matching a catalogue id and a utilisation column (bandwidth_utilisation, ...). Median per hardware."""
    found: dict[str, dict] = {}
    for path in sorted(Path(results_dir).glob("*.csv")):
        try:
            rows, _ = read_csv(path, convert=False)
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if not rows:
            continue
        for hw, u in _utilisation_values(rows):
            d = found.setdefault(hw, {"values": [], "files": set()})
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
