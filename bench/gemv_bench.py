"""q35's GEMV kernels against fp32 matvec and ggml's own 3/4-bit CPU GEMV, in one run, with the bandwidth bound.

    python -m bench.gemv_bench [--rounds 7] [--repeats 10] [--shapes 4096x11008,11008x4096,4096x4096]
    python -m bench.gemv_bench --crossover [--batches 1,2,4,...]   (fused vs tiled BLAS vs A8 by batch size)

Methods (batch 1, the same random matrix W[N, K] ~ 0.02·N(0, 1), seed 0; bench.gemv_methods):

* q35 A8 with 1 thread and with every usable CPU (``q35.matmul_kernel(x, kw, activations="a8", threads=...)``),
  the q35 float fused kernel (``activations="float"``, one thread), on the deployed quantization (compact g192);
* numpy fp32 ``W @ x`` (OpenBLAS, its default threads), torch fp32 ``linear`` with default threads and 1 thread;
* ggml Q3_K, Q4_0 and Q4_K: ``ggml_quantize_chunk`` weights, the activation through the type's ``from_float`` and
  ``vec_dot`` over the rows in a compiled C loop (bench.ggml_gemv), one thread like the 1-thread q35 row.

Every method is checked against a float64 product of its own weights before timing. Protocol (bench.timing):
interleaved rounds, a different method order per round, a pause before each method's turn, warm-up calls, then
timed calls; caches cold (each call reads the next of enough weight copies to exceed twice the last-level cache).
Bandwidth bound per method: its bytes (weights as its kernel reads them + activations + output) / the bandwidth
measured in this run for its thread count (1 thread: best of STREAM copy, triad and a read-only sum; all CPUs:
best of copy and triad). Ratios are per round (round medians, same round) summarised over rounds; for 1-thread
methods the calling thread's CPU time is reported too (on a loaded machine the wall time includes waits for a CPU).

Outputs in bench/results/bench/: gemv.csv (one row per shape and method), gemv_ratios.csv, gemv_raw.csv (every
timed call), gemv.md; each CSV starts with a provenance line.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench import gemv_methods as gm
from bench.timing import interleaved, quartiles, ratio_summary

OUT_DIR = Path(__file__).resolve().parent / "results" / "bench"
DEFAULT_SHAPES = ((4096, 11008), (11008, 4096), (4096, 4096))
LLC_FALLBACK = 32 * 2**20


def llc_bytes() -> int:
    """Largest cache of this CPU from sysfs (fallback 32 MiB)."""
    best = 0
    for idx in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            s = (idx / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(s[-1], 1)
        best = max(best, int(s[:-1] if s[-1] in "KMG" else s) * mult)
    return best or LLC_FALLBACK


def read_bandwidth(size_mib: int = 256, repeats: int = 7) -> float:
    """Read-only bandwidth of one thread (numpy float32 sum over a fresh array), median GB/s: a GEMV only reads
    its weights, and STREAM copy/triad also write."""
    a = np.ones(size_mib * 2**20 // 4, dtype=np.float32)
    a.sum()
    gbps = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a.sum()
        gbps.append(a.nbytes / (time.perf_counter() - t0) / 1e9)
    return statistics.median(gbps)


def bandwidths(size_mib: int = 256, repeats: int = 7) -> dict:
    """The bound per thread count: {1: GB/s, all_threads: GB/s, "detail": {...}}."""
    from bench import machine

    n = machine.usable_cpus()
    print(f"measuring memory bandwidth (1 thread, then all {n} CPUs, {size_mib} MiB arrays)...", flush=True)
    bw1 = machine.measure_bandwidth(size_mib=size_mib, repeats=repeats, threads=1)
    bwn = machine.measure_bandwidth(size_mib=size_mib, repeats=repeats, threads=n)
    rd = read_bandwidth(size_mib, repeats)
    one = max(bw1["kernels"]["copy"]["median_gbps"], bw1["kernels"]["triad"]["median_gbps"], rd)
    alln = max(bwn["kernels"]["copy"]["median_gbps"], bwn["kernels"]["triad"]["median_gbps"], one)
    detail = {"copy_1": bw1["kernels"]["copy"]["median_gbps"], "triad_1": bw1["kernels"]["triad"]["median_gbps"],
              "read_1": rd, "copy_all": bwn["kernels"]["copy"]["median_gbps"],
              "triad_all": bwn["kernels"]["triad"]["median_gbps"], "threads_all": n, "size_mib": size_mib}
    print(f"  bound 1 thread {one:.1f} GB/s, all {n} CPUs {alln:.1f} GB/s", flush=True)
    return {1: one, n: alln, "detail": detail}


def shape_methods(n: int, k: int, llc: int, seed: int = 0, ggml_types=gm.GGML_TYPES):
    """(methods, check errors) for W[n, k] at batch 1, every method checked before it is returned."""
    import torch

    import q35
    from bench import machine

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k), dtype=np.float32) * np.float32(0.02)
    x = rng.standard_normal(k, dtype=np.float32)
    t0 = time.perf_counter()
    qt, kw, q_bytes = gm.q35_weights(w, seed)
    print(f"{n}x{k}: q35 compact g{gm.Q35_GROUP} quantized in {time.perf_counter() - t0:.1f} s", flush=True)
    all_threads = machine.usable_cpus()
    methods = gm.q35_methods(kw, q_bytes, x, llc, all_threads)
    methods += gm.fp32_methods(w, x, llc, torch.get_num_threads(), all_threads)
    g_methods, g_deq = gm.ggml_methods(w, x, llc, ggml_types)
    errs = gm.check(methods + g_methods, x, w, q35.dequantize(qt), g_deq)
    return methods + g_methods, errs


def ratio_pairs(names: list[str], all_threads: int) -> list[tuple[str, str, str]]:
    """(label, subject, baseline): speedup = baseline time / subject time, for the pairs present in ``names``."""
    a8n = gm.a8_all_name(all_threads)
    pairs = [("q35 A8 1 thread vs numpy fp32", gm.A8_1, gm.NUMPY),
             ("q35 A8 1 thread vs torch fp32 1 thread", gm.A8_1, gm.TORCH_1)]
    pairs += [(f"q35 A8 1 thread vs ggml {t} 1 thread", gm.A8_1, gm.ggml_name(t)) for t in gm.GGML_TYPES]
    pairs += [("q35 A8 1 thread vs q35 float fused", gm.A8_1, gm.FLOAT_FUSED),
              (f"q35 A8 {all_threads} threads vs 1 thread", a8n, gm.A8_1),
              (f"q35 A8 {all_threads} threads vs numpy fp32", a8n, gm.NUMPY),
              (f"q35 A8 {all_threads} threads vs torch fp32 default threads", a8n,
               next((m for m in names if m.endswith(", default)")), ""))]
    return [p for p in pairs if p[1] in names and p[2] in names and p[1] != p[2]]


def method_rows(shape: str, methods: list, res: dict, errs: dict, bounds: dict) -> list[dict]:
    rows = []
    for m in methods:
        ts = res["seconds"][m.name]
        p25, med, p75 = quartiles(ts)
        bound = bounds.get(m.threads) or bounds[1]
        bound_s = m.bytes_read / (bound * 1e9)
        rows.append({"shape": shape, "batch": 1, "method": m.name, "threads": m.threads,
                     "rounds": len(res["round_medians"][m.name]), "calls": len(ts), "median_ms": 1e3 * med,
                     "p25_ms": 1e3 * p25, "p75_ms": 1e3 * p75, "min_ms": 1e3 * min(ts),
                     "weight_bytes": m.weight_bytes, "bytes_read": m.bytes_read,
                     "effective_gbps": m.bytes_read / med / 1e9, "bound_gbps": bound, "bound_ms": 1e3 * bound_s,
                     "fraction_of_bound": bound_s / med, "check_rel_error": errs[m.name],
                     # the calling thread's CPU time: the wall time less the waits for a CPU (1-thread methods)
                     "median_cpu_ms": 1e3 * quartiles(res["cpu_seconds"][m.name])[1] if m.threads == 1 else None})
    return rows


def ratio_rows(shape: str, res: dict, all_threads: int, threads: dict) -> list[dict]:
    """Per-round speedups (wall time); for two 1-thread methods also the CPU-time speedup, which the load of a
    shared machine disturbs less."""
    meds, cpu = res["round_medians"], res["round_cpu_medians"]
    out = []
    for label, subject, base in ratio_pairs(list(meds), all_threads):
        r = ratio_summary(meds[base], meds[subject])
        c = ratio_summary(cpu[base], cpu[subject]) if threads[base] == threads[subject] == 1 else None
        out.append({"shape": shape, "ratio": label, "subject": subject, "baseline": base,
                    "speedup_median": r["median"], "speedup_p25": r["p25"], "speedup_p75": r["p75"],
                    "cpu_speedup_median": c["median"] if c else None, "rounds": r["rounds"]})
    return out


def run(shapes, rounds: int, repeats: int, warmup: int = 2, pause: float = 0.05, bandwidth_mib: int = 256,
        ggml_types=gm.GGML_TYPES, seed: int = 0, llc: int | None = None) -> dict:
    """Every shape's methods, checked, then timed; ``llc`` overrides the cache size the copies must exceed."""
    from tqdm import tqdm

    from bench import machine

    llc = llc or llc_bytes()
    bounds = bandwidths(bandwidth_mib)
    rows, ratios, raw = [], [], []
    for n, k in shapes:
        methods, errs = shape_methods(n, k, llc, seed, ggml_types)
        shape = f"{n}x{k}"
        with tqdm(total=rounds * len(methods), desc=f"GEMV {shape}", leave=False) as bar:
            res = interleaved({m.name: m.call for m in methods}, rounds=rounds, repeats=repeats, warmup=warmup,
                              pause=pause, seed=seed, key={"shape": shape, "batch": 1}, progress=bar)
        rows += method_rows(shape, methods, res, errs, bounds)
        ratios += ratio_rows(shape, res, machine.usable_cpus(), {m.name: m.threads for m in methods})
        raw += res["raw"]
        for r in rows[-len(methods):]:
            print(f"  {r['method']:<42} {r['median_ms']:8.3f} ms  {100 * r['fraction_of_bound']:5.1f}% of bound",
                  flush=True)
    return {"rows": rows, "ratios": ratios, "raw": raw, "bounds": bounds, "llc_bytes": llc, "rounds": rounds,
            "repeats": repeats, "warmup": warmup, "pause": pause}


