"""Quantizer throughput: q35's modes against ggml's Q3_K/Q4_K (with and without an importance matrix), Q4_0 and HQQ.

    python -m bench.quantize_bench [--rounds 3] [--shapes 4096x4096,576x576,1536x576,576x1536]

Methods (weights ~ 0.02·N(0, 1), seed 0; importance = a random positive vector, the speed does not depend on its
values; ggml's imatrix is the same vector, as llama-quantize passes the mean squared activation per column):

* q35 f16 min-max (SPEC §3, group 128, serial kernel), q35 compact + importance (SPEC §8, group 192; OpenMP over
  rows), q35 GPTQ in the deployed configuration (SPEC §9, `q35.torch.config.DEFAULT_CONFIG`: compact g224, the
  importance permutation, lane_act order; a Hessian from random activations; OpenMP over rows);
* ggml ``ggml_quantize_chunk`` Q3_K and Q4_K with and without the imatrix, Q4_0 (serial: llama-quantize gets its
  threads by splitting rows over threads; the per-thread figure is what one of them does); rows whose length is
  not a multiple of 256 have no Q3_K/Q4_K (llama.cpp falls back to another type there): those rows are skipped;
* HQQ 3- and 4-bit, group 64 (HQQLinear's defaults, ``Quantizer.quantize`` on CPU, torch threads).

Thread settings: 1 thread (q35: the calling thread pinned to one CPU, so the kernel's default thread count is 1;
torch: ``set_num_threads(1)``) and all usable CPUs for the methods that have threads. Every quantizer's output is
decoded once and its relative RMSE checked before timing. Interleaved rounds (bench.timing); medians.
Outputs: bench/results/bench/quantize.csv, quantize_raw.csv, quantize.md.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.timing import interleaved, quartiles

OUT_DIR = Path(__file__).resolve().parent / "results" / "bench"
DEFAULT_SHAPES = ((4096, 4096), (576, 576), (1536, 576), (576, 1536))
MAX_REL_RMSE = 0.25         # a 3-bit grid on Gaussian weights lands near 0.1-0.2; a broken quantizer far above


@dataclass
class Quantizer:
    name: str
    threads: int
    call: Callable[[], object]
    decode: Callable[[object], np.ndarray]     # the call's result -> float32 W_hat (for the check)


@contextlib.contextmanager
def one_cpu():
    """Pin the calling thread to one CPU (q35's kernels take their default thread count from its affinity)."""
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(old)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _q35_call(fn, threads: int, all_threads: int):
    if threads == all_threads:
        return fn

    def pinned():
        with one_cpu():
            return fn()
    return pinned


def q35_quantizers(w: np.ndarray, imp: np.ndarray, all_threads: int) -> tuple[list[Quantizer], list[str]]:
    import q35

    notes, out = [], []
    dec = q35.dequantize
    out.append(Quantizer("q35 f16 min-max g128", 1, lambda: q35.quantize(w, 128), dec))
    for nt in dict.fromkeys((1, all_threads)):
        out.append(Quantizer("q35 compact+importance g192", nt, _q35_call(
            lambda: q35.quantize(w, 192, scale_format="compact", importance=imp), nt, all_threads), dec))
    from q35.torch.config import DEFAULT_CONFIG as cfg
    x = np.random.default_rng(1).standard_normal((4 * w.shape[1], w.shape[1]))
    h = x.T @ x / x.shape[0]
    for nt in dict.fromkeys((1, all_threads)):
        out.append(Quantizer(f"q35 GPTQ compact g{cfg.group_size} +perm (deployed)", nt, _q35_call(
            lambda nt=nt: q35.quantize_gptq(w, h, cfg.group_size, scale_format=cfg.scale_format, permute=cfg.permute,
                                            threads=nt, **cfg.gptq), nt, all_threads), dec))
    return out, notes


def ggml_quantizers(w: np.ndarray, imp: np.ndarray) -> tuple[list[Quantizer], list[str]]:
    from bench import ggml_gemv

    g = ggml_gemv.load()
    k = w.shape[1]
    out, notes = [], []
    for t, use_imp in (("Q3_K", True), ("Q3_K", False), ("Q4_K", True), ("Q4_K", False), ("Q4_0", False)):
        name = f"ggml {t}" + (" imatrix" if use_imp else "")
        if k % g.block_size(t):
            notes.append(f"{name}: rows of {k} are not a multiple of {g.block_size(t)} (llama.cpp uses a fallback "
                         "type there): skipped for this shape.")
            continue
        out.append(Quantizer(name, 1, lambda t=t, u=use_imp: g.quantize(w, t, imp if u else None),
                             lambda wq, t=t: g.dequantize(wq, t, k)))
    return out, notes


def hqq_quantizers(w: np.ndarray, all_threads: int) -> list[Quantizer]:
    import torch

    from bench.anchors import ensure_hqq

    hq = ensure_hqq()
    wt = torch.from_numpy(w)

    def make(nbits: int, nt: int):
        def f():
            with torch_threads(nt), contextlib.redirect_stdout(sys.stderr):
                return hq.quantize(wt, nbits=nbits, channel_wise=True, group_size=64, optimize=True,
                                   round_zero=False, axis=1, bitpack=True, device="cpu")
        return f

    def decode(res):
        wq, meta = res
        return hq.dequantize(wq, dict(meta, compute_dtype=torch.float32)).float().numpy().reshape(w.shape)

    return [Quantizer(f"HQQ {b}-bit g64", nt, make(b, nt), decode)
            for b in (3, 4) for nt in dict.fromkeys((1, all_threads))]


def check(quantizers: list[Quantizer], w: np.ndarray) -> dict:
    """Run each quantizer once (also the warm-up) and check its reconstruction; name|threads -> relative RMSE."""
    norm = float(np.sqrt(np.mean(w.astype(np.float64) ** 2)))
    errs = {}
    for q in quantizers:
        wh = np.asarray(q.decode(q.call()), dtype=np.float64).reshape(w.shape)
        e = float(np.sqrt(np.mean((wh - w) ** 2))) / norm
        if not e <= MAX_REL_RMSE:
            raise RuntimeError(f"{q.name} ({q.threads} threads): relative RMSE {e:.3f} on {w.shape}: refusing to "
                               "time a broken quantizer")
        errs[f"{q.name}|{q.threads}"] = e
    return errs


def measure(shapes=DEFAULT_SHAPES, rounds: int = 3, repeats: int = 1, pause: float = 0.1, seed: int = 0,
            hqq: bool = True, progress: bool = True) -> dict:
    from tqdm import tqdm

    from bench import machine

    all_threads = machine.usable_cpus()
    rng = np.random.default_rng(seed)
    rows, raw, notes = [], [], []
    for n, k in shapes:
        w = rng.standard_normal((n, k), dtype=np.float32) * np.float32(0.02)
        imp = rng.random(k, dtype=np.float32) + np.float32(0.05)
        qs, nq = q35_quantizers(w, imp, all_threads)
        gs, ng = ggml_quantizers(w, imp)
        qs += gs + (hqq_quantizers(w, all_threads) if hqq else [])
        notes += [f"{n}x{k}: {s}" for s in nq + ng]
        errs = check(qs, w)
        with tqdm(total=rounds * len(qs), desc=f"quantize {n}x{k}", leave=False, disable=not progress) as bar:
            res = interleaved({f"{q.name}|{q.threads}": q.call for q in qs}, rounds=rounds, repeats=repeats,
                              warmup=0, pause=pause, seed=seed, key={"shape": f"{n}x{k}"}, progress=bar)
        raw += res["raw"]
        for q in qs:
            key = f"{q.name}|{q.threads}"
            p25, med, p75 = quartiles(res["seconds"][key])
            rows.append({"shape": f"{n}x{k}", "method": q.name, "threads": q.threads, "median_s": med,
                         "p25_s": p25, "p75_s": p75, "mweights_per_s": n * k / med / 1e6,
                         "mweights_per_s_per_thread": n * k / med / 1e6 / q.threads,
                         "median_cpu_s": quartiles(res["cpu_seconds"][key])[1] if q.threads == 1 else None,
                         "rel_rmse": errs[key], "rounds": rounds, "calls": len(res["seconds"][key])})
            print(f"  {n}x{k} {q.name:<30} {q.threads}T {rows[-1]['mweights_per_s']:8.2f} M weights/s", flush=True)
    return {"rows": rows, "raw": raw, "notes": list(dict.fromkeys(notes)), "rounds": rounds, "repeats": repeats,
            "all_threads": all_threads}


def markdown(res: dict, prov: dict) -> str:
    from bench import machine
    from bench.report import markdown_table

    t = markdown_table(["shape", "method", "threads", "median s", "p25–p75 s", "CPU s", "M weights/s",
                        "M weights/s/thread", "rel. RMSE"],
                       [(r["shape"], r["method"], r["threads"], f"{r['median_s']:.3f}",
                         f"{r['p25_s']:.3f}–{r['p75_s']:.3f}",
                         "–" if r["median_cpu_s"] is None else f"{r['median_cpu_s']:.3f}",
                         f"{r['mweights_per_s']:.2f}", f"{r['mweights_per_s_per_thread']:.2f}", f"{r['rel_rmse']:.3f}")
                        for r in res["rows"]], "llrrrrrrr")
    return "\n".join([
        "# Quantizer throughput: q35 vs ggml (Q3_K/Q4_K with and without imatrix, Q4_0) vs HQQ", "",
        f"Machine: {machine.provenance_line(prov)}", "",
        f"Load average at start/end: {prov.get('loadavg_start')} / {prov.get('loadavg_end')}. "
        f"{res['rounds']} interleaved rounds (order shuffled per round, pause before each method, one untimed "
        "checked call of every method first); medians over rounds. Random weights 0.02·N(0,1); importance / "
        "imatrix: one random positive value per input column.", "", t, "",
        "`CPU s`: the calling thread's CPU time (1-thread rows); well below the wall time means the process waited "
        "for a CPU. ggml's quantize_chunk is serial (1 thread); `rel. RMSE` = RMS(W − Ŵ) / RMS(W) of that "
        "method's output.",
        "", *(f"- {s}" for s in res["notes"]), ""])


def main(argv: list[str] | None = None) -> int:
    from bench import machine
    from bench.gemv_bench import parse_shapes
    from bench.report import write_csv

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1, help="timed calls per method per round")
    p.add_argument("--pause", type=float, default=0.1)
    p.add_argument("--shapes", default=",".join(f"{n}x{k}" for n, k in DEFAULT_SHAPES))
    p.add_argument("--no-hqq", action="store_true", help="leave HQQ out")
    p.add_argument("--out", default=str(OUT_DIR))
    a = p.parse_args(argv)
    prov = machine.provenance()
    prov["loadavg_start"] = [round(v, 2) for v in os.getloadavg()]
    res = measure(parse_shapes(a.shapes), a.rounds, a.repeats, a.pause, hqq=not a.no_hqq)
    prov["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    line = machine.provenance_line(prov)
    write_csv(out / "quantize.csv", res["rows"], line)
    write_csv(out / "quantize_raw.csv", res["raw"], line)
    (out / "quantize.md").write_text(markdown(res, prov))
    print((out / "quantize.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
