"""Published-quantizer anchors run side by side with q35: HQQ and llama.cpp (ggml) formats.

Each anchor returns, per block linear layer, the dequantized float32 weight and the bits actually stored for it,
as a :class:`bench.baselines.LayerSetResult` (``.weights``, ``.stored_bits``, ``.bpw``, ``.per_layer_notes``).

HQQ (``hqq`` on PyPI, half-quadratic optimizer, no calibration), :func:`hqq_layers`:
  ``Quantizer.quantize(W, nbits, group_size=64, axis=1, optimize=True)`` on CPU -- HQQLinear's default
  settings. Stored: the bit-packed codes exactly as HQQ packs them (4-bit: two codes per uint8; 3-bit: ten codes
  per int32, the group-row count padded up to a multiple of 10) plus one float16 scale and one float16 zero per
  group of 64 (HQQLinear keeps them in the float16 compute dtype; zero not quantized). Dequantization
  ``(q - zero) * scale`` is evaluated in float32 from those float16 values.

llama.cpp / ggml (``llama-cpp-python`` built from its sdist, which compiles llama.cpp):
  * :func:`ggml_layers` -- ggml's own ``ggml_quantize_chunk`` (via ctypes on the package's ``libggml-base``)
    applied to each matrix, then ``gguf.quants.dequantize``. K-quants need rows that are a multiple of 256
    weights; SmolLM2's q/k/v/o/gate/up rows have 576 columns. ``layout="rows"`` follows llama.cpp's own
    fallback (``tensor_type_fallback`` in the vendored ``src/llama-quant.cpp``: Q3_K -> Q4_0, Q4_K -> Q5_0 for
    such rows), ``layout="flat"`` quantizes the row-major flattened matrix in 256-weight super-blocks (valid
    storage at the format's nominal bpw, sub-blocks of 16/32 never straddle a 576-wide row, but one super-block
    scale may span two rows, so ggml could not run matmuls on it as laid out: an upper-bound-quality anchor at
    3.4375 / 4.5 bpw).
  * :func:`llamacpp_file_layers` -- ``llama_model_quantize`` on the original GGUF (requantizing from its Q4_1,
    which dequantizes exactly to the float32 weights the model uses): file mixes such as ``Q3_K_S`` and
    ``Q4_K_M``, or ``pure=True`` (every tensor of the default type, with the same shape fallback). The block
    linears of the output file are dequantized with ``gguf`` (q/k rows un-permuted); every tensor's real type
    and byte size are recorded. Only block linears are swapped into the model (embeddings/norms stay float32).

Installation helpers (:func:`ensure_hqq`, :func:`ensure_llama_cpp`) install the pinned packages with
``--no-deps`` when missing; llama-cpp-python is compiled once into ``<cache>/wheels`` and reused later.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .baselines import LayerSetResult, Quantized, quantize_layers
from bench.data import AcquisitionError, MissingDependency, cache_dir, require, run_pip, sha256_file, smollm2_gguf

__all__ = ["HQQ_SPEC", "LLAMA_CPP_SPEC", "ensure_hqq", "ensure_llama_cpp", "hqq_quantize", "hqq_layers",
           "ggml_quantize", "ggml_layers", "llamacpp_file_layers", "gguf_block_linears", "result_row",
           "all_anchors", "LLAMA_FALLBACK", "ANCHORS"]

HQQ_SPEC = "hqq==0.2.8.post1"
LLAMA_CPP_VERSION = "0.3.36"
LLAMA_CPP_SPEC = f"llama-cpp-python=={LLAMA_CPP_VERSION}"
LLAMA_CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
                    "-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF")

# llama.cpp's tensor_type_fallback (vendored src/llama-quant.cpp of llama-cpp-python 0.3.36) for rows whose
# length is not a multiple of the type's block size. Used by ggml_layers(layout="rows"); llamacpp_file_layers
# reads the types llama.cpp actually chose from its output file instead.
LLAMA_FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
                  "IQ3_S": "IQ4_NL", "IQ3_XXS": "IQ4_NL", "IQ4_XS": "IQ4_NL"}


def _log(msg: str) -> None:
    print(f"[anchors] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# installation

def _pip_env(args: list[str], env: dict) -> None:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        run_pip(args)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ensure_hqq(install: bool = True):
    """Return ``hqq.core.quantize.Quantizer``; install ``hqq`` (no deps, no CUDA build) + ``termcolor`` if missing.
    The installed torch is never touched."""
    require("torch", "torch==2.13.0")
    missing = [(m, s) for m, s in (("hqq", HQQ_SPEC), ("termcolor", "termcolor"))
               if importlib.util.find_spec(m) is None]
    if missing:
        if not install:
            raise MissingDependency(f"missing {', '.join(m for m, _ in missing)}; install with: DISABLE_CUDA=1 "
                                    f"{sys.executable} -m pip install --no-deps "
                                    f"{' '.join(s for _, s in missing)}")
        for _, spec in missing:
            _log(f"installing {spec} (--no-deps)")
            _pip_env(["install", "--no-deps", spec], {"DISABLE_CUDA": "1"})
        importlib.invalidate_caches()
    try:
        from hqq.core.quantize import Quantizer
    except ImportError as e:
        raise MissingDependency(f"hqq is installed but does not import ({e}); reinstall with: DISABLE_CUDA=1 "
                                f"{sys.executable} -m pip install --no-deps {HQQ_SPEC} termcolor") from None
    return Quantizer


def _llama_wheel_dir() -> Path:
    d = cache_dir() / "wheels"
    d.mkdir(parents=True, exist_ok=True)
    return d


def ensure_llama_cpp(install: bool = True, build: bool = True):
    """Return the low-level ``llama_cpp.llama_cpp`` bindings. When the package is missing: install the wheel
    cached in ``<cache>/wheels``; when there is none and ``build``, compile it once from the sdist with
    ``pip wheel`` (several minutes on 2 cores; the build time is recorded in ``wheels/build.json``)."""
    if importlib.util.find_spec("llama_cpp") is None:
        if not install:
            raise MissingDependency(f"missing package 'llama_cpp'; build it with: CMAKE_ARGS='{LLAMA_CMAKE_ARGS}' "
                                    f"{sys.executable} -m pip install --no-binary llama-cpp-python {LLAMA_CPP_SPEC}")
        wd = _llama_wheel_dir()
        wheels = sorted(wd.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
        if not wheels:
            if not build:
                raise MissingDependency(f"no cached llama-cpp-python wheel in {wd} and build=False")
            _log(f"compiling {LLAMA_CPP_SPEC} from its sdist into {wd} (takes several minutes)")
            t0 = time.time()
            _pip_env(["wheel", "--no-deps", "--no-binary", "llama-cpp-python", LLAMA_CPP_SPEC, "-w", str(wd)],
                     {"CMAKE_ARGS": LLAMA_CMAKE_ARGS, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)})
            secs = time.time() - t0
            wheels = sorted(wd.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
            if not wheels:
                raise AcquisitionError(f"pip wheel {LLAMA_CPP_SPEC} produced no wheel in {wd}")
            (wd / "build.json").write_text(json.dumps({"spec": LLAMA_CPP_SPEC, "cmake_args": LLAMA_CMAKE_ARGS,
                                                       "seconds": secs, "wheel": wheels[-1].name,
                                                       "sha256": sha256_file(wheels[-1])}, indent=1))
        _log(f"installing cached wheel {wheels[-1].name}")
        run_pip(["install", "--no-deps", str(wheels[-1])])
        importlib.invalidate_caches()
    # the package's own runtime deps (small, pure Python); installed without their dependencies
    for mod, spec in (("diskcache", "diskcache"), ("jinja2", "jinja2"), ("typing_extensions", "typing-extensions")):
        if importlib.util.find_spec(mod) is None:
            if not install:
                raise MissingDependency(f"llama_cpp needs '{mod}'; install with: {sys.executable} -m pip install "
                                        f"--no-deps {spec}")
            run_pip(["install", "--no-deps", spec])
            importlib.invalidate_caches()
    try:
        import llama_cpp.llama_cpp as L
    except (ImportError, OSError) as e:
        raise MissingDependency(f"llama_cpp does not load ({e.__class__.__name__}: {e})") from None
    return L


_GGML = None


def _ggml():
    """ctypes handle on the package's libggml-base with ggml_quantize_chunk & co. declared."""
    global _GGML
    if _GGML is not None:
        return _GGML
    L = ensure_llama_cpp()
    libdir = Path(L.__file__).parent / "lib"
    cands = sorted(libdir.glob("libggml-base.so*")) + sorted(libdir.glob("libggml-base.dylib"))
    if not cands:
        raise MissingDependency(f"libggml-base not found in {libdir}")
    lib = ctypes.CDLL(str(cands[0]))
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
    lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_row_size.restype = ctypes.c_size_t
    _GGML = lib
    return lib


