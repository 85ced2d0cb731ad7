"""Calibrated anchors: published quantizers given the same calibration statistics as q35, so that a
q35 win cannot come from better calibration data.

* ggml k-/i-quants **with an importance matrix** (:func:`ggml_imatrix_layers`): ``ggml_quantize_chunk(type, src,
  dst, start, nrows, n_per_row, imatrix)`` with ``imatrix`` = the per-input-channel mean squared activation that
  q35's search uses (llama.cpp's ``llama-imatrix`` statistic), measured on the same calibration windows.
  ``layout="rows"``: ggml's own layout (rows whose length is not a multiple of 256 fall back to llama.cpp's type
  for them, :data:`bench.anchors.LLAMA_FALLBACK`, also given the imatrix); ``layout="flat"``: the row-major
  flattened matrix in 256-weight super-blocks, each chunk given the importance of the columns it covers
  (``(256·c + i) mod K``), quantized in one call per distinct column phase.
* **GPTQ INT3/INT4** (:func:`gptq_int_layers`): llmcompressor's GPTQ (``quantize_weight``, the maintained
  implementation of the reference algorithm: dampening 0.01, blocks of 128, lazy batch updates) on an asymmetric
  uniform grid with a min-max observer per group of the original weights (llmcompressor's default observer),
  scales rounded to binary16. The Hessian is q35.torch.calibration's ``XᵀX/n`` of the same windows. Stored: bit-packed
  codes (``ceil(K·b/8)`` bytes per row) + a binary16 scale and a binary16 zero per group (the same accounting as
  the ``int3_g64`` baseline).
* **AWQ** is not run: AutoAWQ is archived and needs CUDA kernels; llmcompressor's AWQModifier runs only inside its
  ``oneshot`` pipeline (datasets, model-wide sequential tracing), not on a layer with given statistics, so it
  could not be given the same calibration data here within the tables' time budget.
"""
from __future__ import annotations

import importlib
import importlib.util
import time

import numpy as np

from bench.anchors import LLAMA_FALLBACK, _ggml, _gguf
from bench.baselines import LayerSetResult, Quantized
from bench.data import MissingDependency, run_pip

__all__ = ["ggml_imatrix_quantize", "ggml_imatrix_layers", "gptq_int_quantize", "gptq_int_layers",
           "ensure_llmcompressor", "LLMCOMPRESSOR_SPECS", "CALIBRATED_ANCHORS"]

# llmcompressor and the packages its import needs, installed with --no-deps (torch is never touched)
LLMCOMPRESSOR_SPECS = {"llmcompressor": "llmcompressor==0.14.0.1", "compressed_tensors": "compressed-tensors==0.20.0",
                       "loguru": "loguru==0.7.3", "datasets": "datasets==5.2.0", "multiprocess": "multiprocess==0.70.19",
                       "pyarrow": "pyarrow==26.0.1", "dill": "dill==0.4.1", "xxhash": "xxhash==4.1.0"}


def _quantize_chunks(x: np.ndarray, qtype, imatrix) -> tuple[np.ndarray, int]:
    """ggml_quantize_chunk on rows of x [rows, per_row] with one imatrix row; (dequantized, stored bytes)."""
    gguf, lib = _gguf(), _ggml()
    x = np.ascontiguousarray(x, dtype=np.float32)
    nrows, per_row = x.shape
    row_size = lib.ggml_row_size(int(qtype), per_row)
    dst = np.zeros(nrows * row_size, dtype=np.uint8)
    imp = np.ascontiguousarray(imatrix, dtype=np.float32)
    size = lib.ggml_quantize_chunk(int(qtype), x.ctypes.data, dst.ctypes.data, 0, nrows, per_row, imp.ctypes.data)
    if size != dst.nbytes:
        raise RuntimeError(f"ggml_quantize_chunk wrote {size} bytes, expected {dst.nbytes}")
    deq = gguf.quants.dequantize(dst.reshape(nrows, row_size), qtype).astype(np.float32).reshape(nrows, per_row)
    return deq, int(size)


def ggml_imatrix_quantize(w, importance, type_name: str, layout: str) -> Quantized:
    """One matrix through ggml with the importance matrix (see the module doc for the two layouts)."""
    gguf = _gguf()
    w = np.ascontiguousarray(w, dtype=np.float32)
    n, k = w.shape
    imp = np.asarray(importance, dtype=np.float32)
    if imp.shape != (k,):
        raise ValueError(f"importance of length {imp.shape} for a matrix with {k} columns")
    qtype = gguf.GGMLQuantizationType[type_name]
    blck, _ = gguf.GGML_QUANT_SIZES[qtype]
    if layout == "rows":
        used = type_name if k % blck == 0 else LLAMA_FALLBACK[type_name]
        deq, size = _quantize_chunks(w, gguf.GGMLQuantizationType[used], imp)
        note = f"{used} + imatrix (ggml rows)" + (f", fallback from {type_name} for {k}-wide rows" if used != type_name
                                                  else "")
        return Quantized(f"ggml_{type_name}_imatrix_rows", deq, {f"{used}_blocks": size}, note)
    if layout != "flat" or w.size % blck:
        raise ValueError(f"layout must be 'rows' or 'flat' (N*K divisible by {blck}); got {layout!r}, {w.shape}")
    chunks = w.reshape(-1, blck)
    phase = (np.arange(len(chunks)) * blck) % k            # first column covered by each chunk
    out, size = np.empty_like(chunks), 0
    for ph in np.unique(phase):
        sel = np.nonzero(phase == ph)[0]
        out[sel], s = _quantize_chunks(chunks[sel], qtype, imp[(ph + np.arange(blck)) % k])
        size += s
    return Quantized(f"ggml_{type_name}_imatrix_flat", out.reshape(n, k), {f"{type_name}_blocks": size},
                     f"{type_name} + imatrix (flattened 256-blocks, each with the importance of its columns)")


