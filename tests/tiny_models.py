"""Tiny random LLaMA-like models (no download) shared by the deployment, integrity and fuzz tests."""
from __future__ import annotations

import numpy as np
import torch
import transformers

import q35
from q35.torch import calibration, models

ARCHS = {
    "llama": lambda: transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=176,
                                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                              max_position_embeddings=64, tie_word_embeddings=True),
    "mistral": lambda: transformers.MistralConfig(vocab_size=96, hidden_size=64, intermediate_size=160,
                                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                  max_position_embeddings=64, sliding_window=32),
    "qwen2": lambda: transformers.Qwen2Config(vocab_size=96, hidden_size=64, intermediate_size=176,
                                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                              max_position_embeddings=64, tie_word_embeddings=False),
}


def tiny_model(arch: str, seed: int = 0, dtype=torch.float32):
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(ARCHS[arch]()).eval().to(dtype)


def calibration_set(seed: int = 0):
    return calibration.CalibrationSet(np.random.default_rng(seed).integers(1, 96, (4, 24)), 0, ["random"] * 4)


def ids(seed=1, shape=(2, 11)):
    return torch.randint(0, 96, shape, generator=torch.Generator().manual_seed(seed))


def quantized(arch: str, config=None, seed=0):
    m = tiny_model(arch, seed)
    config = config or q35.QuantConfig(group_size=32)       # the default modes at a tiny model's group size
    models.quantize_model(m, config, calibration_set(seed), progress=False)
    return m


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and sa[key].shape == sb[key].shape, key
        bytes_a, bytes_b = (t.contiguous().view(-1).view(torch.uint8) for t in (sa[key], sb[key]))
        assert bytes_a.equal(bytes_b), key