def markdown(res: dict, prov: dict) -> str:
    from bench import machine
    from bench.report import markdown_table

    d = res["bounds"]["detail"]
    head = ["# q35 GEMV vs fp32 matvec and ggml's 3/4-bit CPU GEMV (batch 1, cold cache)", "",
            f"Machine: {machine.provenance_line(prov)}", "",
            f"Load average at start/end: {prov.get('loadavg_start')} / {prov.get('loadavg_end')}. "
            f"{res['rounds']} interleaved rounds (method order shuffled per round, {res['pause'] * 1e3:.0f} ms "
            f"pause and {res['warmup']} warm-up calls before each method's turn, {res['repeats']} timed calls); "
            f"weights streamed from DRAM (copies > 2x the {res['llc_bytes'] / 2**20:.0f} MiB last-level cache).", "",
            f"Bandwidth measured in this run: 1 thread copy {d['copy_1']:.1f}, triad {d['triad_1']:.1f}, read-only "
            f"{d['read_1']:.1f} GB/s; all {d['threads_all']} CPUs copy {d['copy_all']:.1f}, triad "
            f"{d['triad_all']:.1f} GB/s. Bound per method = its bytes / the best figure for its thread count.", "",
            "ggml rows: ggml's plain CPU path (from_float of x into the vec_dot type, then vec_dot per row) in one "
            "thread, through llama-cpp-python's libggml-cpu as built here; llama.cpp can also repack Q4_0/Q4_K "
            "into interleaved CPU_REPACK layouts, not timed here.", ""]
    t1 = markdown_table(["shape", "method", "threads", "median ms", "p25–p75 ms", "CPU ms", "MB read", "GB/s",
                         "of bound"],
                        [(r["shape"], r["method"], r["threads"], f"{r['median_ms']:.3f}",
                          f"{r['p25_ms']:.3f}–{r['p75_ms']:.3f}", _fmt(r["median_cpu_ms"], ".3f"),
                          f"{r['bytes_read'] / 1e6:.1f}", f"{r['effective_gbps']:.1f}",
                          f"{100 * r['fraction_of_bound']:.0f}%") for r in res["rows"]], "lllrrrrrr")
    t2 = markdown_table(["shape", "speedup (baseline time / subject time, per round)", "median", "p25–p75",
                         "CPU-time median"],
                        [(r["shape"], r["ratio"], f"{r['speedup_median']:.2f}×",
                          f"{r['speedup_p25']:.2f}–{r['speedup_p75']:.2f}", _fmt(r["cpu_speedup_median"], ".2f", "×"))
                         for r in res["ratios"]], "llrrr")
    tail = ["", "`CPU ms`: the calling thread's CPU time per call (1-thread methods); where it is well below the "
            "wall time, the process waited for a CPU (a loaded machine).", "",
            "Targets: q35 A8 1 thread ≥ ggml Q3_K, ≥ 3× numpy fp32, ≥ 50% of the 1-thread bound; "
            "all threads ≥ 1.6× the 1-thread speed.", ""]
    return "\n".join(head + ["## Times", "", t1, "", "## Ratios over rounds", "", t2] + tail)


