"""bench.formats, the one format table: q35 sizes are the encoder's own (q35.encoded_nbytes), the other formulas
are checked by hand and against the bytes torch really stores for the end-to-end benchmark's INT8 and INT4 layers;
the benchmark labels each precision with the table's all-in bits per weight."""
from __future__ import annotations

import math

import pytest
import torch

import q35
from bench import formats as F

SHAPES = [(1, 16), (7, 576), (576, 1536), (1536, 576), (4096, 4096), (11008, 4096), (3, 17), (5, 1000)]


@pytest.mark.parametrize("n,k", SHAPES)
def test_q35_rows_equal_the_encoder(n, k):
    for g in (64, 128, 256, None):
        fmt = F.FORMATS[f"q35-g{g}" if g else "q35-row"]
        assert fmt.nbytes(n, k) == q35.encoded_nbytes(n, k, g)["total"]
        assert fmt.bits_per_weight(n, k) == pytest.approx(q35.all_in_bits_per_weight(k, g), rel=1e-12)
    assert F.FORMATS["q35c-g128"].nbytes(n, k) == q35.encoded_nbytes(n, k, 128, "compact")["total"]
    for g, sf in ((192, "compact"), (224, "compact"), (64, "f16")):
        assert F.q35_format(g, sf, permuted=True).nbytes(n, k) == q35.encoded_nbytes(n, k, g, sf, True)["total"]
    assert F.get_format("q35") is F.FORMATS[f"q35-g{q35.DEFAULT_GROUP_SIZE}"]


