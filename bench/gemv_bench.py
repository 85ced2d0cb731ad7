"""Fused q35 GEMV/GEMM kernel speed on LLaMA-7B shapes, against fp32 matvec and the memory-bandwidth bound.

`python -m bench.gemv_bench [--repeats 30] [--shapes 4096x4096,11008x4096,4096x11008] [--batches 1,2,4,8]`

What is timed (every number is measured in this run, on this machine):

* **q35 kernel**: `q35.matmul_kernel` on weights validated and laid out once by `q35.kernel_weights`, exactly as
  `q35.nn.Q35Linear` calls it; single-threaded (the kernel has no threads).
* **q35.matmul**: the public API, which also re-validates the QTensor and converts scales/zeros per call.
* **numpy fp32**: `W @ x` (OpenBLAS, its default thread count).
* **torch fp32**: `torch.nn.functional.linear(x, W)` with torch's default threads and with 1 thread.

Protocol: weights are random normal (seed 0, ×0.02); in each of `--rounds` rounds every method gets a 50 ms pause
(so the worker threads of the previous method stop spinning: OpenBLAS and OpenMP threads busy-wait after a call,
and on 2 cores that steals the single-threaded kernel's CPU), warm-up calls, then `--repeats` timed calls. Caches are kept cold: each
call uses the next of several copies of the weights, enough copies to exceed twice the last-level cache, so every
call streams its weights from DRAM (the q35 payload of 4096×4096 alone would fit in a 32 MiB L3). A separate
"q35 hot" run reuses one copy (L3-resident when it fits) to show whether the kernel is limited by memory or by
its own instruction throughput. Ratios (speedup of q35 over each fp32 method) are computed per round from
the round medians, then summarised over rounds (median, p25–p75).

Bandwidth bound: bytes the kernel must read (payload + float32 scales/zeros as the kernel reads them + x) divided
by the STREAM-like bandwidth measured in this run (bench.machine.measure_bandwidth, single thread: the kernel's
thread count; the all-core figure is reported too). Outputs: bench/results/bench/gemv.csv, gemv_raw.csv,
gemv.md, gemv_provenance.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "results" / "bench"
DEFAULT_SHAPES = ((4096, 4096), (11008, 4096), (4096, 11008))
LLC_BYTES = 32 * 2**20


def _llc_bytes() -> int:
    """Largest cache of this CPU from sysfs (fallback 32 MiB)."""
    best = 0
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in base.glob("index*"):
        try:
            s = (idx / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(s[-1], 1)
        best = max(best, int(s[:-1] if s[-1] in "KMG" else s) * mult)
    return best or LLC_BYTES


def read_bandwidth(size_mib: int = 256, repeats: int = 7) -> dict:
    """Read-only bandwidth of one thread (numpy float32 sum over a fresh array), GB/s: a GEMV only reads its
    weights, and STREAM copy/triad also write. Median and min/max over repeats."""
    a = np.ones(size_mib * 2**20 // 4, dtype=np.float32)
    a.sum()
    gbps = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a.sum()
        gbps.append(a.nbytes / (time.perf_counter() - t0) / 1e9)
    return {"median_gbps": statistics.median(gbps), "min_gbps": min(gbps), "max_gbps": max(gbps),
            "samples_gbps": gbps, "method": f"numpy float32 sum over {size_mib} MiB, 1 thread"}


def _q(values):
    s = sorted(values)
    if len(s) == 1:
        return s[0], s[0], s[0]
    q = statistics.quantiles(s, n=4, method="inclusive")
    return q[0], statistics.median(s), q[2]


def _bandwidths() -> dict:
    """Single-thread and all-CPU STREAM-like bandwidth, single-thread read-only bandwidth, and the bound: the best
    single-thread figure (the kernel is single-threaded and only reads its weights)."""
    from bench import machine

    print(f"measuring memory bandwidth (single thread, then all {machine.usable_cpus()} CPUs)...", flush=True)
    bw1 = machine.measure_bandwidth(size_mib=256, repeats=7, threads=1)
    bwn = machine.measure_bandwidth(size_mib=256, repeats=7)
    print(f"  1 thread: triad {bw1['kernels']['triad']['median_gbps']:.1f} GB/s, copy "
          f"{bw1['kernels']['copy']['median_gbps']:.1f} GB/s; all CPUs: triad {bwn['median_gbps']:.1f} GB/s", flush=True)
    bwr = read_bandwidth()
    print(f"  1 thread read-only: {bwr['median_gbps']:.1f} GB/s", flush=True)
    bound = max(bw1["kernels"]["copy"]["median_gbps"], bw1["kernels"]["triad"]["median_gbps"], bwr["median_gbps"])
    return {"bandwidth_1thread": bw1, "bandwidth_all": bwn, "bandwidth_read": bwr, "bound_gbps": bound}


def _weight_copies(w: np.ndarray, llc: int) -> dict:
    """The quantized weights and enough copies of them (and of the fp32 weights) to exceed twice the last-level
    cache, so every timed call streams its weights from DRAM."""
    import torch

    import q35

    t0 = time.perf_counter()
    qt = q35.quantize(w, 128)
    tq = time.perf_counter() - t0
    kw = q35.kernel_weights(qt)
    q_bytes = qt.packed.nbytes + kw.scales.nbytes + kw.zeros.nbytes
    n_q = max(2, math.ceil(2 * llc / q_bytes))
    qts = [qt] + [q35.QTensor(qt.packed.copy(), qt.scales.copy(), qt.zeros.copy(), qt.shape, qt.group_size)
                  for _ in range(n_q - 1)]
    n_f = max(2, math.ceil(2 * llc / w.nbytes))
    w_copies = [w] + [w.copy() for _ in range(n_f - 1)]
    n, k = w.shape
    print(f"shape {n}x{k}: quantized in {tq:.2f} s; q35 {q_bytes / 1e6:.1f} MB x {n_q} copies, "
          f"fp32 {w.nbytes / 1e6:.1f} MB x {n_f} copies", flush=True)
    return {"qt": qt, "q_bytes": q_bytes, "qts": qts, "q_copies": [kw] + [q35.kernel_weights(c) for c in qts[1:]],
            "w_copies": w_copies, "tw_copies": [torch.from_numpy(a) for a in w_copies]}


def _methods(c: dict, x: np.ndarray, torch_threads: int) -> dict:
    """name -> zero-argument call of each timed method on input ``x`` [batch, K]; each call uses the next copy."""
    import torch

    import q35

    b = x.shape[0]
    xv = x[0] if b == 1 else x
    xt = torch.from_numpy(x)
    n_q, n_f = len(c["q_copies"]), len(c["w_copies"])
    ctr = {"i": 0}

    def nxt(m):
        ctr["i"] += 1
        return ctr["i"] % m

    def q35_kernel(hot=False):
        return q35.matmul_kernel(xv, c["q_copies"][0 if hot else nxt(n_q)])

    def torch_fp32(threads):
        def f():
            old = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return torch.nn.functional.linear(xt, c["tw_copies"][nxt(n_f)])
            finally:
                torch.set_num_threads(old)
        return f

    return {"q35 kernel": q35_kernel, "q35 kernel (hot cache)": lambda: q35_kernel(True),
            "q35.matmul": lambda: q35.matmul(xv, c["qts"][nxt(n_q)]),
            "numpy fp32": lambda: c["w_copies"][nxt(n_f)] @ (xv if b == 1 else x.T),
            f"torch fp32 ({torch_threads} threads)": torch_fp32(torch_threads),
            "torch fp32 (1 thread)": torch_fp32(1)}


def _check_kernel(methods: dict, qt, x: np.ndarray) -> None:
    """Correctness guard: the q35 result must match the dequantized reference closely."""
    import q35

    yq = np.asarray(methods["q35 kernel"]()).reshape(-1)
    yr = (x.astype(np.float64) @ q35.dequantize(qt).astype(np.float64).T).reshape(-1)
    rel = float(np.max(np.abs(yq - yr)) / max(np.max(np.abs(yr)), 1e-30))
    if rel > 1e-4:
        raise RuntimeError(f"q35 kernel result off by {rel:.2e} (relative) for {qt.shape[0]}x{qt.shape[1]} "
                           f"batch {x.shape[0]}")


def _time_rounds(methods: dict, repeats: int, warmup: int, rounds: int, raw_key: dict, raw: list) -> tuple:
    """Every method in every round (after a pause and warm-up calls): all call times and each round's median."""
    times = {m: [] for m in methods}
    round_meds = {m: [] for m in methods}
    for rnd in range(rounds):
        for m, f in methods.items():
            time.sleep(0.05)          # let other methods' worker threads stop spinning
            for _ in range(warmup):
                f()
            ts = []
            for r in range(repeats):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
                raw.append({**raw_key, "method": m, "round": rnd, "repeat": r, "seconds": ts[-1]})
            times[m] += ts
            round_meds[m].append(statistics.median(ts))
    return times, round_meds


