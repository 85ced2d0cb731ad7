"""`python -m bench.llama` / `make bench`: options, the prepared inputs (SmolLM2 as float32
safetensors, prompts, perplexity windows), one worker process per (model, precision), then every output; or
--report-only to rebuild the outputs from a previous run's workers.json."""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from bench import machine

from .models import MODELS, SMOLLM2, SYNTHETIC, synthetic_config
from .outputs import write_all
from .precisions import GPU_PRECISIONS, PRECISIONS
from .worker import run_config

__all__ = ["OUT_DIR", "cache_dir", "prepare_smollm2", "main"]

OUT_DIR = Path(__file__).resolve().parents[1] / "results" / "bench"
PROVENANCE_PACKAGES = ("numpy", "torch", "transformers", "safetensors", "scipy", "pandas", "matplotlib", "pynvml",
                       "gguf")


def cache_dir() -> Path:
    from bench import data

    d = data.cache_dir() / "bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def prepare_smollm2(args) -> dict:
    """fp32 copy of SmolLM2 in safetensors (fast reloads), the prompts and the perplexity windows."""
    import transformers

    from bench import data
    from q35.eval.perplexity import build_eval_set

    d = cache_dir() / "smollm2-135m-fp32"
    if not (d / "config.json").is_file():
        print("  converting SmolLM2-135M-Instruct GGUF -> float32 safetensors (once)...", flush=True)
        from safetensors.torch import save_model

        model, tok, _ = data.load_smollm2(verify=False, threads=args.threads)
        d.mkdir(parents=True, exist_ok=True)
        cfg = model.config.to_dict()
        cfg.pop("quantization_config", None)           # the GGUF was dequantized to float32 on load
        save_model(model, str(d / "model.safetensors"), metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
        tok.save_pretrained(str(d))
        del model
    tok = transformers.AutoTokenizer.from_pretrained(str(d))
    docs = list(data.canterbury_texts().values())
    if args.full:
        docs = data.eval_documents()
    else:
        docs = [data.canterbury_texts()["alice29"]] + list(data.shakespeare_texts(["hamlet"]).values())
    es = build_eval_set(tok, docs, window=args.ppl_window, windows_per_doc=args.ppl_windows)
    prompt_doc = data.canterbury_texts()["lcet10"].text           # not among the quality windows' first tokens
    ids = tok(prompt_doc, add_special_tokens=False)["input_ids"]
    P = args.prompt_len
    prompts = [ids[i * P:(i + 1) * P] for i in range(max(args.batches + args.sweep))]
    ppl = {"windows": es.windows.tolist(), "window_bytes": es.window_bytes.tolist(), "window_docs": es.window_docs,
           "window": es.protocol.window, "windows_per_doc": es.protocol.windows_per_doc,
           "doc_sha256": es.doc_sha256, "tokens_sha256": es.tokens_sha256, "describe": es.describe()}
    return {"fp32_dir": str(d), "prompts": prompts, "ppl": ppl, **prepare_q35(d, args)}


def prepare_q35(fp32_dir: Path, args) -> dict:
    """The deployed q35 model: what `q35 quantize` writes (default configuration, default calibration text), made
    afresh in every run from the float model (so the benchmark measures today's code), timed."""
    import transformers

    from q35.torch import calibration, checkpoint, models
    from q35.torch.config import DEFAULT_CONFIG

    out = cache_dir() / "smollm2-135m-q35"
    print(f"  quantizing SmolLM2 with the deployed configuration ({DEFAULT_CONFIG.describe()})...", flush=True)
    t0 = time.perf_counter()
    model = transformers.LlamaForCausalLM.from_pretrained(str(fp32_dir)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(fp32_dir))
    calib = calibration.calibration_windows(tok, windows_per_doc=DEFAULT_CONFIG.calib_windows_per_doc)
    summary = models.quantize_model(model, DEFAULT_CONFIG, calib, progress=False)
    checkpoint.save_pretrained(model, out, tok)
    secs = time.perf_counter() - t0
    print(f"  q35: {summary['bits_per_weight']:.4f} all-in bpw over the block linears, {secs:.0f} s", flush=True)
    return {"q35_dir": str(out), "q35_config": DEFAULT_CONFIG.describe(), "q35_quantize_s": secs,
            "q35_bpw": summary["bits_per_weight"]}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.llama", description="end-to-end latency/throughput/memory/energy benchmark")
    p.add_argument("--full", action="store_true", help="the full protocol (more repeats, tokens, documents, layers)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--precisions", default=None, help=f"default {','.join(PRECISIONS)} (GPU: {','.join(GPU_PRECISIONS)})")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per config (quick 5, full 10)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=None, help="prompt tokens (quick 32, full 128)")
    p.add_argument("--new-tokens", type=int, default=None, help="generated tokens (quick 16, full 64)")
    p.add_argument("--batches", default="1", help="batch sizes for every model (default 1)")
    p.add_argument("--sweep", default=None, help="batch sweep on SmolLM2 (quick 1,2,4,8; full 1..8)")
    p.add_argument("--synthetic-layers", type=int, default=None, help="quick 1, full 2")
    p.add_argument("--ppl-window", type=int, default=None, help="perplexity window (quick 256, full 512)")
    p.add_argument("--ppl-windows", type=int, default=None, help="windows per document (quick 2, full 3)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    p.add_argument("--out", default=str(OUT_DIR))
    p.add_argument("--report-only", nargs="?", const=str(OUT_DIR), metavar="FROM",
                   help="rebuild every table and figure into --out from FROM/workers.json (default: the results "
                        "folder), without running anything")
    return p


def _fill_defaults(a) -> None:
    """Quick or full values for the options left unset."""
    full = a.full
    a.repeats = a.repeats or (10 if full else 5)
    a.prompt_len = a.prompt_len or (128 if full else 32)
    a.new_tokens = a.new_tokens or (64 if full else 16)
    a.synthetic_layers = a.synthetic_layers or (2 if full else 1)
    a.ppl_window = a.ppl_window or (512 if full else 256)
    a.ppl_windows = a.ppl_windows or (3 if full else 2)
    a.batches = [int(v) for v in a.batches.split(",")]
    a.sweep = [int(v) for v in (a.sweep or ("1,2,3,4,5,6,7,8" if full else "1,2,4,8")).split(",")]


def _provenance(a, device: str) -> dict:
    prov = machine.provenance(PROVENANCE_PACKAGES)
    prov["loadavg_start"] = [round(v, 2) for v in os.getloadavg()]
    prov["device"] = device
    prov["protocol"] = {"mode": "full" if a.full else "quick", "repeats": a.repeats, "warmup": a.warmup,
                        "prompt_len": a.prompt_len, "new_tokens": a.new_tokens,
                        "min_new_tokens_equals_max": True, "threads": a.threads, "batches": a.batches,
                        "sweep_smollm2": a.sweep, "synthetic_layers": a.synthetic_layers,
                        "ppl_window": a.ppl_window, "ppl_windows_per_doc": a.ppl_windows}
    return prov


def _model_spec(model: str, a, device: str, prov: dict) -> dict:
    """The part of a worker's spec shared by every precision of ``model``."""
    base = {"model": model, "device": device, "threads": a.threads, "repeats": a.repeats, "warmup": a.warmup,
            "new_tokens": a.new_tokens}
    if model == SMOLLM2:
        prep = prepare_smollm2(a)
        prov["ppl_protocol"] = prep["ppl"]["describe"]
        base.update({"fp32_dir": prep["fp32_dir"], "prompts": prep["prompts"], "ppl": prep["ppl"],
                     "batches": sorted(set(a.batches) | set(a.sweep)), "q35_dir": prep["q35_dir"],
                     "q35_config": prep["q35_config"]})
        prov["q35_deployed"] = {k: prep[k] for k in ("q35_config", "q35_quantize_s", "q35_bpw")}
    elif model == SYNTHETIC:
        rng = np.random.default_rng(0)
        base.update({"synthetic_config": synthetic_config(a.synthetic_layers), "ppl": None,
                     "prompts": rng.integers(0, 32000, (max(a.batches), a.prompt_len)).tolist(),
                     "batches": a.batches})
    else:
        raise SystemExit(f"unknown model {model}; choose from {', '.join(MODELS)}")
    return base


def _run_one(base: dict, prec: str, timeout: float) -> dict:
    t0 = time.perf_counter()
    print(f"- {base['model']} / {prec}: ", end="", flush=True)
    res = run_config(dict(base, precision=prec), timeout)
    if res.get("unavailable"):
        print(f"unavailable ({res['unavailable']})", flush=True)
        return res
    b1 = [r for r in res["runs"] if r["batch"] == min(base["batches"])]
    med = float(np.median([r["decode_tok_s"] for r in b1])) if b1 else math.nan
    ppl = res.get("ppl", {}).get("ppl") if res.get("ppl") else None
    print(f"{time.perf_counter() - t0:.0f} s; decode {med:.1f} tok/s at batch {min(base['batches'])}"
          + (f"; ppl {ppl:.3f}" if ppl else ""), flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if a.report_only:
        saved = json.loads((Path(a.report_only) / "workers.json").read_text())
        write_all(saved["results"], saved["provenance"], Path(a.out))
        return 0
    _fill_defaults(a)
    import torch

    device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    precisions = a.precisions.split(",") if a.precisions else list(PRECISIONS if device == "cpu" else GPU_PRECISIONS)
    models = a.models.split(",")
    t_start = time.perf_counter()
    prov = _provenance(a, device)
    print(f"bench.llama ({'full' if a.full else 'quick'}): device {device}, models {models}, precisions {precisions}, "
          f"{a.repeats} repeats after {a.warmup} warm-up, prompt {a.prompt_len} tokens, {a.new_tokens} new tokens, "
          f"{a.threads} torch thread(s)", flush=True)
    results = []
    for model in models:
        base = _model_spec(model, a, device, prov)
        results += [_run_one(base, prec, a.timeout) for prec in precisions]
    prov["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    prov["bench_wall_s"] = time.perf_counter() - t_start
    write_all(results, prov, Path(a.out))
    print(f"bench.llama finished in {prov['bench_wall_s']:.0f} s; results in {a.out}")
    return 0
