"""bench.report.stats against scipy and hand-computed values; energy is "unavailable" (never 0) without NVML;
the end-to-end benchmark's derived tables and sanity flags (bench.llama.report) on synthetic worker outputs."""
from __future__ import annotations

import builtins
import math
import sys
import types

import numpy as np
import pytest

import scipy.stats as scipy_stats

from bench.report import stats  # noqa: E402

A = [12.1, 11.8, 12.6, 12.0, 11.9, 12.4, 12.2, 12.3]
B = [10.2, 10.9, 10.4, 11.8, 9.7, 10.1]


def test_welch_matches_scipy_and_formula():
    w = stats.welch(A, B)
    ref = scipy_stats.ttest_ind(A, B, equal_var=False)
    assert w["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert w["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    va, vb = np.var(A, ddof=1) / len(A), np.var(B, ddof=1) / len(B)
    df = (va + vb) ** 2 / (va ** 2 / (len(A) - 1) + vb ** 2 / (len(B) - 1))
    assert w["df"] == pytest.approx(df, rel=1e-12)
    if hasattr(ref, "df"):
        assert w["df"] == pytest.approx(float(ref.df), rel=1e-9)
    # symmetric
    assert stats.welch(B, A)["t"] == pytest.approx(-w["t"])


def test_cohens_d_known_value():
    # means 3 and 5, both sample SDs sqrt(2.5): d = -2 / sqrt(2.5)
    assert stats.cohens_d([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]) == pytest.approx(-2 / math.sqrt(2.5), rel=1e-12)
    na, nb = len(A), len(B)
    sp = math.sqrt(((na - 1) * np.var(A, ddof=1) + (nb - 1) * np.var(B, ddof=1)) / (na + nb - 2))
    assert stats.cohens_d(A, B) == pytest.approx((np.mean(A) - np.mean(B)) / sp, rel=1e-12)


def test_ci_and_summary_match_scipy():
    lo, hi = stats.ci95(A)
    rlo, rhi = scipy_stats.t.interval(0.95, len(A) - 1, loc=np.mean(A), scale=scipy_stats.sem(A))
    assert (lo, hi) == (pytest.approx(rlo, rel=1e-12), pytest.approx(rhi, rel=1e-12))
    s = stats.summarize(A)
    assert s["n"] == len(A) and s["median"] == pytest.approx(np.median(A))
    assert s["std"] == pytest.approx(np.std(A, ddof=1)) and s["cv"] == pytest.approx(np.std(A, ddof=1) / np.mean(A))
    assert s["ci95_low"] == pytest.approx(rlo) and s["ci95_high"] == pytest.approx(rhi)


def test_paired_matches_scipy_and_degenerate_cases():
    x = [3.1, 2.9, 3.4, 3.0, 3.3]
    y = [3.0, 2.7, 3.5, 2.8, 3.0]
    p = stats.paired(x, y)
    ref = scipy_stats.ttest_rel(x, y)
    assert p["t"] == pytest.approx(ref.statistic) and p["p"] == pytest.approx(ref.pvalue)
    assert math.isnan(stats.paired([1.0, 2.0], [0.5, 1.5])["p"])         # equal non-zero differences
    assert math.isnan(stats.welch([1.0], [2.0, 3.0])["t"])
    assert math.isnan(stats.welch([1.0, 1.0], [2.0, 2.0])["t"])
    assert math.isnan(stats.cohens_d([1.0, 1.0], [1.0, 1.0]))
    assert stats.relative_change(110.0, 100.0) == pytest.approx(10.0)
    assert math.isnan(stats.relative_change(1.0, 0.0))


def _no_pynvml(monkeypatch):
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError("no pynvml here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_energy_unavailable_without_pynvml(monkeypatch):
    from bench.llama.probes import UNAVAILABLE, EnergyMeter

    _no_pynvml(monkeypatch)
    m = EnergyMeter()
    assert not m.available and "pynvml" in m.reason
    assert m.measure_idle(0.01) == UNAVAILABLE
    r = m.stop(m.start())
    assert r["energy_j"] == UNAVAILABLE and r["energy_idle_subtracted_j"] == UNAVAILABLE
    assert r["energy_j"] != 0


def test_energy_unavailable_when_nvml_fails(monkeypatch):
    from bench.llama.probes import UNAVAILABLE, EnergyMeter

    class NVMLError(Exception):
        pass

    def fail(*a, **k):
        raise NVMLError("Driver Not Loaded")

    fake = types.SimpleNamespace(nvmlInit=fail, nvmlDeviceGetHandleByIndex=fail,
                                 nvmlDeviceGetTotalEnergyConsumption=fail)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    m = EnergyMeter()
    assert not m.available and "Driver Not Loaded" in m.reason
    assert m.stop(m.start())["energy_j"] == UNAVAILABLE


def test_energy_with_a_fake_counter_subtracts_idle(monkeypatch):
    """With a working (fake) NVML: total = counter difference, idle-subtracted = total - idle power × window."""
    from bench.llama import probes

    clock = {"t": 0.0, "mj": 0.0}
    monkeypatch.setattr(probes.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(probes.time, "sleep", lambda s: clock.update(t=clock["t"] + s, mj=clock["mj"] + 50e3 * s))
    fake = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: "h",
                                 nvmlDeviceGetTotalEnergyConsumption=lambda h: clock["mj"],
                                 nvmlDeviceGetName=lambda h: "FakeGPU", nvmlSystemGetDriverVersion=lambda: "1.0")
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    m = probes.EnergyMeter()
    assert m.available
    assert m.measure_idle(2.0) == pytest.approx(50.0)            # 50 W idle
    tok = m.start()
    clock.update(t=clock["t"] + 2.0, mj=clock["mj"] + 300e3)      # 300 J in 2 s
    r = m.stop(tok)
    assert r["energy_j"] == pytest.approx(300.0) and r["energy_idle_subtracted_j"] == pytest.approx(200.0)
    tok = m.start()
    clock.update(t=clock["t"] + 0.2, mj=clock["mj"] + 10e3)
    assert m.stop(tok)["energy_j"] == probes.UNAVAILABLE     # window shorter than the counter resolution


def _fake_result(prec, decode, ppl_nll, wbytes, rss, batches=(1,)):
    runs = []
    for b in batches:
        for i, v in enumerate(decode):
            runs.append({"batch": b, "run": i, "ttft_s": 0.1, "prefill_tok_s": 320.0, "decode_tok_s": v * b,
                         "tpot_s": 1 / v, "e2e_s": 1.0, "energy_j": "unavailable",
                         "energy_idle_subtracted_j": "unavailable"})
    nll = np.asarray(ppl_nll, dtype=float)
    return {"model": "smollm2-135m", "precision": prec, "device": "cpu", "runs": runs,
            "configs": [{"batch": b, "peak_rss_bytes": rss, "first_tokens": [1, 2]} for b in batches],
            "weight_bytes": wbytes, "block_linear_bytes": wbytes // 2,
            "ppl": {"ppl": float(math.exp(nll.sum() / (100 * len(nll)))), "bpb": 1.0, "nll": nll.tolist()},
            "energy_status": "unavailable: test"}


def test_derived_tables_and_sanity_flags():
    from bench.llama.report import sanity_checks, tables_from_results

    fp32 = _fake_result("fp32", [10, 11, 10.5, 10.2, 10.8], [300, 310, 305, 290], 4000, 9000)
    q35 = _fake_result("q35", [20, 21, 19, 20.5, 20.2], [320, 330, 322, 311], 1000, 4000)
    int8 = _fake_result("int8", [8, 8.5, 8.2, 8.1, 8.4], [250, 262, 251, 243], 5000, 9500)  # slower, better, bigger
    t = tables_from_results([fp32, q35, int8])
    d = {r["precision"]: r for r in t["derived"]}
    assert d["q35"]["speedup_decode_tok_s"] == pytest.approx(20.2 / 10.5)
    assert d["q35"]["memory_reduction_pct"] == pytest.approx(100 * (9000 - 4000) / 9000)
    assert d["q35"]["accuracy_drop_pct"] > 0
    assert d["q35"]["energy_reduction_pct"] == "unavailable"
    ref = scipy_stats.ttest_ind([20, 21, 19, 20.5, 20.2], [10, 11, 10.5, 10.2, 10.8], equal_var=False)
    assert d["q35"]["welch_p_decode_tok_s"] == pytest.approx(ref.pvalue)
    flags = "\n".join(sanity_checks(t))
    assert "INT8 dynamic decodes slower than FP32" in flags
    # labelled with the all-in bits per weight of SmolLM2's block linears from the format table, not "8 bits"
    assert "INT8 dynamic (8.19 bits) has better perplexity than FP32 (32 bits)" in flags
    assert "block-linear weight bytes do not decrease with bits: INT8 dynamic" in flags
    assert "q35 g128 decodes slower" not in flags and "q35 g128 prefill" not in flags