def test_q35_g128_by_hand():
    # K = 4096: 7 bytes per 16 weights + (2 + 2) bytes per group of 128 -> exactly 3.75 bits per weight
    assert F.FORMATS["q35-g128"].nbytes(4096, 4096) == 4096 * (7 * 4096 // 16 + 4 * 32)
    assert F.FORMATS["q35-g128"].bits_per_weight(4096, 4096) == 3.75


def test_int8_per_row_bytes_by_hand():
    # one int8 per weight + one float16 scale per row: [3, 5] -> 15 + 6 bytes; 8 + 16/K bits per weight
    assert F.int8_row_nbytes(3, 5) == 15 + 6
    assert F.get_format("int8").nbytes(4096, 4096) == 4096 * 4096 + 2 * 4096
    assert F.get_format("int8").bits_per_weight(64, 576) == 8 + 16 / 576
    # torch's dynamic per-channel qint8 as the benchmark counts it: float64 scale + int64 zero point per row
    assert F.get_format("int8-torch-dynamic").nbytes(3, 5) == 15 + 3 * 16


def test_dense_and_rtn_formulas_by_hand():
    assert (F.fp32_nbytes(3, 5), F.fp16_nbytes(3, 5)) == (60, 30)
    assert F.get_format("bf16").nbytes(3, 5) == F.get_format("fp16").nbytes(3, 5) == 30
    assert F.FORMATS["int4-g128"].bits_per_weight(4096, 4096) == 4 + 32 / 128
    assert F.FORMATS["int4-g128"].nbytes(10, 200) == 10 * 100 + 10 * 2 * 4      # ceil(200/128) = 2 groups
    assert F.rtn_nbytes(2, 10, 3, 4) == 2 * 4 + 2 * 3 * 4                       # 30 bits -> 4 bytes; 3 groups
    assert F.rtn_nbytes(2, 10, 3, None) == 2 * 4 + 2 * 4                        # one group per row
    assert [F.torch_int4_group(k) for k in (4096, 576, 1568, 96)] == [128, 64, 32, 32]
    with pytest.raises(ValueError, match="not divisible by 32"):
        F.torch_int4_group(100)
    assert F.get_format("int4-torch").nbytes(1536, 576) == 1536 * 288 + 4 * 1536 * 9


def test_nf4_double_quant_matches_qlora_overhead():
    # QLoRA: 4 + 8/64 + 32/(64*256) bits per weight, plus per-tensor constants that vanish for big tensors
    n, k = 8192, 8192
    expected = 4 + 8 / 64 + 32 / (64 * 256)
    per_tensor_bits = 8 * (4 + 4 * 256 + 4 * 16) / (n * k)
    assert F.FORMATS["nf4"].bits_per_weight(n, k) == pytest.approx(expected + per_tensor_bits, rel=1e-12)


def test_hqq_and_ggml_by_hand():
    # HQQ g64 on [16, 576]: 144 group rows; 4-bit: 72 uint8 rows of 64; 3-bit: 15 int32 rows (10 codes each)
    assert F.hqq_nbytes(16, 576, 4, 64) == 72 * 64 + 4 * 144
    assert F.hqq_nbytes(16, 576, 3, 64) == 15 * 64 * 4 + 4 * 144
    with pytest.raises(ValueError):
        F.hqq_nbytes(3, 5, 4, 64)
    # ggml: Q3_K 110 bytes per 256 weights, Q4_K 144, Q4_0 18 per 32
    assert F.ggml_nbytes(8, 576, "Q3_K", "flat") == 8 * 576 // 256 * 110
    assert F.FORMATS["ggml-Q4_K-flat"].bits_per_weight(8, 576) == 4.5
    assert F.get_format("GGML-Q4_0-ROWS").nbytes(8, 576) == 8 * 18 * 18
    with pytest.raises(ValueError, match="multiple"):
        F.ggml_nbytes(8, 576, "Q3_K", "rows")


def test_fewer_bits_never_more_bytes():
    chain = ["fp32", "fp16", "int8", "int4-g128", "nf4", "q35-g64", "q35-g128", "q35-g256", "q35-row"]
    for n, k in [(4096, 4096), (11008, 4096), (4096, 11008)]:
        sizes = [F.FORMATS[f].nbytes(n, k) for f in chain]
        assert sizes == sorted(sizes, reverse=True)
    with pytest.raises(KeyError, match="unknown format"):
        F.get_format("int5")


def test_shapes_bits_per_weight_weights_by_size():
    fmt = F.FORMATS["q35-g128"]
    shapes = [(576, 576), (1536, 576)]
    total = sum(q35.encoded_nbytes(n, k, 128)["total"] for n, k in shapes)
    assert F.shapes_bits_per_weight(fmt, shapes) == pytest.approx(8 * total / (576 * 576 + 1536 * 576))


# --- the end-to-end benchmark uses the table ------------------------------------------------------------------
def _one_block(n: int, k: int):
    """A module tree with one block linear named like a LLaMA one (model.layers.0.mlp.up_proj)."""
    layer = torch.nn.Module()
    layer.mlp = torch.nn.Module()
    layer.mlp.up_proj = torch.nn.Linear(k, n, bias=False)
    root = torch.nn.Module()
    root.model = torch.nn.Module()
    root.model.layers = torch.nn.ModuleList([layer])
    torch.nn.init.normal_(layer.mlp.up_proj.weight, std=0.02)
    return root


@pytest.mark.parametrize("precision", ["int8", "int4", "fp32", "bf16"])
def test_benchmark_formats_equal_what_torch_stores(precision):
    from bench.llama.precisions import FORMAT, convert, weight_bytes

    n, k = 96, 576
    model = _one_block(n, k)
    convert(model, precision, "cpu")
    assert weight_bytes(model)["block_linear_bytes"] == F.get_format(FORMAT[precision]).nbytes(n, k)


def test_benchmark_labels_q35_with_its_all_in_bits():
    from bench.llama.precisions import bits_per_weight, labelled

    from q35.torch.config import DEFAULT_CONFIG

    # SmolLM2-135M block linears: q 576x576, k/v 192x576, o 576x576, gate/up 1536x576, down 576x1536; the deployed
    # configuration (compact scales, permuted): 7 bytes per 16 weights + a 2-byte row scale + 10-bit group codes
    # per row + a 2-byte permutation entry per column
    assert DEFAULT_CONFIG.scale_format == "compact" and DEFAULT_CONFIG.permute
    g = DEFAULT_CONFIG.group_size
    shapes = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
    by_hand = 8 * sum(n * (7 * k // 16) + 2 * n + n * math.ceil(10 * math.ceil(k / g) / 8) + 2 * k
                      for n, k in shapes) / sum(n * k for n, k in shapes)
    assert bits_per_weight("q35", "smollm2-135m") == pytest.approx(by_hand, rel=1e-12)
    assert 3.5 < by_hand <= 3.6
    assert labelled("q35", "smollm2-135m") == f"q35 compact g{g} +perm ({by_hand:.3g} bpw)"
    assert bits_per_weight("fp32", "synthetic-7b-width") == 32