# ---------------------------------------------------------------------------------------------------------
# HQQ

def hqq_quantize(w, nbits: int, group_size: int = 64, optimize: bool = True) -> Quantized:
    """HQQ quantize + dequantize one matrix (see module doc for what is stored and counted)."""
    torch = require("torch", "torch==2.13.0")
    Quantizer = ensure_hqq()
    w = np.ascontiguousarray(w, dtype=np.float32)
    if w.size % group_size:
        raise ValueError(f"HQQ needs numel divisible by group_size; shape {w.shape}, group {group_size}")
    W = torch.from_numpy(w.copy())
    with contextlib.redirect_stdout(sys.stderr):
        Wq, meta = Quantizer.quantize(W, nbits=nbits, channel_wise=True, group_size=group_size, optimize=optimize,
                                      round_zero=False, axis=1, bitpack=True, device="cpu")
    scale16 = meta["scale"].to(torch.float16)
    zero16 = meta["zero"].to(torch.float16)
    meta = dict(meta, scale=scale16.float(), zero=zero16.float(), compute_dtype=torch.float32)
    deq = Quantizer.dequantize(Wq, meta).float().numpy().reshape(w.shape).astype(np.float32)
    storage = {"codes_packed": Wq.numel() * Wq.element_size(), "scales_f16": scale16.numel() * 2,
               "zeros_f16": zero16.numel() * 2}
    return Quantized(f"hqq{nbits}_g{group_size}", deq, storage,
                     f"HQQ {nbits}-bit g{group_size} axis=1 optimize={optimize}: packed codes "
                     f"({meta['packing']}) + float16 scale + float16 zero per group")


