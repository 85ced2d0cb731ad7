"""Quick real-model quality check: ``python -m bench.quality_smoke``.

Loads SmolLM2-135M-Instruct (float32, from the PyPI GGUF; see bench.data), scores the fixed perplexity protocol
(q35.eval.perplexity) with the original block linears, then with each method's dequantized block linears swapped
in: INT3 g64 and INT4 g128 min-max RTN (bench.baselines), HQQ 3/4-bit g64 and llama.cpp's Q3_K/Q4_K
(bench.anchors). Prints one table (method, all-in bpw of the block linears, ppl, bpb, quantize and eval seconds)
with the protocol and the SHA-256 of the model file, every text and the token windows, and optionally writes all
of it (per-window NLLs included) as JSON with provenance. Every number is computed in this run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench import data
from q35.eval import perplexity

from . import anchors, baselines
from .report import markdown_table

# method name -> callable(reference block weights) -> LayerSetResult
SMOKE_METHODS = {
    "INT3 g64 RTN": lambda ref: baselines.quantize_layers(baselines.BASELINES["int3_g64"], ref, "INT3 g64 RTN"),
    "INT4 g128 RTN": lambda ref: baselines.quantize_layers(baselines.BASELINES["int4_g128"], ref, "INT4 g128 RTN"),
    "HQQ 3-bit g64": anchors.ANCHORS["HQQ 3-bit g64"],
    "HQQ 4-bit g64": anchors.ANCHORS["HQQ 4-bit g64"],
    "Q3_K pure (rows, no imatrix)": anchors.ANCHORS["Q3_K pure (rows, no imatrix)"],
    "Q4_K pure (rows, no imatrix)": anchors.ANCHORS["Q4_K pure (rows, no imatrix)"],
    "Q3_K (flat blocks, no imatrix)": anchors.ANCHORS["Q3_K (flat blocks, no imatrix)"],
    "Q4_K (flat blocks, no imatrix)": anchors.ANCHORS["Q4_K (flat blocks, no imatrix)"],
}
EXTRA_METHODS = {
    "llama.cpp Q3_K_S": anchors.ANCHORS["llama.cpp Q3_K_S"],
    "llama.cpp Q4_K_M": anchors.ANCHORS["llama.cpp Q4_K_M"],
}


def _provenance() -> dict:
    try:
        from . import machine
        return machine.provenance()
    except Exception as e:  # provenance must never kill the measurement
        return {"error": f"bench.machine.provenance unavailable: {e.__class__.__name__}: {e}",
                "argv": sys.argv, "python": sys.version.split()[0]}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.quality_smoke", description=__doc__.splitlines()[0])
    ap.add_argument("--windows-per-doc", type=int, default=2,
                    help="windows of 512 tokens per document (8 documents; default 2 = 8,192 tokens)")
    ap.add_argument("--methods", nargs="*", default=None,
                    help=f"subset of: {', '.join([*SMOKE_METHODS, *EXTRA_METHODS])}")
    ap.add_argument("--all", action="store_true", help="also run the llama.cpp Q3_K_S / Q4_K_M file mixes")
    ap.add_argument("--json", type=Path, default=None, help="write the results (per-window NLLs, provenance)")
    return ap


def _load(windows_per_doc: int):
    """The model, its block linears, the documents and the evaluation set, with their hashes printed."""
    t0 = time.perf_counter()
    model, tok, info = data.load_smollm2(verify=True)
    load_s = time.perf_counter() - t0
    docs = data.eval_documents()
    ref = data.block_linear_weights(model)
    es = perplexity.build_eval_set(tok, docs, windows_per_doc=windows_per_doc)
    print(f"model: {info['source']} sha256 {info['gguf_sha256']}; loaded float32 in {load_s:.1f} s; "
          f"{len(ref)} block linears verified equal to gguf dequantization "
          f"({info['verify']['gguf_types']}); load average {os.getloadavg()[0]:.2f}")
    print(f"protocol: {es.describe()}")
    for d in docs:
        print(f"  text {d.name}: {d.n_bytes} bytes, sha256 {d.sha256}  [{d.source}]")
    print(f"  token windows sha256 {es.tokens_sha256}")
    return model, info, docs, ref, es


def _method_row(name: str, res, ref: dict, model, es, base) -> dict:
    row = anchors.result_row(res, ref)
    with data.swapped_weights(model, res.weights):
        r = perplexity.evaluate(model, es)
    diff = r.nll - base.nll
    print(f"{name}: bpw {res.bpw:.4f} ppl {r.ppl:.4f} bpb {r.bpb:.4f} rel_rmse {row['rel_rmse']:.4f} "
          f"(quantize {res.seconds:.1f} s, eval {r.seconds:.1f} s)", flush=True)
    return {"method": name, "bpw": res.bpw, "ppl": r.ppl, "bpb": r.bpb, "quantize_s": res.seconds,
            "eval_s": r.seconds, "rel_rmse": row["rel_rmse"], "max_abs_err": row["max_abs_err"],
            "windows_worse": int((diff > 0).sum()), "notes": res.notes,
            "layer_notes": sorted(set(res.per_layer_notes.values())), "nll": r.nll.tolist()}


def _print_table(rows: list[dict], base, ref: dict) -> None:
    print()
    print(markdown_table(["method", "bpw", "ppl", "bpb", "Δppl %", "quantize s", "eval s"],
                         [[r["method"], f"{r['bpw']:.4f}", f"{r['ppl']:.4f}", f"{r['bpb']:.4f}",
                           f"{100 * (r['ppl'] / base.ppl - 1):+.2f}", f"{r['quantize_s']:.1f}", f"{r['eval_s']:.1f}"]
                          for r in rows]))
    print(f"\nbpw = all-in stored bits / weights over the {len(ref)} block linears "
          f"({sum(w.size for w in ref.values())} weights); embeddings, norms and the tied lm_head stay float32.")
    for r in rows[1:]:
        print(f"  {r['method']}: {r['notes']}")


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    catalog = {**SMOKE_METHODS, **EXTRA_METHODS}
    names = a.methods if a.methods else list(SMOKE_METHODS) + (list(EXTRA_METHODS) if a.all else [])
    unknown = [n for n in names if n not in catalog]
    if unknown:
        print(f"ERROR: unknown method(s) {unknown}; choose from {list(catalog)}", file=sys.stderr)
        return 2
    t_all = time.perf_counter()
    try:
        model, info, docs, ref, es = _load(a.windows_per_doc)
    except (data.MissingDependency, data.AcquisitionError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    base = perplexity.evaluate(model, es)
    rows = [{"method": "FP32 (GGUF Q4_1 dequantized)", "bpw": 32.0, "ppl": base.ppl, "bpb": base.bpb,
             "quantize_s": 0.0, "eval_s": base.seconds, "notes": "reference", "nll": base.nll.tolist()}]
    print(f"FP32: ppl {base.ppl:.4f} bpb {base.bpb:.4f} ({base.total_tokens} tokens, {base.total_bytes} bytes, "
          f"{base.seconds:.1f} s)", flush=True)
    for name in names:
        try:
            res = catalog[name](ref)
        except (data.MissingDependency, data.AcquisitionError) as e:
            print(f"skip {name}: {e}", file=sys.stderr)
            continue
        rows.append(_method_row(name, res, ref, model, es, base))
    # sanity: swapping restored the original weights
    after = data.block_linear_weights(model)
    if any(not np.array_equal(after[k], ref[k]) for k in ref):
        print("ERROR: model weights were not restored after swapping", file=sys.stderr)
        return 1
    _print_table(rows, base, ref)
    total = time.perf_counter() - t_all
    print(f"total {total:.1f} s")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({
            "provenance": _provenance(), "model": info, "protocol": es.describe(),
            "texts": {d.name: {"sha256": d.sha256, "bytes": d.n_bytes, "source": d.source} for d in docs},
            "tokens_sha256": es.tokens_sha256, "window_docs": es.window_docs,
            "window_bytes": es.window_bytes.tolist(), "rows": rows, "total_seconds": total}, indent=1))
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