def _layers(fn, weights: dict, stats: dict, label: str) -> LayerSetResult:
    t0 = time.perf_counter()
    out, bits, nw, notes = {}, {}, {}, {}
    for name, w in weights.items():
        q = fn(w, stats[name])
        out[name], bits[name], nw[name], notes[name] = q.weight, q.stored_bits, q.n_weights, q.notes
    return LayerSetResult(label, out, bits, nw, time.perf_counter() - t0, "; ".join(sorted(set(notes.values()))),
                          notes)


def ggml_imatrix_layers(weights: dict, stats: dict, type_name: str, layout: str) -> LayerSetResult:
    return _layers(lambda w, s: ggml_imatrix_quantize(w, s.importance, type_name, layout), weights, stats,
                   f"ggml {type_name} + imatrix ({layout})")


def ensure_llmcompressor(install: bool = True):
    """Return llmcompressor's ``quantize_weight`` and compressed-tensors' ``QuantizationArgs``,
    ``calculate_qparams``; install the pinned packages with --no-deps when missing."""
    missing = [spec for mod, spec in LLMCOMPRESSOR_SPECS.items() if importlib.util.find_spec(mod) is None]
    if missing:
        if not install:
            raise MissingDependency(f"missing {', '.join(missing)}; install with: python -m pip install --no-deps "
                                    + " ".join(missing))
        run_pip(["install", "--no-deps", *missing])
        importlib.invalidate_caches()
    try:
        from compressed_tensors.quantization import QuantizationArgs
        from compressed_tensors.quantization.utils import calculate_qparams
        from llmcompressor.modifiers.gptq.gptq_quantize import quantize_weight
    except Exception as exc:   # an incompatible release: one line, the anchor is skipped
        raise MissingDependency(f"llmcompressor's GPTQ does not load ({type(exc).__name__}: {exc})") from None
    return quantize_weight, QuantizationArgs, calculate_qparams


def gptq_int_quantize(w, hessian, bits: int, group_size: int) -> Quantized:
    """llmcompressor GPTQ on a uniform asymmetric INT grid (see the module doc)."""
    import torch

    quantize_weight, QuantizationArgs, calculate_qparams = ensure_llmcompressor()
    args = QuantizationArgs(num_bits=bits, type="int", symmetric=False, strategy="group", group_size=group_size)
    wt = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
    n, k = wt.shape
    lo = torch.stack([wt[:, i:i + group_size].amin(-1) for i in range(0, k, group_size)], 1)
    hi = torch.stack([wt[:, i:i + group_size].amax(-1) for i in range(0, k, group_size)], 1)
    scale, zero = calculate_qparams(lo, hi, args)
    scale = scale.to(torch.float16).to(torch.float32)           # stored as binary16
    h = torch.from_numpy(np.asarray(hessian, dtype=np.float32) * 2)   # GPTQ's 2·XᵀX/n (scale-free)
    q, _, _ = quantize_weight(wt[None].clone(), h[None].clone(), scale[None], zero[None], None, args, 128, 0.01)
    groups = scale.shape[1]
    storage = {"codes_packed": n * -(-k * bits // 8), "scales_f16": n * groups * 2, "zeros_f16": n * groups * 2}
    return Quantized(f"gptq_int{bits}_g{group_size}", q[0].numpy().astype(np.float32), storage,
                     f"llmcompressor GPTQ INT{bits} g{group_size} (asymmetric, min-max observer, damp 0.01)")


def gptq_int_layers(weights: dict, stats: dict, bits: int, group_size: int) -> LayerSetResult:
    """llmcompressor's per-column loop of small torch ops runs one thread: on 2 shared cores torch's second
    thread made it 15x slower (0.7 s vs 11.8 s for a 576x576 layer, measured)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _layers(lambda w, s: gptq_int_quantize(w, s.hessian, bits, group_size), weights, stats,
                       f"GPTQ INT{bits} g{group_size} (llmcompressor)")
    finally:
        torch.set_num_threads(threads)


# name -> callable(reference weights, calibration stats {layer: LayerStats}) -> LayerSetResult, and whether the
# row is evaluated on the held-out text too (the targets' peers). IQ3_S in the row layout is left out (time budget):
# SmolLM2's 576-wide rows fall back to IQ4_NL there, so it would be mostly an IQ4_NL row at 4.2 bpw.
CALIBRATED_ANCHORS = {
    "Q3_K + imatrix (flat blocks)": (lambda ref, st: ggml_imatrix_layers(ref, st, "Q3_K", "flat"), True),
    "Q3_K + imatrix (rows)": (lambda ref, st: ggml_imatrix_layers(ref, st, "Q3_K", "rows"), True),
    "IQ3_S + imatrix (flat blocks)": (lambda ref, st: ggml_imatrix_layers(ref, st, "IQ3_S", "flat"), True),
    "IQ3_XXS + imatrix (flat blocks)": (lambda ref, st: ggml_imatrix_layers(ref, st, "IQ3_XXS", "flat"), False),
    "Q2_K + imatrix (flat blocks)": (lambda ref, st: ggml_imatrix_layers(ref, st, "Q2_K", "flat"), False),
    "GPTQ INT3 g64": (lambda ref, st: gptq_int_layers(ref, st, 3, 64), True),
    "GPTQ INT3 g128": (lambda ref, st: gptq_int_layers(ref, st, 3, 128), True),
    "GPTQ INT4 g128": (lambda ref, st: gptq_int_layers(ref, st, 4, 128), False),
}