def _result_row(m: str, ts: list, round_meds: dict, n: int, k: int, b: int, nbytes: int, bound_gbps: float) -> dict:
    p25, med, p75 = _q(ts)
    row = {"shape": f"{n}x{k}", "N": n, "K": k, "batch": b, "method": m, "repeats": len(ts),
           "median_ms": 1e3 * med, "p25_ms": 1e3 * p25, "p75_ms": 1e3 * p75,
           "min_ms": 1e3 * min(ts), "max_ms": 1e3 * max(ts), "bytes_read": nbytes,
           "effective_gbps": nbytes / med / 1e9, "bound_ms": 1e3 * nbytes / (bound_gbps * 1e9)}
    row["fraction_of_bound"] = row["bound_ms"] / row["median_ms"]
    rp25, rmed, rp75 = _q([a / q for a, q in zip(round_meds[m], round_meds["q35 kernel"])])
    row.update(time_ratio_vs_q35_kernel=rmed, time_ratio_p25=rp25, time_ratio_p75=rp75)
    return row


def run(shapes, batches, repeats: int, warmup: int, rounds: int = 3, seed: int = 0) -> dict:
    import torch

    llc = _llc_bytes()
    torch_threads = torch.get_num_threads()
    rng = np.random.default_rng(seed)
    bw = _bandwidths()
    rows, raw = [], []
    for n, k in shapes:
        w = (rng.standard_normal((n, k), dtype=np.float32) * np.float32(0.02))
        c = _weight_copies(w, llc)
        for b in batches:
            x = rng.standard_normal((b, k), dtype=np.float32)
            methods = _methods(c, x, torch_threads)
            _check_kernel(methods, c["qt"], x)
            times, round_meds = _time_rounds(methods, repeats, warmup, rounds, {"shape": f"{n}x{k}", "batch": b}, raw)
            for m, ts in times.items():
                weights = c["q_bytes"] if m.startswith("q35") else w.nbytes
                rows.append(_result_row(m, ts, round_meds, n, k, b, weights + x.nbytes + 4 * n * b, bw["bound_gbps"]))
            summ = {m: statistics.median(ts) * 1e3 for m, ts in times.items()}
            print(f"  batch {b}: " + ", ".join(f"{m} {v:.2f} ms" for m, v in summ.items()), flush=True)
    return {"rows": rows, "raw": raw, **bw, "llc_bytes": llc, "torch_threads": torch_threads, "repeats": repeats,
            "warmup": warmup, "rounds": rounds}