def hqq_layers(weights: dict, nbits: int, group_size: int = 64) -> LayerSetResult:
    """HQQ on every layer of ``weights`` (name -> float32 [N, K])."""
    return quantize_layers(lambda w: hqq_quantize(w, nbits, group_size), weights, f"HQQ {nbits}-bit g{group_size}")


# ---------------------------------------------------------------------------------------------------------
# ggml quantizers, direct

def _gguf():
    return require("gguf", "gguf>=0.10")


def ggml_quantize(w, type_name: str, layout: str = "rows") -> Quantized:
    """Quantize one matrix with ggml's ``ggml_quantize_chunk`` (no importance matrix) and dequantize it with
    ``gguf.quants.dequantize``. ``layout``: ``"rows"`` (ggml's layout; rows must be a multiple of the block size,
    else llama.cpp's fallback type from :data:`LLAMA_FALLBACK` is used) or ``"flat"`` (row-major flattened
    matrix cut into blocks; needs ``N*K`` divisible by the block size)."""
    gguf = _gguf()
    lib = _ggml()
    w = np.ascontiguousarray(w, dtype=np.float32)
    n, k = w.shape
    used = type_name
    qtype = gguf.GGMLQuantizationType[type_name]
    blck, _ = gguf.GGML_QUANT_SIZES[qtype]
    if layout == "rows":
        if k % blck:
            used = LLAMA_FALLBACK.get(type_name)
            if used is None:
                raise ValueError(f"{type_name}: row length {k} not a multiple of {blck} and no fallback known")
            qtype = gguf.GGMLQuantizationType[used]
            blck, _ = gguf.GGML_QUANT_SIZES[qtype]
            if k % blck:
                raise ValueError(f"fallback {used} also needs rows divisible by {blck}; got {k}")
        nrows, per_row = n, k
    elif layout == "flat":
        if w.size % blck:
            raise ValueError(f"{type_name} flat layout needs N*K divisible by {blck}; got {w.shape}")
        nrows, per_row = w.size // blck, blck
    else:
        raise ValueError(f"layout must be 'rows' or 'flat', got {layout!r}")
    if lib.ggml_quantize_requires_imatrix(int(qtype)):
        raise ValueError(f"{used} requires an importance matrix")
    row_size = lib.ggml_row_size(int(qtype), per_row)
    dst = np.zeros(nrows * row_size, dtype=np.uint8)
    size = lib.ggml_quantize_chunk(int(qtype), w.ctypes.data, dst.ctypes.data, 0, nrows, per_row, None)
    if size != dst.nbytes:
        raise RuntimeError(f"ggml_quantize_chunk wrote {size} bytes, expected {dst.nbytes}")
    deq = gguf.quants.dequantize(dst.reshape(nrows, row_size), qtype).astype(np.float32).reshape(n, k)
    note = (f"{used} ({'ggml rows' if layout == 'rows' else 'flattened 256-blocks'})"
            + (f", fallback from {type_name} for {k}-wide rows" if used != type_name else ""))
    return Quantized(f"ggml_{type_name}_{layout}", deq, {f"{used}_blocks": int(size)}, note)


