"""The format table: stored bytes and all-in bits per weight of every weight format bench/ uses, in one place.

A :class:`Format` gives the bytes one ``[N out, K in]`` matrix takes in that format's storage layout (codes,
scales, zeros, padding, per-tensor constants); its bits per weight are ``8 * bytes / (N * K)``. q35 sizes come
from the encoder's own accounting, ``q35.encoded_nbytes``; ggml block sizes from ``gguf.GGML_QUANT_SIZES``. The
baselines (bench.baselines), the anchors, the end-to-end benchmark (bench.llama) and the projection
(bench.projection) all read their sizes here; the tests compare every formula with the bytes a quantizer really
stores.
"""
from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Callable, Iterable

import q35

__all__ = ["Format", "FORMATS", "ALIASES", "get_format", "ceil_div", "fp32_nbytes", "fp16_nbytes",
           "int8_row_nbytes", "int8_torch_dynamic_nbytes", "rtn_nbytes", "torch_int4_group", "torch_int4_nbytes",
           "nf4_nbytes", "hqq_nbytes", "ggml_nbytes", "q35_nbytes", "q35_format", "rtn_format", "hqq_format",
           "ggml_format", "shapes_bits_per_weight"]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Format:
    """A weight storage format: ``nbytes(N, K)`` is the bytes of one [N out, K in] matrix as stored."""
    id: str
    label: str
    source: str
    nbytes: Callable[[int, int], int]

    def bits_per_weight(self, n: int, k: int) -> float:
        return 8 * self.nbytes(n, k) / (n * k)


def shapes_bits_per_weight(fmt: Format, shapes: Iterable[tuple[int, int]]) -> float:
    """All-in bits per weight over a set of [N, K] matrices (total stored bits / total weights)."""
    shapes = list(shapes)
    return 8 * sum(fmt.nbytes(n, k) for n, k in shapes) / sum(n * k for n, k in shapes)


# --- byte formulas ------------------------------------------------------------------------------------------
def fp32_nbytes(n: int, k: int) -> int:
    return 4 * n * k


def fp16_nbytes(n: int, k: int) -> int:
    """binary16 or bfloat16: 2 bytes per weight."""
    return 2 * n * k


def int8_row_nbytes(n: int, k: int) -> int:
    """Symmetric int8 codes + one float16 scale per row (output channel)."""
    return n * k + 2 * n


def int8_torch_dynamic_nbytes(n: int, k: int) -> int:
    """torch.ao dynamic per-channel qint8: int8 codes + per row a float64 scale and an int64 zero point, as
    torch reports them (``q_per_channel_scales`` / ``q_per_channel_zero_points``)."""
    return n * k + 16 * n


def rtn_nbytes(n: int, k: int, bits: int, group_size: int | None) -> int:
    """Min-max RTN: codes bit-packed per row (``ceil(K*bits/8)`` bytes) + float16 scale and float16 zero per group
    of ``group_size`` columns (None or 0: one group per row; the last group is shorter when g does not divide K)."""
    g = k if group_size in (None, 0) else group_size
    return n * ceil_div(k * bits, 8) + 4 * n * ceil_div(k, g)


def torch_int4_group(k: int) -> int:
    """Group size of the benchmark's torch INT4 layer: 128, or the largest of 64/32 that divides K."""
    g = next((g for g in (128, 64, 32) if k % g == 0), None)
    if g is None:
        raise ValueError(f"in_features {k} is not divisible by 32 (torch INT4 CPU kernel)")
    return g


def torch_int4_nbytes(n: int, k: int) -> int:
    """``aten._weight_int4pack_mm_for_cpu`` layout: two 4-bit codes per byte + bf16 scale and zero per group."""
    return rtn_nbytes(n, k, 4, torch_int4_group(k))


