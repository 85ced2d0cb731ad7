"""Batch-size crossover of q35's float paths (fused kernel vs dequantized row tiles x BLAS) and the A8 kernel.

    python -m bench.gemv_bench --crossover [--shapes 576x576,1536x576,576x1536,4096x4096] [--batches 1,2,...]

`q35.matmul_kernel(activations="float")` runs the fused kernel for batches below `q35.fast.gemm.BLAS_MIN_BATCH`
and the tiled BLAS path from there on; this measures both paths directly (`float_fused` and
`float_tiled_blas` of q35.fast.gemm, so the dispatch rule itself is not in the way) plus A8, on compact g192
weights, with one thread and with all usable CPUs (the same count for the fused kernel, the tile dequantization and
OpenBLAS, whose threads are set through threadpoolctl). All methods of one (shape, batch) run interleaved (bench.timing), on cold
weight copies. Per shape and thread setting it reports the measured crossover (the smallest batch from which
tiled BLAS is faster than the fused kernel at every larger batch measured) and the dispatch regret: time of the
path BLAS_MIN_BATCH picks / time of the faster path, per batch. Outputs: crossover.csv, crossover_raw.csv,
crossover.md in bench/results/bench/.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench import gemv_methods as gm
from bench.timing import interleaved, quartiles

SMOLLM2_SHAPES = ((576, 576), (1536, 576), (576, 1536))
DEFAULT_SHAPES = SMOLLM2_SHAPES + ((4096, 4096),)
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256)
FUSED, TILED, A8 = "fused float", "tiled BLAS", "A8"


class BlasThreads:
    """Sets OpenBLAS's thread count directly (threadpoolctl's per-library controllers: one C call, cheap enough
    to do around every timed call)."""

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self.libs = ThreadpoolController().select(user_api="blas").lib_controllers
        self.default = [c.num_threads for c in self.libs]

    def set(self, n: int | None) -> None:
        for c, d in zip(self.libs, self.default):
            c.set_num_threads(d if n is None else n)


def methods_for(kw, x2: np.ndarray, llc: int, q_bytes: int, all_threads: int, blas: BlasThreads) -> dict:
    """(path, threads) -> zero-argument call, each call on the next cold copy of the weights."""
    import q35
    from q35.fast import gemm as kernels

    nxt = gm.cycle(gm.kw_copies(kw, gm.n_copies(q_bytes, llc)))

    def tiled(nt):
        def f():
            blas.set(nt)
            try:
                return kernels.float_tiled_blas(x2, nxt(), nt)
            finally:
                blas.set(None)
        return f

    calls = {}
    for nt in dict.fromkeys((1, all_threads)):
        calls[(FUSED, nt)] = lambda nt=nt: kernels.float_fused(x2, nxt(), nt)
        calls[(TILED, nt)] = tiled(nt)
        calls[(A8, nt)] = lambda nt=nt: q35.matmul_kernel(x2, nxt(), activations="a8", threads=nt)
    return calls


def _check(calls: dict, x2: np.ndarray, deq: np.ndarray) -> None:
    ref = x2.astype(np.float64) @ deq.astype(np.float64).T
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    for (path, nt), f in calls.items():
        err = float(np.max(np.abs(np.asarray(f(), np.float64) - ref))) / scale
        tol = gm.TOL_INT8_ACTIVATIONS if path == A8 else gm.TOL_EXACT_FLOAT
        if not err <= tol:
            raise RuntimeError(f"crossover: {path} ({nt} threads) off by {err:.2e} on {deq.shape} batch "
                               f"{x2.shape[0]}: refusing to time it")


def measure(shapes=DEFAULT_SHAPES, batches=DEFAULT_BATCHES, rounds: int = 5, repeats: int = 5, warmup: int = 1,
            pause: float = 0.05, seed: int = 0, progress: bool = True, llc: int | None = None) -> dict:
    """Rows (shape, batch, path, threads, median_ms, p25_ms, p75_ms, us_per_row) and every timed call."""
    from tqdm import tqdm

    import q35
    from bench import machine
    from bench.gemv_bench import llc_bytes

    llc, all_threads, blas = llc or llc_bytes(), machine.usable_cpus(), BlasThreads()
    rng = np.random.default_rng(seed)
    rows, raw = [], []
    bar = tqdm(total=len(shapes) * len(batches), desc="crossover", disable=not progress)
    for n, k in shapes:
        w = rng.standard_normal((n, k), dtype=np.float32) * np.float32(0.02)
        qt, kw, q_bytes = gm.q35_weights(w, seed)
        deq = q35.dequantize(qt)
        for b in batches:
            x2 = rng.standard_normal((b, k), dtype=np.float32)
            calls = methods_for(kw, x2, llc, q_bytes, all_threads, blas)
            _check(calls, x2, deq)
            named = {f"{p}|{t}": f for (p, t), f in calls.items()}
            res = interleaved(named, rounds=rounds, repeats=repeats, warmup=warmup, pause=pause, seed=seed + b,
                              key={"shape": f"{n}x{k}", "batch": b})
            raw += res["raw"]
            for name, ts in res["seconds"].items():
                path, nt = name.split("|")
                p25, med, p75 = quartiles(ts)
                rows.append({"shape": f"{n}x{k}", "batch": b, "path": path, "threads": int(nt),
                             "median_ms": 1e3 * med, "p25_ms": 1e3 * p25, "p75_ms": 1e3 * p75,
                             "us_per_row": 1e6 * med / b, "rounds": rounds, "calls": len(ts)})
            bar.update(1)
    bar.close()
    return {"rows": rows, "raw": raw, "all_threads": all_threads, "rounds": rounds, "repeats": repeats}


def _median(rows, shape, batch, path, threads):
    for r in rows:
        if (r["shape"], r["batch"], r["path"], r["threads"]) == (shape, batch, path, threads):
            return r["median_ms"]
    return None


def crossovers(rows: list[dict], blas_min_batch: int) -> list[dict]:
    """Per shape and thread setting: the measured fused/tiled crossover and the dispatch regret per batch."""
    out = []
    for shape in dict.fromkeys(r["shape"] for r in rows):
        batches = sorted({r["batch"] for r in rows if r["shape"] == shape})
        for nt in sorted({r["threads"] for r in rows if r["shape"] == shape and r["path"] == TILED}):
            fused = [_median(rows, shape, b, FUSED, nt) for b in batches]
            tiled = [_median(rows, shape, b, TILED, nt) for b in batches]
            a8 = [_median(rows, shape, b, A8, nt) for b in batches]
            wins = [t < f for f, t in zip(fused, tiled)]
            cross = next((b for i, b in enumerate(batches) if all(wins[i:])), None)
            regret = [(t if b >= blas_min_batch else f) / min(f, t) for b, f, t in zip(batches, fused, tiled)]
            out.append({"shape": shape, "threads": nt, "crossover_batch": cross,
                        "last_fused_win": max((b for b, w in zip(batches, wins) if not w), default=None),
                        "blas_min_batch": blas_min_batch, "worst_dispatch_regret": max(regret),
                        "worst_regret_batch": batches[int(np.argmax(regret))],
                        "a8_fastest_batches": " ".join(str(b) for b, f, t, a in zip(batches, fused, tiled, a8)
                                                       if a < min(f, t))})
    return out


def markdown(res: dict, cross: list[dict], prov: dict) -> str:
    from bench import machine
    from bench.report import markdown_table

    rows = res["rows"]
    cols = [(p, t) for p, t in dict.fromkeys((r["path"], r["threads"]) for r in rows)]
    body = []
    for shape in dict.fromkeys(r["shape"] for r in rows):
        for b in sorted({r["batch"] for r in rows if r["shape"] == shape}):
            body.append([shape, b] + [f"{_median(rows, shape, b, p, t):.3f}" for p, t in cols])
    t1 = markdown_table(["shape", "batch"] + [f"{p} {t}T ms" for p, t in cols], body, "lr" + "r" * len(cols))
    t2 = markdown_table(["shape", "threads", "measured crossover", "last batch fused wins", "BLAS_MIN_BATCH",
                         "worst dispatch regret", "at batch", "batches where A8 is fastest"],
                        [(c["shape"], c["threads"], c["crossover_batch"], c["last_fused_win"], c["blas_min_batch"],
                          f"{c['worst_dispatch_regret']:.2f}×", c["worst_regret_batch"], c["a8_fastest_batches"])
                         for c in cross], "lrrrrrrl")
    return "\n".join([
        "# q35 float paths by batch size: fused kernel vs tiled BLAS (and A8)", "",
        f"Machine: {machine.provenance_line(prov)}", "",
        f"Load average at start/end: {prov.get('loadavg_start')} / {prov.get('loadavg_end')}. Compact g192 weights, "
        f"cold copies; {res['rounds']} interleaved rounds x {res['repeats']} calls; medians in ms. The fused kernel "
        "has one thread in both settings; `nT` = thread count of tiled BLAS (OpenBLAS) and A8.", "", t1, "",
        "Crossover = smallest batch from which tiled BLAS beats the fused kernel at every larger batch measured. "
        "Dispatch regret = time of the path `BLAS_MIN_BATCH` selects / time of the faster float path.", "", t2, ""])


def main(args) -> int:
    from bench import machine
    from bench.gemv_bench import parse_shapes
    from bench.report import write_csv
    from q35.fast import gemm as kernels

    shapes = parse_shapes(args.shapes) if args.shapes else DEFAULT_SHAPES
    batches = [int(b) for b in args.batches.split(",")] if args.batches else DEFAULT_BATCHES
    prov = machine.provenance()
    prov["loadavg_start"] = [round(v, 2) for v in os.getloadavg()]
    res = measure(shapes, batches, args.rounds or 5, args.repeats or 5, 1, args.pause)
    prov["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    cross = crossovers(res["rows"], kernels.BLAS_MIN_BATCH)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    line = machine.provenance_line(prov)
    write_csv(out / "crossover.csv", res["rows"], line)
    write_csv(out / "crossover_summary.csv", cross, line)
    write_csv(out / "crossover_raw.csv", res["raw"], line)
    (out / "crossover.md").write_text(markdown(res, cross, prov))
    print((out / "crossover.md").read_text())
    for c in cross:
        print(f"measured crossover {c['shape']} ({c['threads']} threads): tiled BLAS from batch "
              f"{c['crossover_batch']} (q35.fast.gemm.BLAS_MIN_BATCH = {c['blas_min_batch']}; worst regret "
              f"{c['worst_dispatch_regret']:.2f}x at batch {c['worst_regret_batch']})")
    return 0
