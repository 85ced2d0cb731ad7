"""One (model, precision) configuration in its own process, so memory peaks are not polluted by other
configurations: `run_config` writes the spec to a file and starts `python -m bench.llama.worker SPEC OUT`, whose
`worker` builds and converts the model, measures perplexity (SmolLM2) and times the generation runs."""
from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .models import SMOLLM2
from .precisions import convert, weight_bytes
from .probes import UNAVAILABLE, EnergyMeter, peak_rss_bytes, reset_peak_rss, rss_bytes

__all__ = ["load_model", "worker", "one_run", "evalset_from_spec", "run_config", "main"]


def load_model(spec: dict):
    import torch
    import transformers

    if spec["model"] == SMOLLM2:
        model = transformers.LlamaForCausalLM.from_pretrained(spec["fp32_dir"], dtype=torch.float32)
        # own copies instead of views of the memory-mapped file: otherwise weights a precision replaces stay
        # resident (the mapping lives as long as any tensor in it) and peak RSS would not show the saving
        with torch.no_grad():
            for prm in model.parameters():
                prm.data = prm.data.clone()
        gc.collect()
    else:
        cfg = transformers.LlamaConfig(**spec["synthetic_config"])
        torch.manual_seed(0)
        with torch.device("meta"):
            model = transformers.LlamaForCausalLM(cfg)
        model = model.to_empty(device="cpu")
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.ndim == 1:
                    p.fill_(1.0)       # norms
                else:
                    p.normal_(0.0, 0.02, generator=gen)
        from q35.torch.models import restore_nonpersistent_buffers

        restore_nonpersistent_buffers(model)
        model.to(torch.float32)
    return model.eval()


def _deployed_q35(spec: dict, device: str):
    """The model directory `q35 quantize` wrote (bench.llama.cli prepares it), loaded as users load it."""
    import q35

    model = q35.from_pretrained(spec["q35_dir"])
    if device != "cpu":
        model.to(device)
    return model.eval(), {"kernel": "fused Fortran kernel" if device == "cpu" else "unfused torch unpack",
                          "config": spec["q35_config"], "q35_dir": spec["q35_dir"]}


def _perplexity(model, spec: dict) -> dict:
    from q35.eval.perplexity import evaluate

    res = evaluate(model, evalset_from_spec(spec["ppl"]), batch_size=1)
    return {"ppl": res.ppl, "bpb": res.bpb, "nll": res.nll.tolist(), "tokens": res.tokens.tolist(),
            "bytes": res.bytes.tolist(), "seconds": res.seconds, "protocol": res.protocol, "docs": res.window_docs}


def _batch(model, spec: dict, ids, meter: EnergyMeter, rss0) -> tuple[list[dict], dict]:
    """Warm-up + timed runs at one batch size: (the timed runs, the batch's memory record)."""
    import torch

    device, b = spec["device"], ids.shape[0]
    if device != "cpu":
        torch.cuda.reset_peak_memory_stats()
    rss_before = rss_bytes()
    reset_ok = reset_peak_rss()
    first_tokens, runs = None, []
    for r in range(spec["warmup"] + spec["repeats"]):
        rec, toks = one_run(model, ids, spec["new_tokens"], device, meter)
        if first_tokens is None:
            first_tokens = toks
        elif toks != first_tokens:
            rec["nondeterministic"] = True
        if r >= spec["warmup"]:
            rec.update({"batch": b, "run": r - spec["warmup"]})
            runs.append(rec)
    cfg = {"batch": b, "peak_rss_bytes": peak_rss_bytes() if reset_ok else None, "rss_before_bytes": rss_before,
           "rss_process_start_bytes": rss0, "first_tokens": first_tokens}
    if device != "cpu":
        cfg["peak_device_bytes"] = torch.cuda.max_memory_allocated()
    return runs, cfg