def nf4_nbytes(n: int, k: int, blocksize: int = 64, nested_blocksize: int = 256) -> int:
    """bitsandbytes NF4 with double quantization over the flattened tensor.

    4-bit codes; one absmax per `blocksize` block, itself quantized to 8 bits; one fp32 absmax per
    `nested_blocksize` absmax values; per tensor: fp32 offset, the 256-entry fp32 code of the nested 8-bit
    quantizer and the 16-entry fp32 NF4 code (bitsandbytes serialises both with each tensor).
    """
    numel = n * k
    blocks = ceil_div(numel, blocksize)
    nested = ceil_div(blocks, nested_blocksize)
    return ceil_div(numel, 2) + blocks + 4 * nested + 4 + 4 * 256 + 4 * 16


# HQQ packs the [N*K/g, g] code matrix along its first axis: codes per storage word and the word's bytes
_HQQ_PACKING = {8: (1, 1), 4: (2, 1), 2: (4, 1), 3: (10, 4)}


def hqq_nbytes(n: int, k: int, bits: int, group_size: int = 64) -> int:
    """HQQ (axis=1, bitpack=True): the matrix is cut into N*K/g group rows of g codes; 4-bit packs two group rows
    per uint8 row, 3-bit ten per int32 row (group-row count padded to a multiple of 10); + float16 scale and
    float16 zero per group."""
    if (n * k) % group_size:
        raise ValueError(f"HQQ needs N*K divisible by the group size; got [{n}, {k}], group {group_size}")
    if bits not in _HQQ_PACKING:
        raise ValueError(f"no HQQ packing for {bits} bits; known: {sorted(_HQQ_PACKING)}")
    rows = n * k // group_size
    per_word, word_bytes = _HQQ_PACKING[bits]
    return ceil_div(rows, per_word) * group_size * word_bytes + 4 * rows


