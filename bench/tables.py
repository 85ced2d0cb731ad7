"""The main job (`make tables`): compression/RMSE and perplexity tables on SmolLM2-135M.

Everything printed is computed in this run:
  (a) every method applied to every block linear of SmolLM2 (aggregated): all-in bits per weight from the real
      stored sizes, compression vs FP16/FP32, relative RMSE, max abs error;
  (b) synthetic heavy-tailed matrices with the exact in_features of LLaMA-2/3 linears (sampled rows; labelled
      synthetic);
  (c) whole-model memory of LLaMA-2/3 models at each format, from their layer shapes;
  (d) perplexity and bits per byte of SmolLM2 with every method's dequantized block linears, under one stated
      protocol, with anchors (HQQ, llama.cpp k-quants) evaluated by the same code in the same run;
  then the targets (q35 at <= 3.6 bpw vs INT3 g64 / HQQ 3-bit / Q3_K; Pareto front) and figures.
Calibration: q35.torch.calibration's default windows (8 Shakespeare plays x 2 windows x 512 tokens, disjoint
from every evaluation text) give every calibrated method the same statistics: the importance (imatrix) and the
Hessian XᵀX/n of each block linear's input. The calibrated rows (q35 with importance or GPTQ, ggml + imatrix,
GPTQ INT) and FP32 are also scored on the held-out text (bench.data.heldout_documents), which neither calibration nor
the choice of configuration touches.
Outputs go to bench/results/tables/ (CSV, LaTeX, markdown, PNG+PDF), each with a provenance line; --update-docs
also rewrites the tables block of docs/quality.md.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from bench import baselines, q35_methods, tables_report
from bench.baselines import Quantized
from bench.formats import get_format
from bench.projection.catalogue import load_models
from bench.projection.models import linear_bits_per_weight, linear_shapes, param_counts, weight_bytes
from bench.tables_report import best_q35_under, quality_row

OUT = Path(__file__).resolve().parent / "results" / "tables"
SYNTHETIC_MODELS = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "llama-3.1-405b"]
EVAL_BATCH = 4                                # windows per forward pass (same numbers, better throughput)
CAPTION_NOTE = ("SmolLM2-135M-Instruct is published here only as Q4_1 GGUF: its block linears already lie on a 4-bit "
                "group-32 grid, so the FP32 baseline is that grid dequantized and any 4-bit g32-aligned method looks "
                "lossless.")


# --- methods ------------------------------------------------------------------------------------------------
def baseline_methods() -> dict:
    """name -> (layer name, W) -> Quantized, for the simple baselines."""
    return {name: (lambda fn: (lambda _layer, w: fn(w)))(fn) for name, fn in baselines.BASELINES.items()}


def q35_table_methods(stats: dict | None) -> dict:
    return {c.name: q35_methods.method(c, stats) for c in q35_methods.CONFIGS if stats is not None or not c.calibrated}


# rows kept in the RMSE table only, to keep `make tables` inside its time budget: fp16 round-trips to FP32's
# perplexity (relative RMSE 2e-4); Q2_K (2.6 bpw), Q4_K rows (5.25) and Q4_K_M (5.53) lie outside the 3-4.5 bpw
# window every target looks at
RMSE_ONLY = {"fp16", "Q2_K + imatrix (flat blocks)", "Q4_K pure (rows, no imatrix)", "llama.cpp Q4_K_M"}


def eval_perplexity(name: str) -> bool:
    cfg = q35_methods.BY_NAME.get(name)
    return name not in RMSE_ONLY and (cfg is None or cfg.perplexity)


def output_error(deq: dict, weights: dict, stats: dict | None) -> float:
    """Relative output error on the calibration inputs, Σ tr(ΔW·H·ΔWᵀ) / Σ tr(W·H·Wᵀ) over the layers: what GPTQ
    minimises (the weight RMSE is not). NaN without statistics."""
    if not stats:
        return float("nan")
    num = den = 0.0
    for name, w in weights.items():
        h = stats[name].hessian.astype(np.float32)
        d = deq[name] - w
        num += float(((d @ h) * d).sum(dtype=np.float64))
        den += float(((w @ h) * w).sum(dtype=np.float64))
    return num / den


def run_method(fn, weights: dict, stats: dict | None = None) -> dict:
    """Quantize every layer; aggregate stored bits, relative RMSE, max abs error and the output error."""
    t0 = time.perf_counter()
    deq, bits, n, sq_err, sq_ref, max_err, notes = {}, 0, 0, 0.0, 0.0, 0.0, set()
    for name, w in weights.items():
        q: Quantized = fn(name, w)
        diff = q.weight.astype(np.float64) - w.astype(np.float64)
        sq_err += float((diff * diff).sum())
        sq_ref += float((w.astype(np.float64) ** 2).sum())
        max_err = max(max_err, float(np.abs(diff).max()))
        bits += q.stored_bits
        n += q.n_weights
        deq[name] = q.weight
        notes.add(q.notes)
    secs = time.perf_counter() - t0
    return {"weights": deq, "bpw": bits / n, "rel_rmse": math.sqrt(sq_err / sq_ref), "max_abs_err": max_err,
            "quantize_s": secs, "notes": "; ".join(sorted(x for x in notes if x)),
            "rel_out_err": output_error(deq, weights, stats)}


# --- (b) synthetic LLaMA shapes, (c) whole-model memory --------------------------------------------------------
def synthetic_matrix(n: int, k: int, seed: int) -> np.ndarray:
    """Heavy-tailed LLM-like weights: Student-t (ν = 4) with rare larger outlier channels."""
    rng = np.random.default_rng(seed)
    w = rng.standard_t(4, (n, k)) * 0.02
    outliers = rng.random(k) < 0.005
    w[:, outliers] *= 8
    return w.astype(np.float32)


def synthetic_rows(rows: int, methods: dict) -> list[dict]:
    models = load_models()
    out = []
    for mi, mid in enumerate(SYNTHETIC_MODELS):
        m = models[mid]
        shapes = {(n, k) for _, n, k in linear_shapes(m)}
        weights = {f"{mid}:{n}x{k}": synthetic_matrix(min(rows, n), k, 1000 * mi + i)
                   for i, (n, k) in enumerate(sorted(shapes))}
        for name, fn in methods.items():
            r = run_method(fn, weights)
            out.append({"model": f"{m.get('name', mid)} (synthetic)", "method": name, "bpw": r["bpw"],
                        "rel_rmse": r["rel_rmse"], "max_abs_err": r["max_abs_err"],
                        "shapes": " ".join(sorted(f"[{n},{k}]" for n, k in shapes))})
    return out


def model_memory_rows() -> list[dict]:
    models = load_models()
    fmts = ["fp16", "int8", "int4-g128", "q35-g64", "q35-g128", "q35c-g128", "q35-row"]
    rows = []
    for mid in SYNTHETIC_MODELS:
        m = models[mid]
        for f in fmts:
            fmt = get_format(f)
            rows.append({"model": m.get("name", mid), "format": fmt.label, "linear_bpw":
                         linear_bits_per_weight(m, fmt), "weights_GB": weight_bytes(m, fmt)["total"] / 1e9,
                         "params_B": param_counts(m)["total"] / 1e9})
    return rows


# --- perplexity ------------------------------------------------------------------------------------------------
def anchor_methods(block_weights: dict, stats: dict | None = None, only=None) -> dict:
    """Anchors already computed: name -> (result dict, calibrated, scored on the held-out text). The published
    quantizers without calibration (bench.anchors: HQQ, ggml without imatrix, llama.cpp file mixes), then, given
    ``stats``, the calibrated ones (bench.calibrated_anchors: ggml + imatrix, GPTQ INT)."""
    from bench import anchors, calibrated_anchors
    from bench.data import AcquisitionError, MissingDependency

    plain = [n for n in anchors.ANCHORS if only is None or n in only]
    out = {name: (r, False, False) for name, r in anchors.all_anchors(block_weights, plain).items()} if plain else {}
    for name, (fn, heldout) in (calibrated_anchors.CALIBRATED_ANCHORS.items() if stats else ()):
        if only is not None and name not in only:
            continue
        try:
            out[name] = (anchors.result_row(fn(block_weights, stats), block_weights), True, heldout)
        except (MissingDependency, AcquisitionError) as e:
            print(f"[anchors] skipping {name}: {e}", file=sys.stderr)
            continue
        out[name][0]["rel_out_err"] = output_error(out[name][0]["weights"], block_weights, stats)
    return out


def _load(quick: bool):
    """SmolLM2, its block linears, the evaluation and held-out sets and the calibration windows (None when
    unavailable)."""
    from q35.eval import perplexity
    from q35.torch import calibration
    from bench import data

    try:
        model, tok, info = data.load_smollm2()
    except (data.MissingDependency, data.AcquisitionError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return None
    # 8 documents x 2 windows x 512 tokens with SmolLM2's pre-training document separator <|endoftext|> prepended
    # (its tokenizer's bos_token is the chat-turn marker <|im_start|>, not a document start): 8,192 tokens scored.
    bos = tok.convert_tokens_to_ids("<|endoftext|>")
    per_doc = 1 if quick else 2
    evalset = perplexity.build_eval_set(tok, data.eval_documents(), windows_per_doc=per_doc, bos_id=bos)
    heldout = perplexity.build_eval_set(tok, data.heldout_documents(), windows_per_doc=per_doc, bos_id=bos)
    calib = calibration.calibration_windows(tok, windows_per_doc=per_doc)
    print(f"protocol: {evalset.describe()}")
    print(f"held-out text: {heldout.describe()}")
    print(f"calibration: {calib.describe()}")
    print("texts (SHA-256): " + ", ".join(f"{k} {v[:12]}" for k, v in evalset.doc_sha256.items()))
    return model, info, data.block_linear_weights(model), evalset, heldout, calib


def _evaluator(model, evalset):
    from bench import data
    from q35.eval import perplexity

    def evaluate(weights=None):
        if weights is None:
            return perplexity.evaluate(model, evalset, batch_size=EVAL_BATCH)
        with data.swapped_weights(model, weights):
            return perplexity.evaluate(model, evalset, batch_size=EVAL_BATCH)
    return evaluate


def _method_rows(methods: dict, block: dict, stats, ev) -> tuple[list[dict], dict]:
    """Quality rows of every method (FP32 first); the q35 results kept for the lm_head row. ``ev`` holds the two
    evaluators and FP32's results: (evaluate, base, evaluate_heldout, base_heldout)."""
    from tqdm import tqdm

    evaluate, base, evaluate_heldout, base_heldout = ev
    rows, kept = [], {}
    for name, fn in tqdm(methods.items(), desc="methods (quantize + perplexity)", file=sys.stderr):
        cfg = q35_methods.BY_NAME.get(name)
        if fn is None:
            r = {"weights": None, "bpw": 32.0, "rel_rmse": 0.0, "max_abs_err": 0.0, "quantize_s": 0.0,
                 "rel_out_err": 0.0, "notes": "GGUF Q4_1 dequantized (the reference)"}
            rows.append(quality_row(name, r, base, base, "baseline", False, base_heldout, base_heldout))
            continue
        r = run_method(fn, block, stats)
        res = evaluate(r["weights"]) if eval_perplexity(name) else None
        held = evaluate_heldout(r["weights"]) if res is not None and cfg is not None and cfg.heldout else None
        if name.startswith("q35"):
            kept[name] = r  # for the lm_head row, which reuses the block quantization
        rows.append(quality_row(name, r, res, base, "q35" if name.startswith("q35") else "baseline",
                                cfg is not None and cfg.calibrated, held, base_heldout))
    return rows, kept


