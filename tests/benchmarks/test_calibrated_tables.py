"""The calibrated tables' machinery: ggml with an importance matrix per flat chunk, the GPTQ q35 table methods, the
held-out columns and the calibrated targets (fabricated rows: the lines must follow the numbers)."""
from __future__ import annotations

import importlib.util
import math
from types import SimpleNamespace

import numpy as np
import pytest

from bench import q35_methods, tables, tables_report


def _have(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


@pytest.mark.skipif(not (_have("llama_cpp") and _have("diskcache") and _have("gguf")),
                    reason="llama-cpp-python not installed (bench.anchors.ensure_llama_cpp builds it)")
def test_flat_imatrix_gives_each_chunk_the_importance_of_its_columns():
    from bench import calibrated_anchors as C

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((4, 576)) * 0.02).astype(np.float32)
    imp = (rng.random(576) * 10 + 0.01).astype(np.float32)
    q = C.ggml_imatrix_quantize(w, imp, "Q3_K", "flat")
    assert q.bpw == 3.4375
    flat = w.reshape(-1, 256)
    for c in range(len(flat)):                      # chunk by chunk, each with its own columns' importance
        one, _ = C._quantize_chunks(flat[c:c + 1], C._gguf().GGMLQuantizationType.Q3_K,
                                    imp[(256 * c + np.arange(256)) % 576])
        np.testing.assert_array_equal(q.weight.reshape(-1, 256)[c], one[0])
    skewed = imp.copy()
    skewed[::2] *= 1000                             # a different imatrix changes the result
    assert not np.array_equal(C.ggml_imatrix_quantize(w, skewed, "Q3_K", "flat").weight, q.weight)
    rows = C.ggml_imatrix_quantize(w, imp, "Q3_K", "rows")
    assert rows.bpw == 4.5 and "Q4_0" in rows.notes   # llama.cpp's fallback for 576-wide rows, also with imatrix


def test_gptq_table_method_is_the_library_quantizer():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 64))
    stats = SimpleNamespace(importance=(x * x).mean(0).astype(np.float32), hessian=x.T @ x / 400)
    w = (rng.standard_normal((8, 64)) * 0.1).astype(np.float32)
    from q35.torch.config import QuantConfig

    cfg = q35_methods.TableMethod("t", QuantConfig("gptq", 32, "compact", True, True, {"order": "act", "damp": 0.01}))
    import q35

    q = q35_methods.quantize_matrix(w, cfg, stats)
    qt = q35.quantize_gptq(w, stats.hessian, 32, importance=stats.importance, permute=True, order="act")
    np.testing.assert_array_equal(q.weight, q35.dequantize(qt))
    assert q.stored_bytes == qt.nbytes and cfg.calibrated
    with pytest.raises(ValueError, match="needs calibration statistics with the Hessian"):
        q35_methods.quantize_matrix(w, cfg, SimpleNamespace(importance=stats.importance, hessian=None))
    err = tables.output_error({"a": q.weight}, {"a": w}, {"a": stats})
    d = (q.weight - w).astype(np.float64)
    assert err == pytest.approx(np.trace(d @ stats.hessian @ d.T) / np.trace(w @ stats.hessian @ w.T), rel=1e-4)


def _row(name, bpw, ppl, held=None, kind="anchor", calibrated=True):
    res = SimpleNamespace(nll=np.array([1.0, 2.0]), ppl=ppl, bpb=1.0, total_tokens=10, seconds=1.0)
    base = SimpleNamespace(nll=np.array([1.0, 2.0]), ppl=20.0, bpb=1.0, total_tokens=10, seconds=1.0)
    h = None if held is None else SimpleNamespace(ppl=held, seconds=1.0)
    r = {"bpw": bpw, "rel_rmse": 0.1, "max_abs_err": 0.1, "quantize_s": 1.0}
    return tables_report.quality_row(name, r, res, base, kind, calibrated, h, SimpleNamespace(ppl=25.0))


def test_calibrated_targets_follow_the_numbers():
    rows = [_row("q35 best", 3.59, 30.0, 33.0, kind="q35"),
            _row("q35 big", 3.7, 29.0, kind="q35"),
            _row("Q3_K + imatrix (flat blocks)", 3.4375, 31.0, 32.0),
            _row("GPTQ INT3 g64", 3.5, 40.0, 45.0),
            _row("Q4_K (flat blocks, no imatrix)", 4.5, 27.0, calibrated=False)]
    assert rows[0]["ppl_heldout"] == 33.0 and rows[0]["dppl_heldout_pct"] == pytest.approx(32.0)
    assert math.isnan(rows[1]["ppl_heldout"]) and rows[4]["calibrated"] is False
    lines = "\n".join(tables_report.calibrated_targets(rows))
    assert "best q35 at <= 3.6 bpw chosen on the fixed protocol: q35 best" in lines
    fixed, held = lines.split("on the held-out text:")
    assert "vs Q3_K + imatrix (flat blocks) (3.4375 bpw, ppl 31.000): MET" in fixed
    assert "vs Q3_K + imatrix (flat blocks) (3.4375 bpw, ppl_heldout 32.000): MISSED" in held
    assert "vs GPTQ INT3 g64 (3.5000 bpw, ppl_heldout 45.000): MET" in held
    assert "vs IQ3_S + imatrix (flat blocks): not measured in this run" in held
    assert "Pareto of calibrated methods (3-4.5 bpw): q35 best ON the front" in lines
    assert "stretch: within 15% of Q4_K (flat blocks, no imatrix)" in lines and "MET (+11.11%)" in lines