def _markdown(res: dict, prov: dict) -> str:
    from bench import machine

    rows = res["rows"]
    bw1, bwn = res["bandwidth_1thread"], res["bandwidth_all"]
    lines = ["# q35 fused GEMV/GEMM vs fp32 matvec (LLaMA-7B shapes)", "",
             f"Machine: {machine.provenance_line(prov)}", "",
             f"Load average at start/end: {prov.get('loadavg_start')} / {prov.get('loadavg_end')} "
             "(other processes on this machine compete for its 2 cores). Each method runs "
             f"{res['repeats']} timed calls (after {res['warmup']} warm-up calls and a 50 ms pause) in each of "
             f"{res['rounds']} rounds; medians and quartiles are over all {res['repeats'] * res['rounds']} calls; "
             "ratios are per round (round medians, back to back) and summarised over rounds.", "",
             f"Memory bandwidth measured in this run (bench.machine.measure_bandwidth, 256 MiB arrays): "
             f"1 thread copy {bw1['kernels']['copy']['median_gbps']:.1f} GB/s "
             f"(IQR {bw1['kernels']['copy']['iqr_gbps']:.1f}), triad {bw1['kernels']['triad']['median_gbps']:.1f} GB/s; "
             f"all {bwn['threads']} CPUs triad {bwn['median_gbps']:.1f} GB/s; 1 thread read-only (numpy sum) "
             f"{res['bandwidth_read']['median_gbps']:.1f} GB/s. "
             f"Bound used: {res['bound_gbps']:.1f} GB/s (the better single-thread figure; the q35 kernel is "
             "single-threaded).", "",
             "`time ratio` = method time / q35-kernel time in the same round (>1: q35 faster), median [p25–p75]. "
             "`of bound` = (bytes read / bandwidth) / measured time. Cold cache unless marked hot.", "",
             "| shape | batch | method | median ms | p25–p75 ms | min–max ms | GB/s | of bound | time ratio |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['batch']} | {r['method']} | {r['median_ms']:.3f} | "
                     f"{r['p25_ms']:.3f}–{r['p75_ms']:.3f} | {r['min_ms']:.3f}–{r['max_ms']:.3f} | "
                     f"{r['effective_gbps']:.2f} | {100 * r['fraction_of_bound']:.0f}% | "
                     f"{r['time_ratio_vs_q35_kernel']:.2f} [{r['time_ratio_p25']:.2f}–{r['time_ratio_p75']:.2f}] |")
    lines += ["", "## Targets at batch 1 (cold cache)", "",
              "| shape | q35 speedup vs numpy fp32 | vs torch fp32 (default threads) | vs torch fp32 (1 thread) | "
              "q35 of bandwidth bound | hot/cold time |", "|---|---:|---:|---:|---:|---:|"]
    for shape in dict.fromkeys(r["shape"] for r in rows):
        sel = {r["method"]: r for r in rows if r["shape"] == shape and r["batch"] == 1}
        if "q35 kernel" not in sel:
            continue
        tdef = next(v for m, v in sel.items() if m.startswith("torch fp32 (") and "1 thread" not in m)
        lines.append(f"| {shape} | {sel['numpy fp32']['time_ratio_vs_q35_kernel']:.2f}× | "
                     f"{tdef['time_ratio_vs_q35_kernel']:.2f}× | "
                     f"{sel['torch fp32 (1 thread)']['time_ratio_vs_q35_kernel']:.2f}× | "
                     f"{100 * sel['q35 kernel']['fraction_of_bound']:.0f}% | "
                     f"{sel['q35 kernel (hot cache)']['median_ms'] / sel['q35 kernel']['median_ms']:.2f} |")
    lines += ["", "Targets: speedup ≥ 3× over fp32 matvec; ≥ 60% of the bandwidth bound for the packed bytes. "
              "A hot/cold time ratio near 1 means the kernel is limited by its own instruction throughput "
              "(decode + multiply/add on one core), not by memory.", ""]
    return "\n".join(lines)


