"""The benchmark's models: their ids, the synthetic LLaMA-7B-width configuration, and each model's architecture
as a catalogue entry (bench/catalog/models.json form), from which the block-linear shapes follow."""
from __future__ import annotations

from bench.projection.catalogue import load_models
from bench.projection.models import linear_shapes

__all__ = ["MODELS", "SMOLLM2", "SYNTHETIC", "synthetic_config", "architecture", "block_linear_shapes"]

SMOLLM2 = "smollm2-135m"
SYNTHETIC = "synthetic-7b-width"
MODELS = (SMOLLM2, SYNTHETIC)


def synthetic_config(layers: int) -> dict:
    """transformers.LlamaConfig arguments of LLaMA-7B's width with only `layers` layers (random weights)."""
    return {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": layers,
            "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 2048,
            "tie_word_embeddings": False, "rms_norm_eps": 1e-5}


def architecture(model: str, layers: int = 1) -> dict:
    """A model's architecture as a catalogue entry (layers, hidden, intermediate, heads, kv_heads, vocab)."""
    if model == SMOLLM2:
        return load_models()[SMOLLM2]
    if model == SYNTHETIC:
        c = synthetic_config(layers)
        return {"id": model, "name": model, "layers": layers, "hidden": c["hidden_size"],
                "intermediate": c["intermediate_size"], "heads": c["num_attention_heads"],
                "kv_heads": c["num_key_value_heads"], "vocab": c["vocab_size"],
                "tied_embeddings": c["tie_word_embeddings"]}
    raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")


def block_linear_shapes(model: str) -> list[tuple[int, int]]:
    """[N out, K in] of the linears of one decoder layer (every layer has the same)."""
    return [(n, k) for _, n, k in linear_shapes(architecture(model))]
