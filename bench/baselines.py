"""Simple weight-quantization baselines with honest all-in bits per weight.

Every quantizer here takes one weight matrix ``W[N, K]`` (float32, ``torch.nn.Linear`` layout: rows are output
features) and returns a :class:`Quantized`: the dequantized float32 matrix plus the *real* stored arrays' sizes.
The bits per weight are computed from the byte sizes of the arrays that a file would hold (bit-packed codes,
float16 scales and zeros), never from a formula alone; each quantizer checks them against the format table's
formula (bench.formats), the one place where sizes are written down.

Baselines (all round-to-nearest, no calibration):

* ``fp16``      -- binary16 round trip (16 bits/weight).
* ``int8_row``  -- symmetric per-row INT8: ``w ~= s_n * q``, ``q in [-127, 127]``, one float16 scale per row.
* ``rtn(bits, group_size)`` -- asymmetric min-max RTN per group of ``g`` consecutive columns of a row (the last
  group is shorter when ``g`` does not divide ``K``): ``w ~= z + s * q``, ``q in [0, 2^b - 1]``;
  ``z = f16_down(min)`` and ``s = f16_up((max - z) / (2^b - 1))`` are stored as float16 (so every value lies inside
  the grid and ``|w - w_hat| <= s/2`` up to float64 rounding). Codes are bit-packed per row
  (``ceil(K*b/8)`` bytes), so the all-in size is ``N*ceil(K*b/8) + 4*N*ceil(K/g)`` bytes.

:func:`quantize_layers` applies any per-matrix quantizer to a dict of layers and aggregates the bits.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from bench import formats

__all__ = ["Quantized", "LayerSetResult", "fp16_roundtrip", "int8_row", "rtn", "pack_bits", "unpack_bits", "f16_down", "f16_up", "quantize_layers", "BASELINES"]


@dataclass
class Quantized:
    """One quantized matrix: dequantized float32 ``weight`` and the byte size of each stored array."""
    method: str
    weight: np.ndarray                      # float32 [N, K], what the model will compute with
    storage: dict = field(default_factory=dict)   # component name -> bytes actually stored
    notes: str = ""

    @property
    def stored_bytes(self) -> int:
        return int(sum(self.storage.values()))

    @property
    def stored_bits(self) -> int:
        return 8 * self.stored_bytes

    @property
    def n_weights(self) -> int:
        return int(self.weight.size)

    @property
    def bpw(self) -> float:
        return self.stored_bits / self.n_weights


@dataclass
class LayerSetResult:
    """A method applied to a set of layers (e.g. every block linear of a model)."""
    method: str
    weights: dict            # name -> dequantized float32 [N, K]
    stored_bits: dict        # name -> int bits stored for that layer
    n_weights: dict          # name -> int
    seconds: float           # wall time of quantize + dequantize over all layers
    notes: str = ""
    per_layer_notes: dict = field(default_factory=dict)

    @property
    def bpw(self) -> float:
        """All-in bits per weight over all layers (total stored bits / total weights)."""
        return sum(self.stored_bits.values()) / sum(self.n_weights.values())

    def summary(self) -> dict:
        return {"method": self.method, "bpw": self.bpw, "n_layers": len(self.weights),
                "n_weights": int(sum(self.n_weights.values())),
                "stored_bits": int(sum(self.stored_bits.values())), "quantize_seconds": self.seconds,
                "notes": self.notes}


def _check(w) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D weight matrix, got shape {w.shape}")
    if w.size == 0:
        raise ValueError(f"empty weight matrix of shape {w.shape}")
    if not np.issubdtype(w.dtype, np.floating):
        raise TypeError(f"expected a float weight matrix, got dtype {w.dtype}")
    w = np.ascontiguousarray(w, dtype=np.float32)
    if not np.all(np.isfinite(w)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(w))[0])
        raise ValueError(f"NaN/Inf in weight matrix at index {idx}")
    if np.abs(w).max() > 65504.0:
        raise ValueError("weight magnitude exceeds 65504 (binary16 range): scales/zeros would not be storable")
    return w


# ---------------------------------------------------------------------------------------------------------
# binary16 directed rounding (vectorised; values are within the binary16 range)

_F16_NEG_INF = np.float16(-np.inf)
_F16_POS_INF = np.float16(np.inf)


def f16_down(x: np.ndarray) -> np.ndarray:
    """Largest binary16 value <= x (elementwise, x float64 within +-65504); returns float16."""
    x = np.asarray(x, dtype=np.float64)
    f = x.astype(np.float16)
    too_big = f.astype(np.float64) > x
    f = np.where(too_big, np.nextafter(f, _F16_NEG_INF), f)
    return np.where(f == 0, np.float16(0.0), f).astype(np.float16)   # never -0


def f16_up(x: np.ndarray) -> np.ndarray:
    """Smallest binary16 value >= x (elementwise); returns float16."""
    x = np.asarray(x, dtype=np.float64)
    f = x.astype(np.float16)
    too_small = f.astype(np.float64) < x
    return np.where(too_small, np.nextafter(f, _F16_POS_INF), f).astype(np.float16)


# ---------------------------------------------------------------------------------------------------------
# bit packing: b-bit codes, little-endian bit order, each row padded to whole bytes

def pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned ``codes[N, K]`` (< 2**bits) into ``uint8[N, ceil(K*bits/8)]``, LSB first."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D, got {codes.shape}")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    if codes.size and (codes.min() < 0 or codes.max() >= (1 << bits)):
        raise ValueError(f"codes out of range for {bits} bits")
    c = codes.astype(np.uint8)
    planes = (c[:, :, None] >> np.arange(bits, dtype=np.uint8)) & 1           # [N, K, bits]
    return np.packbits(planes.reshape(c.shape[0], -1), axis=1, bitorder="little")


def unpack_bits(packed: np.ndarray, bits: int, k: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``uint8[N, ceil(K*bits/8)] -> uint8[N, K]``."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.shape[1] != math.ceil(k * bits / 8):
        raise ValueError(f"truncated or oversized payload: {packed.shape[1]} bytes per row, "
                         f"expected {math.ceil(k * bits / 8)}")
    flat = np.unpackbits(packed, axis=1, count=k * bits, bitorder="little").reshape(packed.shape[0], k, bits)
    return (flat.astype(np.uint8) << np.arange(bits, dtype=np.uint8)).sum(axis=2, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------
# baselines

def _sized(q: Quantized, formula_bytes: int) -> Quantized:
    """``q`` after checking that its stored arrays take exactly the bytes the format table says."""
    if q.stored_bytes != formula_bytes:
        raise RuntimeError(f"{q.method}: stored {q.stored_bytes} bytes, the format table says {formula_bytes}")
    return q


def fp16_roundtrip(w) -> Quantized:
    """binary16 round trip (round to nearest even); 16 bits/weight, nothing else stored."""
    w = _check(w)
    h = w.astype(np.float16)
    return _sized(Quantized("fp16", h.astype(np.float32), {"values_f16": h.nbytes}, "binary16 values, no scales"),
                  formats.fp16_nbytes(*w.shape))


def int8_row(w) -> Quantized:
    """Symmetric per-row INT8: ``s = f16_up(max|w| / 127)``, ``q = clamp(round(w / s), -127, 127)``."""
    w = _check(w)
    w64 = w.astype(np.float64)
    amax = np.abs(w64).max(axis=1, keepdims=True)
    s16 = np.maximum(f16_up(amax / 127.0), np.float16(2.0 ** -24))
    s = s16.astype(np.float64)
    q = np.clip(np.rint(w64 / s), -127, 127).astype(np.int8)
    deq = (q.astype(np.float64) * s).astype(np.float32)
    return _sized(Quantized("int8_row", deq, {"codes_int8": q.nbytes, "scales_f16": s16.nbytes},
                            "int8 codes + float16 scale per row (symmetric)"), formats.int8_row_nbytes(*w.shape))


def _group_index(k: int, g: int) -> tuple[np.ndarray, int]:
    groups = math.ceil(k / g)
    return np.minimum(np.arange(k) // g, groups - 1), groups


def rtn(w, bits: int, group_size: int | None = 128) -> Quantized:
    """Asymmetric min-max round-to-nearest with a float16 scale and float16 zero per group (see module doc)."""
    w = _check(w)
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    n, k = w.shape
    g = k if group_size in (None, 0) else int(group_size)
    if g <= 0:
        raise ValueError(f"group_size must be positive or None, got {group_size}")
    groups = math.ceil(k / g)
    pad = groups * g - k
    w64 = w.astype(np.float64)
    # pad the last group with copies of its own first value so min/max are those of the real columns
    if pad:
        fill = np.repeat(w64[:, (groups - 1) * g:(groups - 1) * g + 1], pad, axis=1)
        wp = np.concatenate([w64, fill], axis=1)
    else:
        wp = w64
    wg = wp.reshape(n, groups, g)
    lo, hi = wg.min(axis=2), wg.max(axis=2)
    qmax = (1 << bits) - 1
    z16 = f16_down(lo)
    z = z16.astype(np.float64)
    s16 = np.maximum(f16_up((hi - z) / qmax), np.float16(2.0 ** -24))
    s = s16.astype(np.float64)
    q = np.clip(np.floor((wg - z[:, :, None]) / s[:, :, None] + 0.5), 0, qmax)
    deq = (z[:, :, None] + s[:, :, None] * q).reshape(n, groups * g)[:, :k].astype(np.float32)
    codes = q.reshape(n, groups * g)[:, :k].astype(np.uint8)
    packed = pack_bits(codes, bits)
    return _sized(Quantized(f"int{bits}_g{g if group_size else 'row'}", deq,
                            {"codes_packed": packed.nbytes, "scales_f16": s16.nbytes, "zeros_f16": z16.nbytes},
                            f"{bits}-bit codes bit-packed per row + float16 scale and float16 zero per group of {g}"),
                  formats.rtn_nbytes(n, k, bits, g))


# name -> callable(weight) -> Quantized; what bench.tables / quality_smoke iterate over
BASELINES: dict[str, Callable[[np.ndarray], Quantized]] = {
    "fp16": fp16_roundtrip,
    "int8_row": int8_row,
    "int4_g128": lambda w: rtn(w, 4, 128),
    "int3_g128": lambda w: rtn(w, 3, 128),
    "int3_g64": lambda w: rtn(w, 3, 64),
}


def quantize_layers(fn: Callable[[np.ndarray], Quantized], weights: Mapping[str, np.ndarray],
                    method: str | None = None) -> LayerSetResult:
    """Apply a per-matrix quantizer to every layer of ``weights`` (name -> float32 [N, K])."""
    t0 = time.perf_counter()
    out, bits, nw, notes = {}, {}, {}, {}
    for name, w in weights.items():
        qz = fn(w)
        if qz.weight.shape != np.shape(w) or qz.weight.dtype != np.float32:
            raise RuntimeError(f"{name}: quantizer returned {qz.weight.dtype}{qz.weight.shape}, "
                               f"expected float32{np.shape(w)}")
        out[name], bits[name], nw[name] = qz.weight, qz.stored_bits, qz.n_weights
        notes[name] = qz.notes
        method = method or qz.method
    uniq = sorted(set(notes.values()))
    return LayerSetResult(method or "?", out, bits, nw, time.perf_counter() - t0,
                          notes="; ".join(uniq), per_layer_notes=notes)