def _write(res: dict, out_dir: Path, prov: dict) -> None:
    from bench import machine
    from bench.report import write_csv

    out_dir.mkdir(parents=True, exist_ok=True)
    line = machine.provenance_line(prov)
    write_csv(out_dir / "gemv.csv", res["rows"], line)
    write_csv(out_dir / "gemv_raw.csv", res["raw"], line)
    (out_dir / "gemv.md").write_text(_markdown(res, prov))
    bw1, bwn = res["bandwidth_1thread"], res["bandwidth_all"]
    (out_dir / "gemv_provenance.json").write_text(json.dumps(
        {"provenance": prov, "bandwidth_1thread": bw1, "bandwidth_all": bwn, "bound_gbps": res["bound_gbps"],
         "bandwidth_read": res["bandwidth_read"],
         "llc_bytes": res["llc_bytes"], "torch_threads": res["torch_threads"]}, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10, help="timed calls per method per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds; every method runs in every round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--shapes", default=",".join(f"{n}x{k}" for n, k in DEFAULT_SHAPES))
    p.add_argument("--batches", default="1,2,4,8")
    p.add_argument("--out", default=str(OUT_DIR))
    a = p.parse_args(argv)
    from bench import machine

    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    batches = [int(b) for b in a.batches.split(",")]
    prov = machine.provenance()
    prov["loadavg_start"] = [round(v, 2) for v in os.getloadavg()]
    res = run(shapes, batches, a.repeats, a.warmup, a.rounds)
    prov["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    _write(res, Path(a.out), prov)
    print((Path(a.out) / "gemv.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
