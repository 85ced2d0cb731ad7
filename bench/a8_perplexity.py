"""Perplexity cost of int8 activations (SPEC §5.1) on SmolLM2-135M under the project's fixed protocol.

`python -m bench.a8_perplexity [--group 128] [--blocks 128,256] [--threads N]`
`python -m bench.a8_perplexity --q35-dir DIR` (a directory written by `q35 quantize`: the deployed model)

Every block linear of SmolLM2 is quantized with `q35.quantize(w, group)` (f16 scales) once, or loaded from DIR with
`q35.from_pretrained`; the same quantized weights then run through the fused kernels with float activations (SPEC
§5, the exact reference for quality) and with A8 activations for each activation block size (DIR: the layers'
block, SPEC §5.1's default 128). Evaluated by `q35.eval.perplexity.evaluate` on
the tables' fixed protocol (`bench.data.eval_documents()`, 2 windows per document). Prints one line per
configuration, all measured here, and writes them to bench/results/bench/a8_perplexity.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _patch(model, group: int):
    """Replace the block linears' forward by q35.matmul_kernel on their quantized weights; returns a setter for
    the activation mode."""
    import torch

    import q35
    state = {"activations": "float", "a8_block": 128, "threads": None}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and ".layers." in name:
            kw = q35.kernel_weights(q35.quantize(mod.weight.detach().float().numpy(), group))
            bias = None if mod.bias is None else mod.bias.detach().float()

            def forward(x, kw=kw, bias=bias, out=mod.out_features):
                x2 = x.reshape(-1, x.shape[-1]).detach().float().contiguous().numpy()
                y = torch.from_numpy(q35.matmul_kernel(x2, kw, activations=state["activations"],
                                                       a8_block=state["a8_block"], threads=state["threads"]))
                y = y if bias is None else y + bias
                return y.reshape(*x.shape[:-1], out)
            mod.forward = forward
    return state


def _load_dir(directory: str):
    """The deployed model, its tokenizer and a setter that puts every Q35Linear in the requested mode."""
    import transformers

    import q35
    model = q35.from_pretrained(directory)
    tok = transformers.AutoTokenizer.from_pretrained(directory)
    layers = [m for m in model.modules() if isinstance(m, q35.Q35Linear)]

    def apply(state):
        for m in layers:
            m.activations, m.threads = state["activations"], state["threads"]
    return model, tok, apply


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", type=int, default=128)
    p.add_argument("--blocks", default="128,256")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--q35-dir", default=None, help="a directory written by `q35 quantize` (its own weights)")
    p.add_argument("--out", default="bench/results/bench/a8_perplexity.md", help="where the lines are also written")
    a = p.parse_args(argv)
    from bench import data
    from q35.eval import perplexity
    if a.q35_dir:
        model, tok, apply = _load_dir(a.q35_dir)
        state, blocks = {}, ["128"]
        from q35.torch.checkpoint import read_quantization_config
        what = f"{a.q35_dir} ({read_quantization_config(a.q35_dir)[1]['config']['method']} weights)"
    else:
        model, tok, _ = data.load_smollm2(verify=False)
        state, blocks, what = _patch(model, a.group), a.blocks.split(","), f"q35 g{a.group} weights"
        apply = lambda state: None    # noqa: E731 (the patched forwards read `state`)
    # the tables' fixed protocol (bench.tables, `q35 perplexity`): 2 windows per document, 8,192 tokens
    evalset = perplexity.build_eval_set(tok, data.eval_documents(), windows_per_doc=2)
    state["threads"] = a.threads
    configs = [("float", 0)] + [("a8", int(b)) for b in blocks]
    from bench import machine
    command = "python -m bench.a8_perplexity" + (f" --q35-dir {a.q35_dir}" if a.q35_dir else "")
    lines = [f"# Perplexity cost of A8 activations (`{command}`)",
             "", f"Machine: {machine.provenance_line(machine.provenance())}", "", f"Protocol: {evalset.describe()}", ""]
    base = None
    for act, block in configs:
        state["activations"], state["a8_block"] = act, block or 128
        apply(state)
        t0 = time.perf_counter()
        r = perplexity.evaluate(model, evalset)
        ppl = float(np.exp(r.nll.sum() / r.tokens.sum()))
        base = ppl if base is None else base
        label = "float activations" if act == "float" else f"A8, activation block {block}"
        lines.append(f"- {what}, {label}: ppl {ppl:.4f} ({100 * (ppl / base - 1):+.3f}% vs float "
                     f"activations), {r.total_tokens} tokens, {time.perf_counter() - t0:.0f} s")
        print(lines[-1][2:], flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
