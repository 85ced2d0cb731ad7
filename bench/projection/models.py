"""Model arithmetic of LLaMA-architecture models (a catalogue entry: layers, hidden, intermediate, heads,
kv_heads, vocab, tied_embeddings): layer shapes, parameter counts, stored bytes in a format, KV cache, bytes
read and FLOPs per decode step."""
from __future__ import annotations

from bench.formats import Format

__all__ = ["KV_BYTES_PER_ELEMENT", "HIGH_PRECISION_BYTES", "head_dim", "linear_shapes", "param_counts",
           "weight_bytes", "linear_bits_per_weight", "kv_cache_bytes", "bytes_per_step", "flops_per_token"]

KV_BYTES_PER_ELEMENT = 2           # FP16 KV cache
HIGH_PRECISION_BYTES = 2           # embeddings, lm_head and norms stay FP16


def head_dim(m: dict) -> int:
    return m["hidden"] // m["heads"]


def linear_shapes(m: dict) -> list[tuple[str, int, int]]:
    """(name, N out, K in) of the linears of ONE decoder layer (LLaMA: q, k, v, o, gate, up, down)."""
    h, hd = m["hidden"], head_dim(m)
    q, kv, f = m["heads"] * hd, m["kv_heads"] * hd, m["intermediate"]
    return [("q_proj", q, h), ("k_proj", kv, h), ("v_proj", kv, h), ("o_proj", h, q),
            ("gate_proj", f, h), ("up_proj", f, h), ("down_proj", h, f)]


def param_counts(m: dict) -> dict[str, int]:
    linear = m["layers"] * sum(n * k for _, n, k in linear_shapes(m))
    emb = m["vocab"] * m["hidden"]
    head = 0 if m["tied_embeddings"] else emb
    norms = (2 * m["layers"] + 1) * m["hidden"]
    return {"linear": linear, "embedding": emb, "lm_head": head, "norms": norms,
            "total": linear + emb + head + norms}


def weight_bytes(m: dict, fmt: Format) -> dict[str, int]:
    """Stored bytes: linears in `fmt`, embedding/lm_head/norms FP16, tied embedding counted once."""
    linear = m["layers"] * sum(fmt.nbytes(n, k) for _, n, k in linear_shapes(m))
    p = param_counts(m)
    out = {"linear": linear, "embedding": HIGH_PRECISION_BYTES * p["embedding"],
           "lm_head": HIGH_PRECISION_BYTES * p["lm_head"], "norms": HIGH_PRECISION_BYTES * p["norms"]}
    out["total"] = sum(out.values())
    return out


def linear_bits_per_weight(m: dict, fmt: Format) -> float:
    """All-in bits per weight over the model's quantized linears (per-layer-shape sizes, averaged by weight)."""
    return 8 * weight_bytes(m, fmt)["linear"] / param_counts(m)["linear"]


def kv_cache_bytes(m: dict, context: int, batch: int = 1, bytes_per_element: int = KV_BYTES_PER_ELEMENT) -> int:
    """2 (K and V) · layers · kv_heads · head_dim · context · bytes · batch."""
    return 2 * m["layers"] * m["kv_heads"] * head_dim(m) * context * bytes_per_element * batch


def bytes_per_step(m: dict, fmt: Format, context: int, batch: int = 1) -> dict[str, int]:
    """Bytes read from memory for one decode step of `batch` streams (weights once, KV per stream)."""
    w = weight_bytes(m, fmt)
    lm_head_matrix = HIGH_PRECISION_BYTES * m["vocab"] * m["hidden"]   # read as lm_head even when tied
    emb_rows = HIGH_PRECISION_BYTES * m["hidden"] * batch
    weights = w["linear"] + lm_head_matrix + w["norms"] + emb_rows
    kv = kv_cache_bytes(m, context, batch)
    return {"weights": weights, "kv": kv, "total": weights + kv}


def flops_per_token(m: dict, context: int) -> int:
    """2 FLOPs per multiply-add of every linear and the lm_head, plus attention over `context` positions."""
    p = param_counts(m)
    attention = 4 * m["layers"] * m["heads"] * head_dim(m) * context
    return 2 * (p["linear"] + m["vocab"] * m["hidden"]) + attention
