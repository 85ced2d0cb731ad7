"""Interleaved timing of several methods, shared by the kernel and quantizer benchmarks.

Every round runs every method once, in a different (seeded) order per round, so slow drifts of a shared
machine's load hit all methods alike; each method's turn starts with a pause (OpenBLAS, OpenMP and torch worker
threads busy-wait after a call, and on few cores that steals CPU from the next method), then warm-up calls, then
the timed calls. Comparisons are made per round (ratio of the two methods' round medians, measured minutes
apart at most) and summarised over rounds as median and p25-p75.
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

    Returns {"seconds": {name: every timed call}, "round_medians": {name: one median per round},
    "raw": [one dict per timed call: **key, method, round, position (in that round's order), repeat, seconds]}.
    ``progress``: an object with ``update(1)`` (tqdm), advanced once per method turn."""
    if rounds < 1 or repeats < 1 or warmup < 0:
        raise ValueError("rounds and repeats must be >= 1 and warmup >= 0")
    order_rng = random.Random(seed)
    names = list(methods)
    seconds = {m: [] for m in names}
    round_medians = {m: [] for m in names}
    raw = []
    for rnd in range(rounds):
        order = names[:]
        order_rng.shuffle(order)
        for pos, m in enumerate(order):
            f = methods[m]
            pause_threads(pause)
            for _ in range(warmup):
                f()
            ts = []
            for r in range(repeats):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
                raw.append({**(key or {}), "method": m, "round": rnd, "position": pos, "repeat": r,
                            "seconds": ts[-1]})
            seconds[m] += ts
            round_medians[m].append(statistics.median(ts))
            if progress is not None:
                progress.update(1)
    return {"seconds": seconds, "round_medians": round_medians, "raw": raw}