def _anchor_rows(block: dict, stats, ev, only=None) -> list[dict]:
    from tqdm import tqdm

    evaluate, base, evaluate_heldout, base_heldout = ev
    rows = []
    for name, (r, calibrated, heldout) in tqdm(anchor_methods(block, stats, only).items(), desc="anchors (perplexity)",
                                               file=sys.stderr):
        res = evaluate(r["weights"]) if eval_perplexity(name) else None
        held = evaluate_heldout(r["weights"]) if heldout and res is not None else None
        rows.append(quality_row(name, r, res, base, "anchor", calibrated, held, base_heldout))
    return rows


def _lm_head_row(model, stats, block: dict, best: dict, kept: dict, evaluate, base) -> dict:
    """The best q35 method at <= 3.6 bpw with the lm_head quantized too (untied from the embedding so only the
    output projection changes)."""
    import torch

    cfg = q35_methods.BY_NAME[best["method"]]
    head = model.lm_head.weight.detach().float().numpy().copy()
    q = q35_methods.quantize_matrix(head, cfg, stats["lm_head"] if cfg.calibrated else None)
    model.lm_head.weight = torch.nn.Parameter(torch.from_numpy(head.copy()))
    r = dict(kept[best["method"]])
    res = evaluate({**r["weights"], "lm_head": q.weight})
    bits = r["bpw"] * sum(w.size for w in block.values()) + q.stored_bits
    r["bpw"] = bits / (sum(w.size for w in block.values()) + head.size)
    r["rel_out_err"] = float("nan")
    r["notes"] = "block linears + lm_head quantized (untied from the embedding)"
    return quality_row(best["method"] + " +lm_head", r, res, base, kind="q35", calibrated=cfg.calibrated)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.tables", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer windows and synthetic rows (smoke run)")
    ap.add_argument("--synthetic-rows", type=int, default=64, help="rows sampled per synthetic LLaMA shape")
    ap.add_argument("--no-anchors", action="store_true", help="skip HQQ / llama.cpp anchors")
    ap.add_argument("--only", type=lambda v: [x.strip() for x in v.split(",") if x.strip()], default=None,
                    metavar="NAMES", help="comma-separated method/anchor names to run (FP32 always): a partial check")
    ap.add_argument("--update-docs", "--update-readme", dest="update_docs", action="store_true",
                    help="rewrite the tables block of docs/quality.md (--update-readme: its former name)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--report-only", nargs="?", type=Path, const=OUT, metavar="FROM",
                    help="redraw the figures into --out from a previous run's CSVs in FROM (default: the results "
                         "folder), without recomputing")
    return ap


