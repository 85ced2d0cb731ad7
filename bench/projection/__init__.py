"""Modelled accelerator throughput / memory projection for LLaMA-architecture models.

Everything this module prints is MODELLED (a bound computed from published specifications). The CPU row's
inputs (bandwidth, GEMM rate, memory size) are measured in the same run by `bench.machine`; its tokens/s are
still modelled from them. Inputs:

* bench/catalog/hardware.json, models.json, published.json: data with a `source` on every entry (the loaders
  raise ValueError on an entry without one);
* the storage formulas of bench.formats (FP16, INT8, INT4 g128, NF4; q35 sizes from `q35.encoded_nbytes` per
  layer shape, since padding and group count depend on K).

The model (per decode step of `batch` streams at `context` tokens of history):

* weights stored = quantized linears at the format's size + embedding + lm_head (FP16; counted once when
  tied) + RMSNorm vectors (FP16);
* KV cache = 2 · layers · kv_heads · head_dim · context · 2 bytes (FP16) · batch  (GQA aware);
* devices = ceil((weights + KV) / device memory);
* bytes read per step = every linear + the lm_head matrix + norms + one embedding row per stream + the KV;
* GPUs/CPU: roofline. decode tokens/s <= batch / max(bytes / (devices · bandwidth · utilisation),
  FLOPs / (devices · peak FP16)); FLOPs per token = 2 · (linear + lm_head params) + 4 · layers · heads ·
  head_dim · context (attention). Regime = memory-bound when FLOPs/byte < peak FLOP/s / bandwidth;
  prefill tokens/s <= compute / FLOPs per prompt token (ideal tensor parallelism, interconnect ignored);
* SRAM machines (Groq, Cerebras): bandwidth/bytes predicts ~1e5 tokens/s, far above reality, so the model is a
  PIPELINE-LATENCY model: time per token = layers · tau + bytes / (devices · bandwidth) + FLOPs / compute,
  with tau (per-layer latency: inter-chip hops, synchronisation, scheduling) CALIBRATED on one published
  point per machine (its error is 0 by construction) and checked on held-out points;
* energy per token = devices · power / tokens/s (at TDP; modelled) where a power figure exists.

Modules: catalogue (loading and checking the catalogues), models (model arithmetic), hardware (catalogue entries
resolved to SI units, the measured CPU, bandwidth utilisation), performance (the roofline and the pipeline-latency
models), context (everything resolved once, and the rows computed from it), report (tables, notes, docs block),
figures, cli.

`python -m bench.projection --all [--update-docs]` (`make projection`) writes bench/results/projection/ (markdown,
CSV, LaTeX, figures, provenance) and can rewrite the block of docs/projection.md between the projection markers;
`python -m bench.projection --model llama-2-70b --format q35` prints one model/format row for every hardware entry.
"""
