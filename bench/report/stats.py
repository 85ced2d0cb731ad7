"""Statistics for benchmark results, computed from the raw per-run values (never from summaries).

* :func:`summarize` -> n, median, mean, std (sample, ddof=1), CV, 95% CI of the mean (Student t), min/max, IQR.
* :func:`welch` -> Welch's unequal-variance t-test (statistic, Welch–Satterthwaite df, two-sided p); scipy.stats
  does the p-value, the statistic and df are computed here too and checked against scipy in the tests.
* :func:`cohens_d` -> standardised mean difference with the pooled sample SD (mean_a − mean_b) / s_pooled.
* :func:`paired` -> paired t-test over matched units (e.g. per-window NLL of two methods on the same windows):
  deterministic quality metrics have zero run-to-run variance, so they are compared across documents, not runs.
  Identical samples (every difference exactly 0) are defined as "no difference": t = 0, p = 1.
* :func:`pareto_front` / :func:`dominated_by` -> the points no other point beats in both coordinates (minimising).

Other degenerate inputs (fewer than two values, zero variance) give NaN with a reason instead of raising.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

__all__ = ["summarize", "welch", "cohens_d", "paired", "ci95", "relative_change", "pareto_front", "dominated_by"]


def _arr(values: Iterable[float]) -> np.ndarray:
    a = np.asarray(list(values), dtype=np.float64)
    if a.ndim != 1:
        raise ValueError("expected a 1-D sequence of numbers")
    return a[np.isfinite(a)]


def ci95(values: Iterable[float]) -> tuple[float, float]:
    """Two-sided 95% confidence interval of the mean, Student t with n−1 df (NaN, NaN when n < 2)."""
    from scipy import stats

    a = _arr(values)
    if len(a) < 2:
        return (math.nan, math.nan)
    m = float(a.mean())
    se = float(a.std(ddof=1)) / math.sqrt(len(a))
    h = float(stats.t.ppf(0.975, len(a) - 1)) * se
    return (m - h, m + h)


def summarize(values: Iterable[float]) -> dict:
    """n, median, mean, std (ddof=1), cv (std/mean), ci95_low/high, min, max, p25, p75, iqr."""
    a = _arr(values)
    n = len(a)
    if n == 0:
        nan = math.nan
        return {"n": 0, "median": nan, "mean": nan, "std": nan, "cv": nan, "ci95_low": nan, "ci95_high": nan,
                "min": nan, "max": nan, "p25": nan, "p75": nan, "iqr": nan}
    std = float(a.std(ddof=1)) if n > 1 else math.nan
    mean = float(a.mean())
    lo, hi = ci95(a)
    p25, p75 = (float(v) for v in np.percentile(a, [25, 75]))
    return {"n": n, "median": float(np.median(a)), "mean": mean, "std": std,
            "cv": std / abs(mean) if n > 1 and mean != 0 else math.nan, "ci95_low": lo, "ci95_high": hi,
            "min": float(a.min()), "max": float(a.max()), "p25": p25, "p75": p75, "iqr": p75 - p25}


def welch(a: Iterable[float], b: Iterable[float]) -> dict:
    """Welch's t-test of mean(a) vs mean(b): {"t", "df", "p", "note"} (two-sided)."""
    from scipy import stats

    x, y = _arr(a), _arr(b)
    if len(x) < 2 or len(y) < 2:
        return {"t": math.nan, "df": math.nan, "p": math.nan, "note": "fewer than 2 runs"}
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if vx + vy == 0:
        return {"t": math.nan, "df": math.nan, "p": math.nan, "note": "zero variance in both samples"}
    t = (x.mean() - y.mean()) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    res = stats.ttest_ind(x, y, equal_var=False)
    return {"t": float(t), "df": float(df), "p": float(res.pvalue), "note": ""}


def cohens_d(a: Iterable[float], b: Iterable[float]) -> float:
    """(mean(a) − mean(b)) / pooled SD, pooled SD = sqrt(((na−1)·sa² + (nb−1)·sb²) / (na+nb−2))."""
    x, y = _arr(a), _arr(b)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
    if pooled == 0:
        return math.nan
    return float((x.mean() - y.mean()) / pooled)


def paired(a: Iterable[float], b: Iterable[float]) -> dict:
    """Paired t-test of a − b over matched units: {"mean_diff", "t", "p", "n", "note"}.

    Identical samples (all differences exactly 0, e.g. a method that leaves the weights unchanged) give t = 0 and
    p = 1: the data show no difference at all (scipy's 0/0 would be NaN). Equal non-zero differences have no
    variance to test against: t and p are NaN with a note."""
    from scipy import stats

    x, y = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("paired samples must be 1-D and of equal length")
    d = x - y
    if len(d) < 2:
        return {"mean_diff": float(d.mean()) if len(d) else math.nan, "t": math.nan, "p": math.nan,
                "n": int(len(d)), "note": "fewer than 2 pairs"}
    if np.all(d == 0):
        return {"mean_diff": 0.0, "t": 0.0, "p": 1.0, "n": int(len(d)), "note": "identical samples (no difference)"}
    if np.all(d == d[0]):
        return {"mean_diff": float(d[0]), "t": math.nan, "p": math.nan, "n": int(len(d)),
                "note": "identical differences (zero variance)"}
    res = stats.ttest_rel(x, y)
    return {"mean_diff": float(d.mean()), "t": float(res.statistic), "p": float(res.pvalue), "n": int(len(d)),
            "note": ""}


def relative_change(value: float, baseline: float) -> float:
    """(value − baseline) / baseline in percent (NaN when the baseline is 0 or missing)."""
    if baseline is None or value is None or not math.isfinite(baseline) or baseline == 0 or not math.isfinite(value):
        return math.nan
    return 100.0 * (value - baseline) / baseline


def dominated_by(points: Sequence[tuple[float, float]]) -> list[list[int]]:
    """For each (x, y) point, minimising both: the indices of the points that dominate it (<= in both
    coordinates and < in at least one)."""
    return [[j for j, (x2, y2) in enumerate(points) if j != i and x2 <= x and y2 <= y and (x2 < x or y2 < y)]
            for i, (x, y) in enumerate(points)]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """True for each point that no other point dominates (the Pareto front, minimising both coordinates)."""
    return [not d for d in dominated_by(points)]