def _unknown_names(only) -> list[str]:
    from bench import anchors, calibrated_anchors

    known = {"FP32", *baselines.BASELINES, *q35_methods.BY_NAME, *anchors.ANCHORS, *calibrated_anchors.CALIBRATED_ANCHORS}
    return [n for n in (only or []) if n not in known]


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if a.report_only:
        return tables_report.report_only(a.report_only, a.out)
    unknown = _unknown_names(a.only)
    if unknown:
        print(f"ERROR: --only: unknown method names {unknown}", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    loaded = _load(a.quick)
    if loaded is None:
        return 1
    model, info, block, evalset, heldout, calib = loaded
    from q35.torch import calibration

    t0 = time.perf_counter()
    stats = calibration.collect_stats(model, calib, [*block, "lm_head"], hessian=True)
    print(f"calibration statistics (importance + Hessians): {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    methods = {"FP32": None, **baseline_methods(), **q35_table_methods(stats)}
    if a.only is not None:
        methods = {n: fn for n, fn in methods.items() if n == "FP32" or n in a.only}
    evaluate, evaluate_heldout = _evaluator(model, evalset), _evaluator(model, heldout)
    ev = (evaluate, evaluate(), evaluate_heldout, evaluate_heldout())
    rows, kept = _method_rows(methods, block, stats, ev)
    if not a.no_anchors:
        rows += _anchor_rows(block, stats, ev, a.only)
    best = best_q35_under(rows, tables_report.TARGET_BPW)
    if best is not None:
        rows.append(_lm_head_row(model, stats, block, best, kept, evaluate, ev[1]))
    syn_methods = {**baseline_methods(), **q35_table_methods(None)}
    synthetic = synthetic_rows(8 if a.quick else a.synthetic_rows, syn_methods)
    note = (f"{CAPTION_NOTE} Calibration (every calibrated method, the same statistics): {calib.describe()}. "
            f"Held-out text (ppl_heldout; FP32 and the targets' rows): {heldout.describe()}.")
    tables_report.write_all(a.out, rows, synthetic, model_memory_rows(), evalset, info, note,
                            time.perf_counter() - t_start, update_docs=a.update_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