def worker(spec: dict) -> dict:
    """Build, convert and measure one (model, precision): sizes, perplexity, timed runs per batch size."""
    import torch

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    out = {"model": spec["model"], "precision": spec["precision"], "device": device, "runs": [], "configs": []}
    t0 = time.perf_counter()
    reset_peak_rss()
    rss0 = rss_bytes()
    try:
        if spec["precision"] == "q35" and spec.get("q35_dir"):
            model, out["notes"] = _deployed_q35(spec, device)
        else:
            model = load_model(spec)
            out["notes"] = convert(model, spec["precision"], device)
    except Exception as e:  # noqa: BLE001 - reported as an unavailable configuration
        out["unavailable"] = f"{e.__class__.__name__}: {e}"
        return out
    if device != "cpu" and spec["precision"] != "q35":
        model.to(device)
    out["prepare_s"] = time.perf_counter() - t0
    out.update(weight_bytes(model))
    meter = EnergyMeter()
    out["energy_status"] = "available" if meter.available else f"{UNAVAILABLE}: {meter.reason}"
    if meter.available:
        out["idle_power_w"] = meter.measure_idle()
        out["gpu"] = {"name": str(meter.gpu_name), "driver": str(meter.driver)}
    if spec.get("ppl"):
        out["ppl"] = _perplexity(model, spec)
    prompts = torch.tensor(spec["prompts"], dtype=torch.long)
    for b in spec["batches"]:
        runs, cfg = _batch(model, spec, prompts[:b].to(device), meter, rss0)
        out["runs"] += runs
        out["configs"].append(cfg)
    return out


def one_run(model, ids, n_new: int, device: str, meter: EnergyMeter):
    import torch

    def sync():
        if device != "cpu":
            torch.cuda.synchronize()

    tok = meter.start()
    with torch.inference_mode():
        sync()
        t0 = time.perf_counter()
        out = model(input_ids=ids, use_cache=True)
        nxt = out.logits[:, -1, :].argmax(-1)
        sync()
        t1 = time.perf_counter()
        pkv = out.past_key_values
        gen = [nxt]
        for _ in range(n_new - 1):                  # min_new_tokens = max_new_tokens: no early stop at EOS
            out = model(input_ids=nxt[:, None], past_key_values=pkv, use_cache=True)
            pkv = out.past_key_values
            nxt = out.logits[:, -1, :].argmax(-1)
            gen.append(nxt)
        sync()
        t2 = time.perf_counter()
    energy = meter.stop(tok)
    b, p = ids.shape
    ttft, dec = t1 - t0, t2 - t1
    steps = max(n_new - 1, 1)
    rec = {"ttft_s": ttft, "prefill_tok_s": b * p / ttft, "decode_s": dec, "tpot_s": dec / steps,
           "decode_tok_s": b * steps / dec if dec > 0 else math.nan, "e2e_s": ttft + dec,
           "prompt_len": p, "new_tokens": n_new}
    rec.update(energy)
    toks = torch.stack(gen, 1)[0, :8].tolist()
    return rec, toks


def evalset_from_spec(es: dict):
    from q35.eval.perplexity import EvalSet, Protocol

    return EvalSet(np.asarray(es["windows"], dtype=np.int64), np.asarray(es["window_bytes"], dtype=np.int64),
                   list(es["window_docs"]), Protocol(es["window"], es["windows_per_doc"], None, None),
                   dict(es["doc_sha256"]), es["tokens_sha256"])


def run_config(spec: dict, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="q35-bench-") as tmp:
        sp, op = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        sp.write_text(json.dumps(spec))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bench.llama.worker", str(sp), str(op)],
                              capture_output=True, text=True, timeout=timeout,
                              cwd=str(Path(__file__).resolve().parents[2]))
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or not op.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"model": spec["model"], "precision": spec["precision"], "device": spec["device"], "runs": [],
                    "configs": [], "unavailable": f"worker failed (exit {proc.returncode}): {' | '.join(tail)}"}
        out = json.loads(op.read_text())
        out["worker_wall_s"] = wall
        return out


def main(argv: list[str] | None = None) -> int:
    spec_path, out_path = sys.argv[1:] if argv is None else argv
    res = worker(json.loads(Path(spec_path).read_text()))
    Path(out_path).write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
