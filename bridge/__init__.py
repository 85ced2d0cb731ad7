"""The fast path: the pyref API (SPEC.md) computed by the Fortran kernels.

Every input is validated by pyref.validate (the rules of SPEC §7) before it reaches Fortran; arrays are
handed over as Fortran-ordered views of C-ordered data (see fortran/q35_kernels.f90), never with a wrong
layout. The extension is built on first import when missing or stale (`make build` does it ahead of time).
"""
from __future__ import annotations

import importlib.util
import sys

import numpy as np

import pyref
from pyref.q35 import (DEFAULT_GROUP_SIZE, QTensor, all_in_bits_per_weight,  # noqa: F401
                       encoded_nbytes, num_groups, payload_bytes_per_row)
from pyref.validate import check_codes, check_packed, check_qtensor, check_x

from . import build as _build

__all__ = ["QTensor", "quantize", "dequantize", "matmul", "pack_codes", "unpack_codes",
           "all_in_bits_per_weight", "encoded_nbytes", "DEFAULT_GROUP_SIZE", "kernel_constants"]


def _load_extension() -> "_Kernels":
    if not _build.is_current():
        print(f"q35: building the {_build.variant()} Fortran kernels (first use)...", file=sys.stderr)
        _build.build()
    so = sorted(_build.ext_dir().glob(f"{_build.MODULE}*.so"))[0]
    spec = importlib.util.spec_from_file_location(_build.MODULE, so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return _Kernels(mod)


class _Kernels:
    """The wrapped routines of every Fortran module, under one namespace."""

    def __init__(self, mod):
        for module in (mod.q35_kernels, mod.q35_matmul):
            for name in _build.WRAPPED:
                if hasattr(module, name):
                    setattr(self, name, getattr(module, name))


_k = _load_extension()

_CONSTANT_NAMES = ["LO4", "HI4", "LO3", "HI3", "PAIR_BITS", "PAIRS_PER_BLOCK", "BLOCK_BYTES", "WEIGHTS_PER_BLOCK"]


def kernel_constants() -> dict[str, int]:
    """The format constants compiled into the Fortran kernels."""
    return dict(zip(_CONSTANT_NAMES, (int(v) for v in _k.q35_constants())))


_mismatch = {n: v for n, v in kernel_constants().items() if getattr(pyref.q35, n) != v}
if _mismatch:  # a kernel built from other sources than the reference describes: refuse to run it
    raise ImportError(f"Fortran kernel constants disagree with pyref: {_mismatch}")


def _check_info(info: int, kernel: str) -> None:
    if info == 1:
        raise ValueError(f"{kernel}: inconsistent sizes reached the kernel (bridge validation bug)")
    if info == 2:
        raise ValueError(f"{kernel}: non-finite or out-of-range value reached the kernel")
    if info != 0:
        raise RuntimeError(f"{kernel}: unknown status {info}")


def _f16_exact(a: np.ndarray, what: str) -> np.ndarray:
    h = a.astype(np.float16)
    if not np.array_equal(h.astype(np.float32), a):
        raise RuntimeError(f"kernel returned {what} that are not binary16 values (kernel bug)")
    return h


def quantize(weight, group_size: int | None = DEFAULT_GROUP_SIZE, *, scale_format: str = "f16",
             importance=None, permute: bool = False) -> QTensor:
    """SPEC §3 ("f16": min-max grid) or §8 ("compact": importance-weighted search); see pyref.quantize."""
    w, g, imp, perm = pyref.q35.prepare_quantize(weight, group_size, scale_format, importance, permute)
    n_rows, k = w.shape
    ng, p = num_groups(k, g), payload_bytes_per_row(k)
    if scale_format == "f16":
        packed, scales, zeros, info = _k.q35_quantize(w.T, g, ng, p)
        _check_info(info, "q35_quantize")
        return QTensor(np.ascontiguousarray(packed.T).view(np.uint8), _f16_exact(scales.T, "scales"),
                       _f16_exact(zeros.T, "zeros"), (n_rows, k), g, perm=perm)
    packed, row_scales, group_codes, info = _k.q35_quantize_compact(w.T, imp, g, ng, p)
    _check_info(info, "q35_quantize_compact")
    rs, gc = _f16_exact(row_scales, "row scales"), np.ascontiguousarray(group_codes.T).astype(np.uint16)
    scales, zeros = pyref.q35.expand_compact(rs, gc)
    return QTensor(np.ascontiguousarray(packed.T).view(np.uint8), scales, zeros, (n_rows, k), g, "compact", rs, gc,
                   perm)


def _params(qt: QTensor):
    check_qtensor(qt)
    return (qt.packed.view(np.int8).T, np.ascontiguousarray(qt.scales, dtype=np.float32).T,
            np.ascontiguousarray(qt.zeros, dtype=np.float32).T)


def dequantize(qt: QTensor) -> np.ndarray:
    packed, scales, zeros = _params(qt)
    w, info = _k.q35_dequantize(packed, scales, zeros, qt.shape[1], qt.group_size)
    _check_info(info, "q35_dequantize")
    return pyref.q35.unpermute_columns(np.ascontiguousarray(w.T), qt.perm)


def matmul(x, qt: QTensor) -> np.ndarray:
    """y = x @ dequantize(qt).T for x of shape [K] or [B, K], through the fused kernel."""
    packed, scales, zeros = _params(qt)
    xa = check_x(x, qt.shape[1])
    if qt.perm is not None:
        xa = np.ascontiguousarray(xa[..., qt.perm.astype(np.intp)])
    if xa.ndim == 1:
        y, info = _k.q35_gemv(xa, packed, scales, zeros, qt.group_size)
        _check_info(info, "q35_gemv")
        return y
    y, info = _k.q35_gemm(xa.T, packed, scales, zeros, qt.group_size)
    _check_info(info, "q35_gemm")
    return np.ascontiguousarray(y.T)


def pack_codes(codes) -> np.ndarray:
    arr = check_codes(codes)
    rows = arr.reshape(-1, arr.shape[-1]).astype(np.int32)
    packed, info = _k.q35_pack(rows.T, payload_bytes_per_row(arr.shape[-1]))
    _check_info(info, "q35_pack")
    return np.ascontiguousarray(packed.T).view(np.uint8).reshape(arr.shape[:-1] + (-1,))


def unpack_codes(packed, n: int) -> np.ndarray:
    arr = check_packed(packed, n)
    rows = arr.reshape(-1, arr.shape[-1])
    codes, info = _k.q35_unpack(rows.view(np.int8).T, int(n))
    _check_info(info, "q35_unpack")
    return np.ascontiguousarray(codes.T).astype(np.uint8).reshape(arr.shape[:-1] + (int(n),))
