"""Interleaved timing of several methods, shared by the kernel and quantizer benchmarks.

Every round runs every method once, in a different (seeded) order per round, so slow drifts of a shared
machine's load hit all methods alike; each method's turn starts with a pause (OpenBLAS, OpenMP and torch worker
threads busy-wait after a call, and on few cores that steals CPU from the next method), then warm-up calls, then
the timed calls. Comparisons are made per round (ratio of the two methods' round medians, measured minutes
apart at most) and summarised over rounds as median and p25-p75.

Each call's CPU time of the calling thread (``time.thread_time``) is recorded next to its wall time: for a method
that runs on the calling thread alone it shows how much of the wall time was spent waiting for a CPU on a loaded
machine (for multi-threaded methods it counts only the caller's share and means little).
"""
from __future__ import annotations

import random
import statistics
import time
from typing import Callable

import numpy as np

__all__ = ["interleaved", "quartiles", "ratio_summary", "pause_threads"]


def quartiles(values) -> tuple[float, float, float]:
    """(p25, median, p75) of the values (linear interpolation; all three equal for one value)."""
    a = np.asarray(list(values), dtype=np.float64)
    if a.size == 0:
        return (float("nan"),) * 3
    p25, med, p75 = np.percentile(a, [25, 50, 75])
    return float(p25), float(med), float(p75)


def ratio_summary(numerator: list[float], denominator: list[float]) -> dict:
    """Per-round ratios numerator[r] / denominator[r], summarised: {"median", "p25", "p75", "rounds"}."""
    if len(numerator) != len(denominator):
        raise ValueError("ratio_summary needs one value per round on both sides")
    p25, med, p75 = quartiles(a / b for a, b in zip(numerator, denominator))
    return {"median": med, "p25": p25, "p75": p75, "rounds": len(numerator)}


def pause_threads(seconds: float) -> None:
    """Sleep so that other methods' spinning worker threads go idle before the next method runs."""
    if seconds > 0:
        time.sleep(seconds)


def interleaved(methods: dict[str, Callable[[], object]], *, rounds: int, repeats: int, warmup: int = 1,
                pause: float = 0.05, seed: int = 0, key: dict | None = None, progress=None) -> dict:
    """Time ``methods`` (name -> zero-argument call) in interleaved rounds.

    Returns {"seconds": {name: every timed call}, "cpu_seconds": {name: the calling thread's CPU time of each},
    "round_medians": {name: one median per round}, "round_cpu_medians": {...},
    "raw": [one dict per timed call: **key, method, round, position (in that round's order), repeat, seconds,
    cpu_seconds]}.
    ``progress``: an object with ``update(1)`` (tqdm), advanced once per method turn."""
    if rounds < 1 or repeats < 1 or warmup < 0:
        raise ValueError("rounds and repeats must be >= 1 and warmup >= 0")
    order_rng = random.Random(seed)
    names = list(methods)
    seconds, cpu = {m: [] for m in names}, {m: [] for m in names}
    round_medians, round_cpu = {m: [] for m in names}, {m: [] for m in names}
    raw = []
    for rnd in range(rounds):
        order = names[:]
        order_rng.shuffle(order)
        for pos, m in enumerate(order):
            f = methods[m]
            pause_threads(pause)
            for _ in range(warmup):
                f()
            ts, cs = [], []
            for r in range(repeats):
                c0, t0 = time.thread_time(), time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
                cs.append(time.thread_time() - c0)
                raw.append({**(key or {}), "method": m, "round": rnd, "position": pos, "repeat": r,
                            "seconds": ts[-1], "cpu_seconds": cs[-1]})
            seconds[m] += ts
            cpu[m] += cs
            round_medians[m].append(statistics.median(ts))
            round_cpu[m].append(statistics.median(cs))
            if progress is not None:
                progress.update(1)
    return {"seconds": seconds, "cpu_seconds": cpu, "round_medians": round_medians, "round_cpu_medians": round_cpu,
            "raw": raw}
