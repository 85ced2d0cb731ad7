"""The kernel and quantizer benchmarks (bench.gemv_bench, its --crossover, bench.quantize_bench, bench.ggml_gemv,
bench.timing) run on tiny shapes and produce the rows their reports read; no timing is asserted."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bench import gemv_methods as gm
from bench import timing

HAVE_GGML = all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "gguf"))
needs_ggml = pytest.mark.skipif(not HAVE_GGML, reason="llama-cpp-python not installed "
                                                      "(bench.anchors.ensure_llama_cpp builds it)")
HAVE_HQQ = all(importlib.util.find_spec(m) is not None for m in ("hqq", "termcolor"))
TINY_LLC = 1 << 16          # two weight copies are enough for the tiny shapes


# --- bench.timing -------------------------------------------------------------------------------------------
def test_interleaved_calls_every_method_in_a_new_order_each_round():
    calls = []
    methods = {name: (lambda name=name: calls.append(name)) for name in "abcdef"}
    res = timing.interleaved(methods, rounds=4, repeats=3, warmup=2, pause=0, seed=1)
    assert sorted(set(calls)) == list("abcdef") and len(calls) == 6 * 4 * (3 + 2)
    orders = [[r["method"] for r in res["raw"] if r["round"] == k and r["repeat"] == 0] for k in range(4)]
    assert len({tuple(o) for o in orders}) > 1, "every round ran the methods in the same order"
    assert all(len(v) == 4 for v in res["round_medians"].values())
    assert all(len(v) == 12 for v in res["seconds"].values()) and all(len(v) == 12 for v in res["cpu_seconds"].values())


def test_ratio_summary_is_per_round():
    r = timing.ratio_summary([2.0, 4.0, 9.0], [1.0, 2.0, 3.0])
    assert r["median"] == 2.0 and r["p25"] == 2.0 and r["p75"] == 2.5 and r["rounds"] == 3
    with pytest.raises(ValueError):
        timing.ratio_summary([1.0], [1.0, 2.0])


# --- bench.ggml_gemv ----------------------------------------------------------------------------------------
@needs_ggml
@pytest.mark.parametrize("type_name", gm.GGML_TYPES)
def test_ggml_gemv_matches_its_dequantized_product(type_name):
    from bench import ggml_gemv

    g = ggml_gemv.load()
    rng = np.random.default_rng(3)
    w = rng.standard_normal((48, 512), dtype=np.float32) * np.float32(0.02)
    x = rng.standard_normal(512, dtype=np.float32)
    wq = g.quantize(w, type_name)
    assert wq.shape == (48, g.row_bytes(type_name, 512))
    ref = g.dequantize(wq, type_name, 512).astype(np.float64) @ x.astype(np.float64)
    y = g.gemv(wq, type_name, x, g.x_scratch(type_name, 512), np.full(48, np.nan, np.float32))
    rel = np.max(np.abs(y - ref)) / np.max(np.abs(ref))
    assert np.isfinite(y).all() and rel < gm.TOL_INT8_ACTIVATIONS     # every row written, and right


@needs_ggml
def test_ggml_quantize_rejects_bad_rows_and_uses_the_imatrix():
    from bench import ggml_gemv

    g = ggml_gemv.load()
    w = np.random.default_rng(0).standard_normal((4, 512), dtype=np.float32)
    with pytest.raises(ValueError, match="multiple"):
        g.quantize(w[:, :300], "Q3_K")
    with pytest.raises(ValueError, match="imatrix"):
        g.quantize(w, "Q3_K", np.ones(3, np.float32))
    imp = np.linspace(0.01, 10, 512, dtype=np.float32)
    assert not np.array_equal(g.quantize(w, "Q3_K", imp), g.quantize(w, "Q3_K"))


# --- bench.gemv_bench ---------------------------------------------------------------------------------------
def test_check_refuses_a_broken_method():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 16), dtype=np.float32)
    x = rng.standard_normal(16, dtype=np.float32)
    good = gm.Method(gm.NUMPY, lambda: w @ x, 0, 1, 0)
    assert gm.check([good], x, w, w, {})[gm.NUMPY] < 1e-6
    bad = gm.Method(gm.NUMPY, lambda: (w @ x) * 1.01, 0, 1, 0)
    with pytest.raises(RuntimeError, match="refusing to time"):
        gm.check([bad], x, w, w, {})


@needs_ggml
def test_gemv_bench_rows_on_a_tiny_shape(tmp_path):
    from bench import gemv_bench, machine

    res = gemv_bench.run([(64, 512)], rounds=1, repeats=1, warmup=0, pause=0, bandwidth_mib=4, llc=TINY_LLC)
    methods = {r["method"] for r in res["rows"]}
    nt = machine.usable_cpus()
    assert {gm.A8_1, gm.FLOAT_FUSED, gm.NUMPY, gm.TORCH_1, *map(gm.ggml_name, gm.GGML_TYPES)} <= methods
    assert gm.a8_all_name(nt) in methods or nt == 1
    for r in res["rows"]:
        assert {"shape", "method", "threads", "median_ms", "p25_ms", "p75_ms", "bytes_read", "bound_gbps",
                "fraction_of_bound", "check_rel_error"} <= set(r)
        assert r["shape"] == "64x512" and r["median_ms"] > 0 and r["fraction_of_bound"] > 0
        assert (r["median_cpu_ms"] is not None) == (r["threads"] == 1)
    ratios = {r["ratio"] for r in res["ratios"]}
    assert {"q35 A8 1 thread vs numpy fp32", "q35 A8 1 thread vs ggml Q3_K 1 thread",
            "q35 A8 1 thread vs ggml Q4_0 1 thread"} <= ratios
    if nt > 1:
        assert f"q35 A8 {nt} threads vs 1 thread" in ratios
    q35_row = next(r for r in res["rows"] if r["method"] == gm.A8_1)
    numpy_row = next(r for r in res["rows"] if r["method"] == gm.NUMPY)
    assert q35_row["weight_bytes"] < numpy_row["weight_bytes"] / 7      # 3.5-bit codes + scales vs fp32
    prov = machine.provenance()
    gemv_bench.write(res, tmp_path, prov)
    from bench.report import read_csv
    rows, line = read_csv(tmp_path / "gemv.csv")
    assert line and len(rows) == len(res["rows"])
    assert "q35 A8 1 thread vs ggml Q3_K" in (tmp_path / "gemv.md").read_text()


# --- bench.gemv_bench --crossover ---------------------------------------------------------------------------
def test_crossover_rows_on_a_tiny_shape():
    from bench import gemv_crossover as gc

    res = gc.measure([(32, 384)], [1, 3, 24], rounds=1, repeats=1, warmup=0, pause=0, progress=False,
                     llc=TINY_LLC)
    paths = {(r["path"], r["threads"]) for r in res["rows"]}
    assert {(gc.FUSED, 1), (gc.TILED, 1), (gc.A8, 1)} <= paths
    assert all({"shape", "batch", "path", "threads", "median_ms", "us_per_row"} <= set(r) for r in res["rows"])
    assert sorted({r["batch"] for r in res["rows"]}) == [1, 3, 24]
    cross = gc.crossovers(res["rows"], 24)
    assert {c["threads"] for c in cross} == {t for p, t in paths if p == gc.TILED}
    assert all({"crossover_batch", "worst_dispatch_regret", "blas_min_batch"} <= set(c) for c in cross)


def test_crossover_logic_on_known_times():
    from bench import gemv_crossover as gc

    times = {1: (1.0, 5.0), 8: (2.0, 3.0), 16: (4.0, 3.5), 32: (8.0, 4.0), 64: (16.0, 5.0)}
    rows = [{"shape": "s", "batch": b, "path": p, "threads": 1, "median_ms": v}
            for b, (f, t) in times.items() for p, v in ((gc.FUSED, f), (gc.TILED, t), (gc.A8, 100.0))]
    (c,) = gc.crossovers(rows, 24)
    assert c["crossover_batch"] == 16 and c["last_fused_win"] == 8
    assert c["worst_dispatch_regret"] == pytest.approx(4.0 / 3.5) and c["worst_regret_batch"] == 16
    (c,) = gc.crossovers(rows, 16)
    assert c["worst_dispatch_regret"] == 1.0 and c["a8_fastest_batches"] == ""


# --- bench.quantize_bench -----------------------------------------------------------------------------------
@needs_ggml
def test_quantize_bench_rows_on_a_tiny_shape():
    from bench import quantize_bench as qb

    res = qb.measure([(32, 512)], rounds=1, pause=0, progress=False, hqq=HAVE_HQQ)
    methods = {r["method"] for r in res["rows"]}
    assert {"q35 f16 min-max g128", "q35 compact+importance g192", "ggml Q3_K imatrix", "ggml Q3_K",
            "ggml Q4_K imatrix", "ggml Q4_K", "ggml Q4_0"} <= methods
    assert not HAVE_HQQ or {"HQQ 3-bit g64", "HQQ 4-bit g64"} <= methods
    for r in res["rows"]:
        assert {"shape", "method", "threads", "median_s", "mweights_per_s", "mweights_per_s_per_thread",
                "rel_rmse"} <= set(r)
        assert 0 < r["rel_rmse"] < qb.MAX_REL_RMSE and r["mweights_per_s"] > 0
    assert "q35 GPTQ compact g224 +perm (deployed)" in methods


def test_quantize_bench_refuses_a_broken_quantizer():
    from bench import quantize_bench as qb

    w = np.random.default_rng(0).standard_normal((4, 64), dtype=np.float32)
    ok = qb.Quantizer("identity", 1, lambda: w, lambda r: r)
    assert qb.check([ok], w) == {"identity|1": 0.0}
    with pytest.raises(RuntimeError, match="broken"):
        qb.check([qb.Quantizer("zeros", 1, lambda: w, lambda r: np.zeros_like(r))], w)


def test_one_cpu_pins_the_calling_thread_and_restores():
    import os

    from bench import quantize_bench as qb
    from q35.fast import default_threads

    before = os.sched_getaffinity(0)
    with qb.one_cpu():
        assert default_threads() == 1
    assert os.sched_getaffinity(0) == before


def test_quantize_bench_times_gptq_in_the_deployed_configuration(monkeypatch):
    import q35
    from bench import quantize_bench as qb
    from q35.torch.config import DEFAULT_CONFIG as cfg

    seen = []

    def fake_gptq(weight, hessian, group_size, *, scale_format, permute, threads, **gptq_options):
        seen.append((hessian.shape, group_size, scale_format, permute, threads, gptq_options))
        return q35.quantize(weight, group_size, scale_format=scale_format)

    monkeypatch.setattr(q35, "quantize_gptq", fake_gptq)
    w = np.random.default_rng(0).standard_normal((8, 448), dtype=np.float32)
    qs, notes = qb.q35_quantizers(w, np.ones(448, np.float32), 2)
    gptq = [q for q in qs if "GPTQ" in q.name]
    assert [q.threads for q in gptq] == [1, 2] and not notes
    qb.check(gptq, w)
    assert seen == [((448, 448), cfg.group_size, cfg.scale_format, cfg.permute, nt, cfg.gptq) for nt in (1, 2)]