def ggml_layers(weights: dict, type_name: str, layout: str = "rows") -> LayerSetResult:
    """:func:`ggml_quantize` on every layer; ``per_layer_notes`` give each layer's actual type."""
    label = f"ggml {type_name} pure ({'llama.cpp fallback for short rows' if layout == 'rows' else 'flat'})"
    return quantize_layers(lambda w: ggml_quantize(w, type_name, layout), weights, label)


# ---------------------------------------------------------------------------------------------------------
# llama.cpp file mixes

@contextlib.contextmanager
def _stderr_to(path: Path):
    """Redirect the process's fd 2 (C-level llama.cpp logging) to ``path``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


_HF_KIND = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj"}


def _field(reader, key):
    f = reader.fields[key]
    return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]][0]


def gguf_block_linears(path, names=None) -> dict:
    """Dequantize the block linears of a LLaMA GGUF file: ``{transformers module name: (float32 [out, in],
    ggml type name, stored bytes)}``; q/k rows are un-permuted (llama.cpp stores them in rotary-interleaved
    order). ``names`` restricts the result (e.g. to the keys of :func:`bench.data.block_linear_weights`)."""
    gguf = _gguf()
    reader = gguf.GGUFReader(str(path))
    arch = _field(reader, "general.architecture")
    heads = int(_field(reader, f"{arch}.attention.head_count"))
    kv_heads = int(_field(reader, f"{arch}.attention.head_count_kv"))
    out = {}
    for t in reader.tensors:
        parts = t.name.split(".")
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in _HF_KIND:
            continue
        name = f"model.layers.{parts[1]}.{_HF_KIND[parts[2]]}"
        if names is not None and name not in names:
            continue
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if parts[2] in ("attn_q", "attn_k"):
            h = heads if parts[2] == "attn_q" else kv_heads
            a = a.reshape(h, shape[0] // h // 2, 2, shape[1]).swapaxes(1, 2).reshape(shape)
        out[name] = (np.ascontiguousarray(a), t.tensor_type.name, int(t.n_bytes))
    return out


def llamacpp_file_layers(ftype: str, reference: dict | None = None, pure: bool = False, src_gguf=None,
                         nthread: int = 2) -> LayerSetResult:
    """Quantize the original GGUF with ``llama_model_quantize`` to ``ftype`` (a file mix such as ``"Q3_K_S"``,
    ``"Q4_K_M"``; with ``pure=True`` every tensor gets the mix's default type, e.g. ``"Q3_K_S"`` -> Q3_K, with
    llama.cpp's shape fallback), then dequantize the output file's block linears with ``gguf``.

    ``reference`` (``{module name: float32 weight}``, e.g. :func:`bench.data.block_linear_weights`) restricts and
    shape-checks the layers. Weights are keyed by transformers module names. Each layer's bits are the bytes of
    its tensor in the output file; ``per_layer_notes`` hold each layer's ggml type."""
    L = ensure_llama_cpp()
    src = Path(src_gguf) if src_gguf else smollm2_gguf()
    key = f"LLAMA_FTYPE_MOSTLY_{ftype}"
    if not hasattr(L, key):
        raise ValueError(f"unknown llama.cpp ftype {ftype!r}")
    work = Path(tempfile.mkdtemp(prefix="q35_llamacpp_", dir=cache_dir()))
    out = work / f"out-{ftype}{'-pure' if pure else ''}.gguf"
    logf = cache_dir() / "logs" / f"llama_quantize_{ftype}{'_pure' if pure else ''}.log"
    logf.parent.mkdir(parents=True, exist_ok=True)
    params = L.llama_model_quantize_default_params()
    params.nthread = nthread
    params.ftype = getattr(L, key)
    params.allow_requantize = True     # the source is Q4_1; llama.cpp dequantizes it exactly to float32 first
    params.pure = bool(pure)
    t0 = time.perf_counter()
    L.llama_backend_init()
    with _stderr_to(logf):
        rc = L.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params))
    try:
        if rc != 0 or not out.is_file():
            raise RuntimeError(f"llama_model_quantize({ftype}, pure={pure}) failed with {rc}; see {logf}")
        layers = gguf_block_linears(out, None if reference is None else set(reference))
        file_bytes = out.stat().st_size
    finally:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    qsecs = time.perf_counter() - t0
    if reference is not None:
        missing = set(reference) - set(layers)
        if missing:
            raise RuntimeError(f"{len(missing)} reference layers not in the llama.cpp output, e.g. {sorted(missing)[0]}")
        for name, (a, _, _) in layers.items():
            if a.shape != np.shape(reference[name]):
                raise RuntimeError(f"{name}: GGUF tensor shape {a.shape} != reference {np.shape(reference[name])}")
        order = list(reference)
    else:
        order = sorted(layers, key=lambda n: (int(n.split(".")[2]), n))
    weights = {n: layers[n][0] for n in order}
    bits = {n: 8 * layers[n][2] for n in order}
    nw = {n: int(layers[n][0].size) for n in order}
    types = {n: layers[n][1] for n in order}
    counts = {}
    for name, ty in types.items():
        k = f"{name.split('.')[-1]}:{ty}"
        counts[k] = counts.get(k, 0) + 1
    summary = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
    label = f"llama.cpp {ftype}{' pure' if pure else ''} (llama_model_quantize)"
    return LayerSetResult(label, weights, bits, nw, qsecs,
                          notes=f"types per block linear: {summary}; whole output file {file_bytes} bytes "
                                f"(embeddings etc. not used here); llama.cpp log {logf}",
                          per_layer_notes=types)


