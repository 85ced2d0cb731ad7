"""ggml's own CPU quantizers and GEMV (the anchor for q35's kernel), called through llama-cpp-python's libraries.

* :func:`load` compiles ``bench/csrc/ggml_gemv.c`` with gcc into the q35 cache (once per source and library
  directory; never committed as a binary), links it to llama-cpp-python's ``libggml-cpu``/``libggml-base`` and
  returns a :class:`Ggml` handle.
* :meth:`Ggml.quantize` is ``ggml_quantize_chunk`` (optionally with an importance matrix, as llama-quantize's
  ``--imatrix`` passes it: one float per input column); :meth:`Ggml.dequantize` is gguf's reference decoder.
* :meth:`Ggml.gemv` runs the whole GEMV in C: the activation through the type's ``from_float`` into its
  ``vec_dot_type`` (Q8_K for the k-quants, Q8_0 for Q4_0), then ``vec_dot`` on every row, in one thread. This is
  ggml's plain CPU path (``ggml_compute_forward_mul_mat`` with one thread, no repacked ``CPU_REPACK`` buffers).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).resolve().parent / "csrc" / "ggml_gemv.c"
GEMV_THREADS = 1     # the C loop is serial: ggml's rows compare with q35's one-thread rows

_P, _I64 = ctypes.c_void_p, ctypes.c_int64


def library_dir() -> Path:
    """The folder holding llama-cpp-python's libggml-cpu / libggml-base (installing the package if missing)."""
    from bench.anchors import ensure_llama_cpp

    d = Path(ensure_llama_cpp().__file__).resolve().parent / "lib"
    for name in ("libggml-cpu.so", "libggml-base.so"):
        if not (d / name).exists():
            raise FileNotFoundError(f"{name} not found in {d}: llama-cpp-python was built without the CPU backend")
    return d


def build(libdir: Path | None = None, out_dir: Path | None = None) -> Path:
    """Compile the C loop (gcc -O2) into ``<q35 cache>/bench/ggml_gemv-<hash>.so``; reused while the source and the
    library folder are unchanged."""
    from bench.data import cache_dir

    libdir = libdir or library_dir()
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise FileNotFoundError("no C compiler (gcc/cc) found: install gcc to build the ggml GEMV loop")
    key = hashlib.sha256(SOURCE.read_bytes() + str(libdir).encode()).hexdigest()[:16]
    out_dir = out_dir or cache_dir() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    so = out_dir / f"ggml_gemv-{key}.so"
    if not so.exists():
        tmp = so.with_suffix(f".{os.getpid()}.tmp")
        cmd = [cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE), f"-L{libdir}", "-l:libggml-cpu.so",
               "-l:libggml-base.so", f"-Wl,-rpath,{libdir}"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"building {SOURCE.name} failed:\n{' '.join(cmd)}\n{res.stderr}")
        os.replace(tmp, so)
    return so


class Ggml:
    """ctypes handle on the compiled loop and on libggml-base's quantizer."""

    def __init__(self, so: Path, libdir: Path):
        self.path = so
        self.base = ctypes.CDLL(str(libdir / "libggml-base.so"))
        self.lib = ctypes.CDLL(str(so))
        self.base.ggml_quantize_chunk.argtypes = [ctypes.c_int, _P, _P, _I64, _I64, _I64, _P]
        self.base.ggml_quantize_chunk.restype = ctypes.c_size_t
        self.base.ggml_row_size.argtypes = [ctypes.c_int, _I64]
        self.base.ggml_row_size.restype = ctypes.c_size_t
        self.base.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
        self.base.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
        self.lib.q35b_vec_dot_type.argtypes = [ctypes.c_int]
        self.lib.q35b_x_bytes.argtypes = [ctypes.c_int, _I64]
        self.lib.q35b_x_bytes.restype = ctypes.c_size_t
        self.lib.q35b_gemv.argtypes = [ctypes.c_int, _I64, _I64, _P, _P, _P, _P]
        self.lib.q35b_init()

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def type_id(name: str) -> int:
        import gguf

        return int(gguf.GGMLQuantizationType[name])

    @staticmethod
    def block_size(name: str) -> int:
        import gguf

        return gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]][0]

    def row_bytes(self, name: str, k: int) -> int:
        return int(self.base.ggml_row_size(self.type_id(name), k))

    def vec_dot_type(self, name: str) -> str:
        import gguf

        return gguf.GGMLQuantizationType(self.lib.q35b_vec_dot_type(self.type_id(name))).name

    def quantize(self, w: np.ndarray, name: str, imatrix: np.ndarray | None = None) -> np.ndarray:
        """``ggml_quantize_chunk`` of float32 w[N, K] (K a multiple of the type's block): uint8[N, row bytes].
        ``imatrix``: float32[K] importance per input column (None: ggml's unweighted quantizer)."""
        t = self.type_id(name)
        w = np.ascontiguousarray(w, dtype=np.float32)
        n, k = w.shape
        if k % self.block_size(name):
            raise ValueError(f"{name}: rows of {k} columns are not a multiple of its {self.block_size(name)}-block")
        if imatrix is None and self.base.ggml_quantize_requires_imatrix(t):
            raise ValueError(f"{name} requires an importance matrix")
        imp = None if imatrix is None else np.ascontiguousarray(imatrix, dtype=np.float32)
        if imp is not None and imp.shape != (k,):
            raise ValueError(f"imatrix must have one value per column ({k}), got shape {imp.shape}")
        dst = np.empty((n, self.row_bytes(name, k)), np.uint8)
        size = self.base.ggml_quantize_chunk(t, w.ctypes.data, dst.ctypes.data, 0, n, k,
                                             None if imp is None else imp.ctypes.data)
        if size != dst.nbytes:
            raise RuntimeError(f"ggml_quantize_chunk({name}) wrote {size} bytes, expected {dst.nbytes}")
        return dst

    @staticmethod
    def dequantize(wq: np.ndarray, name: str, k: int) -> np.ndarray:
        """gguf's reference decoder: float32[N, K]."""
        import gguf

        return gguf.quants.dequantize(wq, gguf.GGMLQuantizationType[name]).astype(np.float32).reshape(-1, k)

    def x_scratch(self, name: str, k: int) -> np.ndarray:
        """The buffer :meth:`gemv` quantizes the activation into (reuse it across calls)."""
        return np.empty(max(int(self.lib.q35b_x_bytes(self.type_id(name), k)), 1), np.uint8)

    def gemv(self, wq: np.ndarray, name: str, x: np.ndarray, xq: np.ndarray, y: np.ndarray) -> np.ndarray:
        """y = W x with ggml's from_float + vec_dot, one thread. x: float32[K] C-contiguous, xq: x_scratch, y:
        float32[N]. No checks beyond the shapes: the benchmark calls this in its timed loop."""
        n, k = wq.shape[0], x.shape[0]
        if y.shape != (n,) or x.dtype != np.float32 or y.dtype != np.float32:
            raise ValueError("gemv: x must be float32[K] and y float32[N]")
        if self.lib.q35b_gemv(self.type_id(name), n, k, wq.ctypes.data, x.ctypes.data, xq.ctypes.data,
                              y.ctypes.data) != 0:
            raise RuntimeError(f"{name} has no CPU vec_dot in this ggml build")
        return y


_LOADED: Ggml | None = None


def load() -> Ggml:
    """Build (if needed) and load the loop; one handle per process."""
    global _LOADED
    if _LOADED is None:
        libdir = library_dir()
        _LOADED = Ggml(build(libdir), libdir)
    return _LOADED
