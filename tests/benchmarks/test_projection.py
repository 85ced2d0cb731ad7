"""bench.projection (catalogue, models, performance, context, hardware, cli) / bench.machine: formulas against
hand-computed cases, catalogue validation, q35 sizes from pyref, the CPU bandwidth probe, report-only figures.
Expected values are worked out by hand in each test, never read back from the code under test."""
from __future__ import annotations

import json
import math

import pytest

import q35.reference as pyref
from bench import machine
from bench.formats import FORMATS, get_format
from bench.projection import catalogue as C
from bench.projection import context as CX
from bench.projection import hardware as H
from bench.projection import models as M
from bench.projection import performance as PF


@pytest.fixture(scope="module")
def models():
    return C.load_models()


def hw(bandwidth_gbps=1000.0, tflops=100.0, memory_gb=80.0, kind="gpu", power_w=None, utilisation=1.0):
    """A synthetic resolved hardware entry with round numbers for hand calculations."""
    return {"id": "test", "name": "test", "kind": kind, "memory_bytes": memory_gb * 1e9,
            "bandwidth_Bps": bandwidth_gbps * 1e9, "flops": tflops * 1e12, "power_w": power_w,
            "utilisation": utilisation, "utilisation_source": "test"}


# --- sizes ----------------------------------------------------------------------------------------------------
def test_70e9_weights_at_3p5_bits_need_at_least_30p6_gb():
    # 70e9 weights as one [70_000, 1_000_000] matrix: 3.5 bits each is 30.625e9 bytes before any scale.
    n, k = 70_000, 1_000_000
    for fmt_id in ("q35-g64", "q35-g128", "q35-g256", "q35-row"):
        assert FORMATS[fmt_id].nbytes(n, k) >= 30.6e9
    # per-row q35 by hand: 7 bytes per 16 weights (K is a multiple of 16) + 2+2 bytes per row
    assert FORMATS["q35-row"].nbytes(n, k) == n * (7 * k // 16 + 4)


def test_llama2_70b_linear_parameters_and_q35_bytes(models):
    m = models["llama-2-70b"]
    # q,o: 8192x8192; k,v: 1024x8192 (8 KV heads x 128); gate/up/down: 8192x28672; 80 layers
    per_layer = 2 * 8192 * 8192 + 2 * 1024 * 8192 + 3 * 8192 * 28672
    assert M.param_counts(m)["linear"] == 80 * per_layer
    # every K here is a multiple of 128: q35 g128 is exactly 3.5 + 32/128 = 3.75 bits per weight
    assert M.weight_bytes(m, FORMATS["q35-g128"])["linear"] == 80 * per_layer * 375 // 800
    assert M.weight_bytes(m, FORMATS["q35-g128"])["linear"] >= 80 * per_layer * 3.5 / 8


def test_int4_g128_and_int8_and_fp16_formulas():
    assert FORMATS["int4-g128"].bits_per_weight(4096, 4096) == 4 + 32 / 128
    assert FORMATS["int4-g128"].nbytes(10, 200) == 10 * 100 + 10 * 2 * 4      # ceil(200/128) = 2 groups
    assert FORMATS["int8"].nbytes(3, 5) == 15 + 6
    assert FORMATS["fp16"].nbytes(3, 5) == 30


def test_q35_sizes_equal_pyref_for_every_layer_shape(models):
    for m in models.values():
        for _, n, k in M.linear_shapes(m):
            for g in (64, 128, 256, None):
                fmt = FORMATS[f"q35-g{g}" if g else "q35-row"]
                assert fmt.nbytes(n, k) == pyref.encoded_nbytes(n, k, g)["total"]
                assert fmt.bits_per_weight(n, k) == pytest.approx(pyref.all_in_bits_per_weight(k, g), rel=1e-12)
    assert get_format("q35") is FORMATS[f"q35-g{pyref.DEFAULT_GROUP_SIZE}"]


def test_smollm2_q35_g128_pays_for_partial_groups(models):
    # K = 576 = 4.5 x 128: 5 groups per row, so 3.5 + 5*32/576 bits, more than 3.75
    assert FORMATS["q35-g128"].bits_per_weight(1536, 576) == pytest.approx(3.5 + 160 / 576)
    assert FORMATS["q35-g128"].bits_per_weight(1536, 576) > 3.75


def test_fewer_bits_never_more_bytes(models):
    # nominal bits: 16 > 8 > 4 + 32/128 > 4 + 8/64 + 32/16384 > 3.5 + 32/64 > 3.5 + 32/128 > ... > 3.5 + 32/K
    chain = ["fp16", "int8", "int4-g128", "nf4", "q35-g64", "q35-g128", "q35-g256", "q35-row"]
    for m in models.values():
        sizes = [M.weight_bytes(m, FORMATS[f])["total"] for f in chain]
        assert all(a >= b for a, b in zip(sizes, sizes[1:])), (m["id"], sizes)
        h = hw(memory_gb=24)
        rows = [PF.project(m, FORMATS[f], h, context=2048, batch=1) for f in chain]
        assert all(a["devices"] >= b["devices"] for a, b in zip(rows, rows[1:]))
    # q35 group sizes: a larger group never costs more, for any K that is a multiple of 16
    for k in range(16, 20_000, 16):
        b = [FORMATS[f].nbytes(7, k) for f in ("q35-g64", "q35-g128", "q35-g256", "q35-row")]
        assert b == sorted(b, reverse=True), k


def test_tied_embeddings_are_counted_once(models):
    m = dict(models["smollm2-135m"])
    assert m["tied_embeddings"] is True
    fp16 = FORMATS["fp16"]
    untied = dict(m, tied_embeddings=False)
    diff = M.weight_bytes(untied, fp16)["total"] - M.weight_bytes(m, fp16)["total"]
    assert diff == 2 * 49152 * 576


# --- KV cache and throughput ------------------------------------------------------------------------------------
def test_gqa_kv_cache_llama3_8b(models):
    m = models["llama-3-8b"]
    # 2 (K,V) x 32 layers x 8 KV heads x 128 head dim x 8192 tokens x 2 bytes = 2^30 bytes
    assert M.kv_cache_bytes(m, 8192, 1) == 2**30
    assert M.kv_cache_bytes(m, 8192, 3) == 3 * 2**30
    # LLaMA-2-7B has 32 KV heads (no GQA): four times as much at the same shape
    assert M.kv_cache_bytes(models["llama-2-7b"], 8192, 1) == 4 * 2**30


def test_decode_bound_is_bandwidth_over_bytes(models):
    m = models["llama-2-7b"]
    fmt = FORMATS["fp16"]
    h = hw(bandwidth_gbps=1000.0, tflops=1e6)       # compute never binds
    r = PF.project(m, fmt, h, context=1024, batch=1)
    step = M.bytes_per_step(m, fmt, 1024, 1)["total"]
    assert r["decode_tok_s_bound"] == pytest.approx(1e12 / step)
    assert r["regime"] == "memory-bound"
    # bytes read = 2 bytes x (linears + lm_head matrix + norms + one embedding row) + KV, by hand
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    by_hand = 2 * (linear + 32000 * 4096 + (2 * 32 + 1) * 4096 + 4096) + 2 * 32 * 32 * 128 * 1024 * 2
    assert step == by_hand
    # a utilisation of 0.5 halves a memory-bound rate
    r_half = PF.project(m, fmt, hw(bandwidth_gbps=1000.0, tflops=1e6, utilisation=0.5), context=1024, batch=1)
    assert r_half["decode_tok_s"] == pytest.approx(r["decode_tok_s"] / 2)


def test_compute_bound_regime_and_energy(models):
    m = models["llama-2-7b"]
    fmt = FORMATS["fp16"]
    h = hw(bandwidth_gbps=1e9, tflops=1.0, power_w=100.0)   # absurd bandwidth: compute binds
    r = PF.project(m, fmt, h, context=16, batch=1)
    assert r["regime"] == "compute-bound"
    flops = 2 * (32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 32000 * 4096) + 4 * 32 * 32 * 128 * 16
    assert r["decode_tok_s_bound"] == pytest.approx(1e12 / flops)
    assert r["energy_j_per_token"] == pytest.approx(100.0 / r["decode_tok_s"])
    assert PF.project(m, fmt, hw(), context=16)["energy_j_per_token"] is None


def test_devices_needed_counts_weights_plus_kv():
    assert PF.devices_needed(80e9, 80e9) == 1
    assert PF.devices_needed(80e9 + 1, 80e9) == 2
    assert PF.devices_needed(1, 80e9) == 1


def test_sram_pipeline_calibration_reproduces_its_point_and_naive_bound_overestimates():
    ctx = CX.build_context(measure=False)
    rows = {r["id"]: r for r in CX.validation_rows(ctx)}
    for pid in ("groq-llama2-70b", "cerebras-llama31-70b"):
        assert rows[pid]["role"] == "calibration"
        assert rows[pid]["error_pct"] == pytest.approx(0.0, abs=1e-6)
        # bandwidth/bytes alone overestimates an SRAM machine by well over 10x
        assert rows[pid]["bandwidth_only"] > 10 * rows[pid]["published"]
    for r in rows.values():
        assert math.isfinite(r["error_pct"])
        assert r["error_pct"] == pytest.approx(100 * (r["projected"] - r["published"]) / r["published"])


# --- catalogues -------------------------------------------------------------------------------------------------
def _write(tmp_path, entries, key="hardware"):
    p = tmp_path / "cat.json"
    p.write_text(json.dumps({key: entries}))
    return p


GOOD_GPU = {"id": "x", "name": "X", "kind": "gpu", "memory_gb": 1, "bandwidth_gbps": 1, "fp16_tflops": 1,
            "power_w": 1, "source": "datasheet"}


def test_hardware_entry_without_source_fails(tmp_path):
    assert "x" in C.load_hardware(_write(tmp_path, [GOOD_GPU]))
    no_source = {k: v for k, v in GOOD_GPU.items() if k != "source"}
    with pytest.raises(ValueError, match="source"):
        C.load_hardware(_write(tmp_path, [no_source]))
    with pytest.raises(ValueError, match="source"):
        C.load_hardware(_write(tmp_path, [dict(GOOD_GPU, source="  ")]))


def test_hardware_entry_with_bad_numbers_fails(tmp_path):
    with pytest.raises(ValueError):
        C.load_hardware(_write(tmp_path, [dict(GOOD_GPU, bandwidth_gbps=0)]))
    with pytest.raises(ValueError):
        C.load_hardware(_write(tmp_path, [dict(GOOD_GPU, kind="sram_asic")]))   # no calibration point


def test_shipped_catalogues_all_have_sources():
    for path, key in [(C.CATALOG_DIR / "hardware.json", "hardware"), (C.CATALOG_DIR / "models.json", "models"),
                      (C.CATALOG_DIR / "published.json", "points")]:
        for e in json.loads(path.read_text())[key]:
            assert isinstance(e.get("source"), str) and e["source"].strip(), (path.name, e.get("id"))
    C.load_hardware(), C.load_models(), C.load_published()


def test_measured_utilisation_hook(tmp_path):
    assert H.measured_utilisation(tmp_path) == {}
    # a provenance line on top (as bench.report.write_csv writes it) is skipped
    (tmp_path / "bench.csv").write_text("# provenance\nhardware,bandwidth_utilisation\ncpu-local,0.5\ncpu-local,0.7\n"
                                        "cpu-local,0.6\nh100-sxm,nan\n")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    got = H.measured_utilisation(tmp_path)
    assert set(got) == {"cpu-local"}
    assert got["cpu-local"]["median"] == pytest.approx(0.6) and got["cpu-local"]["n"] == 3


# --- bench.machine ----------------------------------------------------------------------------------------------
def test_cpu_bandwidth_probe_returns_positive_finite_numbers():
    r = machine.measure_bandwidth(size_mib=4, repeats=3)
    for kernel in ("copy", "triad"):
        s = r["kernels"][kernel]
        assert len(s["samples_gbps"]) == 3
        for key in ("median_gbps", "min_gbps", "max_gbps", "iqr_gbps"):
            assert math.isfinite(s[key]) and s[key] >= 0
        assert s["min_gbps"] > 0 and s["min_gbps"] <= s["median_gbps"] <= s["max_gbps"]
    assert r["median_gbps"] == r["kernels"]["triad"]["median_gbps"]
    with pytest.raises(ValueError):
        machine.measure_bandwidth(size_mib=1, repeats=1, kernels=("scale",))


def test_matmul_probe_and_provenance():
    mm = machine.measure_matmul_flops(n=64, repeats=3)
    assert mm["min_gflops"] > 0 and math.isfinite(mm["max_gflops"])
    prov = machine.provenance()
    for key in ("date_utc", "cpu_model", "python", "packages", "git_sha", "memory_total_bytes"):
        assert key in prov
    assert prov["packages"]["numpy"]
    json.dumps(prov)


# --- the projection's outputs -----------------------------------------------------------------------------------
def test_projection_formats_are_the_shared_table():
    ctx = CX.build_context(measure=False)
    assert [f.id for f in ctx.formats] == list(CX.PROJECTION_FORMATS)
    assert all(f is FORMATS[f.id] for f in ctx.formats)
    rows = CX.all_rows(ctx, 1024, 1)
    assert {r["format"] for r in rows} == set(CX.PROJECTION_FORMATS)
    assert all(r["label"] == "modelled" for r in rows)


def test_report_only_redraws_figures_from_saved_files(tmp_path):
    """--all writes CSVs and provenance; --report-only draws the figures again from those files alone."""
    from bench.projection import cli

    src, again = tmp_path / "run", tmp_path / "again"
    assert cli.main(["--all", "--quick", "--no-figures", "--out", str(src)]) == 0
    assert not list(src.glob("*.png"))
    first = (src / "projection.csv").read_text().splitlines()
    assert first[0].startswith("# modelled projection; provenance: ") and first[1].startswith("model,format,")
    assert cli.main(["--report-only", str(src), "--out", str(again)]) == 0
    assert sorted(p.name for p in again.iterdir()) == ["memory_vs_model_size.pdf", "memory_vs_model_size.png",
                                                       "tokens_vs_bits_per_weight.pdf",
                                                       "tokens_vs_bits_per_weight.png"]
