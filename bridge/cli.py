"""The `q35` console script: one subcommand per job, each living in its own module.

Each entry maps a subcommand to "module:function"; the module is imported only when its subcommand runs,
so `q35 project` works without torch and `q35 --help` is instant. The function receives the remaining
argv and returns an exit code.
"""
from __future__ import annotations

import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function", one-line help)
    "info": ("bridge.cli:info_main", "format constants and all-in bits per weight for a shape"),
    "tables": ("bench.tables:main", "compression/RMSE and perplexity tables on SmolLM2 (the main job)"),
    "project": ("bench.projection:main", "modelled accelerator throughput / memory projection"),
    "quantize": ("bridge.model:quantize_main", "quantize a LLaMA-architecture model to q35 safetensors"),
    "generate": ("bridge.model:generate_main", "greedy text generation from a q35-quantized model"),
    "bench": ("bench.llama_bench:main", "end-to-end latency/throughput/memory/energy benchmark"),
}


def info_main(argv: list[str]) -> int:
    import argparse

    import pyref

    p = argparse.ArgumentParser(prog="q35 info", description=SUBCOMMANDS["info"][1])
    p.add_argument("--out-features", type=int, default=4096)
    p.add_argument("--in-features", type=int, default=4096)
    p.add_argument("--group-size", type=int, default=pyref.DEFAULT_GROUP_SIZE,
                   help="multiple of 16, or 0 for one group per row")
    a = p.parse_args(argv)
    g = a.group_size or None
    nbytes = pyref.encoded_nbytes(a.out_features, a.in_features, g)
    bpw = pyref.all_in_bits_per_weight(a.in_features, g)
    print(f"shape [{a.out_features}, {a.in_features}], group size {g or 'row'}")
    print(f"payload bytes {nbytes['payload']}, scale bytes {nbytes['scales']}, zero bytes {nbytes['zeros']}")
    print(f"all-in bits per weight {bpw:.4f} (payload {pyref.PAYLOAD_BITS_PER_WEIGHT} + overhead)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in SUBCOMMANDS:
        print("usage: q35 <command> [options]\n\ncommands:")
        for name, (_, help_) in SUBCOMMANDS.items():
            print(f"  {name:<10} {help_}")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    target, _ = SUBCOMMANDS[argv[0]]
    module, func = target.split(":")
    return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