def result_row(res: LayerSetResult, reference: dict) -> dict:
    """A :class:`LayerSetResult` as the dict bench.tables consumes: weights, bpw, rel_rmse, max_abs_err,
    quantize_s, notes (+ stored_bits, n_weights, method, layer_types)."""
    sq_err = sq_ref = 0.0
    max_err = 0.0
    for name, w in reference.items():
        d = res.weights[name].astype(np.float64) - np.asarray(w, dtype=np.float64)
        sq_err += float((d * d).sum())
        sq_ref += float((np.asarray(w, dtype=np.float64) ** 2).sum())
        max_err = max(max_err, float(np.abs(d).max()))
    return {"weights": res.weights, "bpw": res.bpw, "rel_rmse": math.sqrt(sq_err / sq_ref),
            "max_abs_err": max_err, "quantize_s": res.seconds, "notes": res.notes, "method": res.method,
            "stored_bits": int(sum(res.stored_bits.values())), "n_weights": int(sum(res.n_weights.values())),
            "layer_types": dict(res.per_layer_notes)}


# name -> callable(reference weights) -> LayerSetResult. "rows" = ggml's row layout with llama.cpp's own
# fallback types for rows that are not a multiple of 256; "flat" = every layer in the nominal k-quant (see doc).
ANCHORS = {
    "HQQ 3-bit g64": lambda ref: hqq_layers(ref, 3, 64),
    "HQQ 4-bit g64": lambda ref: hqq_layers(ref, 4, 64),
    "Q3_K pure (rows, no imatrix)": lambda ref: ggml_layers(ref, "Q3_K", "rows"),
    "Q4_K pure (rows, no imatrix)": lambda ref: ggml_layers(ref, "Q4_K", "rows"),
    "Q3_K (flat blocks, no imatrix)": lambda ref: ggml_layers(ref, "Q3_K", "flat"),
    "Q4_K (flat blocks, no imatrix)": lambda ref: ggml_layers(ref, "Q4_K", "flat"),
    "llama.cpp Q3_K_S": lambda ref: llamacpp_file_layers("Q3_K_S", ref),
    "llama.cpp Q4_K_M": lambda ref: llamacpp_file_layers("Q4_K_M", ref),
}


def all_anchors(block_weights: dict, include=None) -> dict:
    """Run the anchors of :data:`ANCHORS` (or the names in ``include``) on ``block_weights``
    (``{module name: float32 [out, in]}`` from :func:`bench.data.block_linear_weights`).
    Returns ``{anchor name: result_row(...)}`` (see :func:`result_row`). An anchor whose package cannot be
    installed (or built) is reported on stderr in one line and skipped."""
    out = {}
    for name in (include or ANCHORS):
        try:
            res = ANCHORS[name](block_weights)
        except (MissingDependency, AcquisitionError) as e:
            _log(f"skipping {name}: {e}")
            continue
        out[name] = result_row(res, block_weights)
    return out
