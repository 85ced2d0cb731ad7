"""Perplexity cost of int8 activations (SPEC §5.1) on SmolLM2-135M under the project's fixed protocol.

`python -m bench.a8_perplexity [--group 128] [--blocks 128,256] [--threads N]`

Every block linear of SmolLM2 is quantized with `q35.quantize(w, group)` (f16 scales) once; the same quantized
weights then run through `q35.matmul_kernel` with float activations (SPEC §5, the exact reference for quality)
and with A8 activations for each activation block size. Evaluated by `q35.perplexity.evaluate` on
`q35.data.eval_documents()` windows (`build_eval_set`). Prints one line per configuration, all measured here.
"""
from __future__ import annotations

import argparse
import time

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group", type=int, default=128)
    p.add_argument("--blocks", default="128,256")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    from q35 import data, perplexity
    model, tok, _ = data.load_smollm2(verify=False)
    evalset = perplexity.build_eval_set(tok, data.eval_documents())
    state = _patch(model, a.group)
    state["threads"] = a.threads
    configs = [("float", 0)] + [("a8", int(b)) for b in a.blocks.split(",")]
    base = None
    for act, block in configs:
        state["activations"], state["a8_block"] = act, block or 128
        t0 = time.perf_counter()
        r = perplexity.evaluate(model, evalset)
        ppl = float(np.exp(r.nll.sum() / r.tokens.sum()))
        base = ppl if base is None else base
        label = "float activations" if act == "float" else f"A8, activation block {block}"
        print(f"q35 g{a.group} weights, {label}: ppl {ppl:.4f} ({100 * (ppl / base - 1):+.3f}% vs float "
              f"activations), {r.total_tokens} tokens, {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