def ggml_nbytes(n: int, k: int, type_name: str, layout: str = "rows") -> int:
    """ggml block formats (``gguf.GGML_QUANT_SIZES``: weights per block, bytes per block). ``layout="rows"``: each
    row in whole blocks (K a multiple of the block); ``"flat"``: the row-major flattened matrix in blocks."""
    import gguf

    blck, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]]
    if layout == "rows":
        if k % blck:
            raise ValueError(f"{type_name}: row length {k} is not a multiple of its block of {blck}")
        return n * (k // blck) * type_size
    if layout == "flat":
        if (n * k) % blck:
            raise ValueError(f"{type_name} flat layout needs N*K divisible by {blck}; got [{n}, {k}]")
        return n * k // blck * type_size
    raise ValueError(f"layout must be 'rows' or 'flat', got {layout!r}")


def q35_nbytes(n: int, k: int, group_size: int | None, scale_format: str = "f16", permuted: bool = False) -> int:
    """The q35 encoder's own size accounting (SPEC §4, §8): payload + scales/zeros or row scales + group codes
    (+ the stored permutation)."""
    return int(q35.encoded_nbytes(n, k, group_size, scale_format, permuted)["total"])


# --- named formats ------------------------------------------------------------------------------------------
def q35_format(group_size: int | None, scale_format: str = "f16", permuted: bool = False) -> Format:
    tag = f"g{group_size}" if group_size else "row"
    compact = scale_format == "compact"
    fid = f"q35{'c' if compact else ''}-{tag}{'-perm' if permuted else ''}"
    label = f"q35 {'compact ' if compact else ''}{tag}{' +perm' if permuted else ''}"
    how = ("7 bytes per 16 weights + fp16 row scale + 10-bit group codes" if compact
           else "7 bytes per 16 weights + fp16 scale and zero per group")
    source = (f"SPEC.md sect. {'8' if compact else '4'} via q35.encoded_nbytes(N, K, {group_size}"
              f"{', compact' if compact else ''}{', permuted' if permuted else ''}) ({how}"
              f"{' + 2-byte permutation entry per column' if permuted else ''})")
    return Format(fid, label, source, lambda n, k: q35_nbytes(n, k, group_size, scale_format, permuted))


def rtn_format(bits: int, group_size: int | None) -> Format:
    tag = f"g{group_size}" if group_size else "row"
    return Format(f"int{bits}-{tag}", f"INT{bits} {tag}",
                  f"{bits}-bit codes bit-packed per row + fp16 scale and fp16 zero per group of {group_size or 'K'} "
                  f"(min-max RTN, GPTQ/AWQ layout)", lambda n, k: rtn_nbytes(n, k, bits, group_size))


def hqq_format(bits: int, group_size: int = 64) -> Format:
    return Format(f"hqq{bits}-g{group_size}", f"HQQ {bits}-bit g{group_size}",
                  f"HQQ bit-packed codes ({'10 per int32' if bits == 3 else f'{8 // bits} per uint8'}) + fp16 scale "
                  f"and zero per group of {group_size}", lambda n, k: hqq_nbytes(n, k, bits, group_size))


def ggml_format(type_name: str, layout: str = "rows") -> Format:
    return Format(f"ggml-{type_name}-{layout}", f"{type_name} ({layout})",
                  f"ggml {type_name} blocks (gguf.GGML_QUANT_SIZES), {layout} layout",
                  lambda n, k: ggml_nbytes(n, k, type_name, layout))


FORMATS: dict[str, Format] = {f.id: f for f in [
    Format("fp32", "FP32", "4 bytes per weight", fp32_nbytes),
    Format("fp16", "FP16", "2 bytes per weight", fp16_nbytes),
    Format("bf16", "BF16", "2 bytes per weight", fp16_nbytes),
    Format("int8", "INT8 per-channel", "int8 weights + fp16 scale per output channel (weight-only W8A16, symmetric)",
           int8_row_nbytes),
    Format("int8-torch-dynamic", "INT8 dynamic", "torch.ao dynamic quantization: qint8 weights + float64 scale and "
           "int64 zero point per output channel (as torch reports them)", int8_torch_dynamic_nbytes),
    Format("int4-g128", "INT4 g128", "4-bit codes + fp16 scale and fp16 zero per 128 weights (GPTQ/AWQ g128): "
           "4 + 32/128 bits per weight", lambda n, k: rtn_nbytes(n, k, 4, 128)),
    Format("int4-torch", "INT4 weight-only", "aten._weight_int4pack_mm_for_cpu: 4-bit codes + bf16 scale and zero "
           "per group of 128 (or the largest of 64/32 dividing K)", torch_int4_nbytes),
    rtn_format(3, 128), rtn_format(3, 64),
    Format("nf4", "NF4 (bnb, bs64+DQ)", "bitsandbytes NF4, blocksize 64, double quantization (8-bit absmax, fp32 "
           "absmax per 256 blocks; QLoRA paper sect. 3) + per-tensor codes", nf4_nbytes),
    hqq_format(3), hqq_format(4),
    ggml_format("Q3_K", "flat"), ggml_format("Q4_K", "flat"), ggml_format("Q4_0"), ggml_format("Q5_0"),
    q35_format(64), q35_format(128), q35_format(256), q35_format(None),
    q35_format(128, "compact"),
]}
ALIASES = {"q35": f"q35-g{q35.DEFAULT_GROUP_SIZE}", "int4": "int4-g128"}


def get_format(name: str) -> Format:
    """A format by id or alias, case-insensitively; every q35 mode by its id (q35[c]-g<size>|row[-perm])."""
    by_lower = {k.lower(): v for k, v in FORMATS.items()}
    key = ALIASES.get(name.lower(), name.lower())
    if key.lower() in by_lower:
        return by_lower[key.lower()]
    m = re.fullmatch(r"q35(c?)-(?:g(\d+)|row)(-perm)?", key)
    if m:
        return q35_format(int(m.group(2)) if m.group(2) else None, "compact" if m.group(1) else "f16",
                          bool(m.group(3)))
    raise KeyError(f"unknown format {name!r}; choose from {sorted(FORMATS) + sorted(ALIASES)} or any q35 mode id "
                   "(q35[c]-g<size>|row[-perm])")
