"""The GEMV methods bench.gemv_bench times, on one weight matrix, each checked against a float64 product first.

Every method is a zero-argument call that reads the next of several copies of its own weights, enough copies to
exceed twice the last-level cache, so each call streams its weights from DRAM as a decode step does. Each method
carries the bytes it must read (its weights as the kernel reads them, plus x and y) and its thread count, from
which the benchmark derives its bandwidth bound.

q35 weights are quantized in the deployed mode (compact scales, group 192, importance-weighted search with a
random positive importance vector: the speed does not depend on the importance values); the kernel reads the
packed codes and float32 scales/zeros per group (expanded once by ``q35.kernel_weights``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

GGML_TYPES = ("Q3_K", "Q4_0", "Q4_K")
Q35_GROUP = 192
A8_1 = "q35 A8 (1 thread)"
FLOAT_FUSED = "q35 float fused (1 thread)"


def float_all_name(threads: int) -> str:
    return f"q35 float fused ({threads} threads)"
NUMPY = "numpy fp32 (OpenBLAS, default threads)"
TORCH_1 = "torch fp32 (1 thread)"


def a8_all_name(threads: int) -> str:
    return f"q35 A8 ({threads} threads)"


def torch_all_name(threads: int) -> str:
    return f"torch fp32 ({threads} threads, default)"


def ggml_name(type_name: str) -> str:
    return f"ggml {type_name} (1 thread)"


@dataclass
class Method:
    name: str
    call: Callable[[], np.ndarray]
    bytes_read: int        # weights as the kernel reads them + x + y
    threads: int           # for the bandwidth bound: 1 or all usable CPUs
    weight_bytes: int


def cycle(copies: list):
    """A function returning the next copy on every call (round robin)."""
    state = {"i": -1}

    def nxt():
        state["i"] = (state["i"] + 1) % len(copies)
        return copies[state["i"]]
    return nxt


def n_copies(nbytes: int, llc_bytes: int) -> int:
    """Copies of an nbytes array needed to exceed twice the last-level cache (at least 2)."""
    return max(2, math.ceil(2 * llc_bytes / max(nbytes, 1)))


def q35_weights(w: np.ndarray, seed: int = 0):
    """The deployed q35 quantization of w (compact g192, importance-weighted) and its kernel layout."""
    import q35

    imp = np.random.default_rng(seed).random(w.shape[1], dtype=np.float32) + np.float32(0.05)
    qt = q35.quantize(w, Q35_GROUP, scale_format="compact", importance=imp)
    kw = q35.kernel_weights(qt)
    return qt, kw, kw.packed.nbytes + kw.scales.nbytes + kw.zeros.nbytes


def kw_copies(kw, count: int) -> list:
    return [kw] + [kw._replace(packed=kw.packed.copy(order="K"), scales=kw.scales.copy(order="K"),
                               zeros=kw.zeros.copy(order="K")) for _ in range(count - 1)]


def q35_methods(kw, q_bytes: int, x: np.ndarray, llc: int, all_threads: int) -> list[Method]:
    import q35

    io = x.nbytes + 4 * kw.shape[0]
    nxt = cycle(kw_copies(kw, n_copies(q_bytes, llc)))
    return [Method(A8_1, lambda: q35.matmul_kernel(x, nxt(), activations="a8", threads=1), q_bytes + io, 1, q_bytes),
            Method(a8_all_name(all_threads),
                   lambda: q35.matmul_kernel(x, nxt(), activations="a8", threads=all_threads), q_bytes + io,
                   all_threads, q_bytes),
            Method(FLOAT_FUSED, lambda: q35.matmul_kernel(x, nxt(), threads=1), q_bytes + io, 1, q_bytes),
            Method(float_all_name(all_threads), lambda: q35.matmul_kernel(x, nxt(), threads=all_threads),
                   q_bytes + io, all_threads, q_bytes)]


def fp32_methods(w: np.ndarray, x: np.ndarray, llc: int, torch_threads: int, all_threads: int) -> list[Method]:
    import torch

    copies = [w] + [w.copy() for _ in range(n_copies(w.nbytes, llc) - 1)]
    tcopies = [torch.from_numpy(c) for c in copies]
    nxt_np, nxt_t = cycle(copies), cycle(tcopies)
    xt = torch.from_numpy(x)
    io = x.nbytes + 4 * w.shape[0]

    def torch_call(threads: int):
        def f():
            old = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return torch.nn.functional.linear(xt, nxt_t()).numpy()
            finally:
                torch.set_num_threads(old)
        return f

    return [Method(NUMPY, lambda: nxt_np() @ x, w.nbytes + io, all_threads, w.nbytes),
            Method(torch_all_name(torch_threads), torch_call(torch_threads), w.nbytes + io, torch_threads, w.nbytes),
            Method(TORCH_1, torch_call(1), w.nbytes + io, 1, w.nbytes)]


def ggml_methods(w: np.ndarray, x: np.ndarray, llc: int, types=GGML_TYPES) -> tuple[list[Method], dict]:
    """ggml's GEMV per type (1 thread) and each type's dequantized weights (for the check)."""
    from bench import ggml_gemv

    g = ggml_gemv.load()
    out, deq = [], {}
    n, k = w.shape
    for t in types:
        wq = g.quantize(w, t)
        deq[t] = g.dequantize(wq, t, k)
        nxt = cycle([wq] + [wq.copy() for _ in range(n_copies(wq.nbytes, llc) - 1)])
        xq, y = g.x_scratch(t, k), np.empty(n, np.float32)
        out.append(Method(ggml_name(t), lambda t=t, nxt=nxt, xq=xq, y=y: g.gemv(nxt(), t, x, xq, y),
                          wq.nbytes + x.nbytes + xq.nbytes + 4 * n, ggml_gemv.GEMV_THREADS, wq.nbytes))
    return out, deq


# relative tolerance (max |error| / max |y_ref|) against the float64 product of each method's own weights
TOL_EXACT_FLOAT = 1e-4      # float32 accumulation of a float32 (or dequantized) matrix
TOL_INT8_ACTIVATIONS = 5e-2  # activations rounded to int8 per block (q35 A8, ggml's Q8_K / Q8_0)


def check(methods: list[Method], x: np.ndarray, w: np.ndarray, q35_deq: np.ndarray, ggml_deq: dict) -> dict:
    """Run every method once and compare with the float64 product of the weights it holds; raise on a mismatch.
    Also: every A8 thread count gives the same bits. Returns name -> relative error."""
    x64 = x.astype(np.float64)
    ref_fp32 = w.astype(np.float64) @ x64
    ref_q35 = q35_deq.astype(np.float64) @ x64
    errs, a8 = {}, {}
    for m in methods:
        y = np.asarray(m.call(), dtype=np.float64).reshape(-1)
        if m.name.startswith("ggml "):
            ref, tol = ggml_deq[m.name.split()[1]].astype(np.float64) @ x64, TOL_INT8_ACTIVATIONS
        elif m.name.startswith("q35 A8"):
            ref, tol = ref_q35, TOL_INT8_ACTIVATIONS
            a8[m.name] = y
        else:
            ref, tol = (ref_q35 if m.name.startswith("q35") else ref_fp32), TOL_EXACT_FLOAT
        errs[m.name] = float(np.max(np.abs(y - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
        if not errs[m.name] <= tol:
            raise RuntimeError(f"{m.name}: result off by {errs[m.name]:.2e} (relative, tolerance {tol:.0e}) on "
                               f"{w.shape[0]}x{w.shape[1]}: refusing to time a broken method")
    ys = list(a8.values())
    if any(not np.array_equal(ys[0], y) for y in ys[1:]):
        raise RuntimeError("q35 A8 results differ between thread counts (the kernel promises identical bits)")
    return errs