def _fmt(v, spec: str, suffix: str = "") -> str:
    return "–" if v is None else f"{v:{spec}}{suffix}"


def write(res: dict, out_dir: Path, prov: dict) -> None:
    from bench import machine
    from bench.report import write_csv

    out_dir.mkdir(parents=True, exist_ok=True)
    line = machine.provenance_line(prov)
    write_csv(out_dir / "gemv.csv", res["rows"], line)
    write_csv(out_dir / "gemv_ratios.csv", res["ratios"], line)
    write_csv(out_dir / "gemv_raw.csv", res["raw"], line)
    (out_dir / "gemv.md").write_text(markdown(res, prov))


def parse_shapes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crossover", action="store_true", help="fused float vs tiled BLAS vs A8 by batch size")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (7; --crossover 5)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per method per round (10; --crossover 5)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--pause", type=float, default=0.05, help="seconds of pause before each method's turn")
    p.add_argument("--shapes", default=None, help="NxK,... (default: the LLaMA-7B shapes, or --crossover's)")
    p.add_argument("--batches", default=None, help="--crossover: batch sizes")
    p.add_argument("--bandwidth-mib", type=int, default=256)
    p.add_argument("--out", default=str(OUT_DIR))
    a = p.parse_args(argv)
    if a.crossover:
        from bench import gemv_crossover
        return gemv_crossover.main(a)
    from bench import machine

    prov = machine.provenance()
    prov["loadavg_start"] = [round(v, 2) for v in os.getloadavg()]
    res = run(parse_shapes(a.shapes) if a.shapes else DEFAULT_SHAPES, a.rounds or 7, a.repeats or 10, a.warmup, a.pause,
              a.bandwidth_mib)
    prov["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    write(res, Path(a.out), prov)
    print((Path(a.out) / "gemv.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
