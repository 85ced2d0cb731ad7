"""Regression tests of past defects in the format, the fast path and the torch layer: every bad argument is
one clear error (the same in the reference and the fast path), empty batches give empty results, and results are
deterministic across processes."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

import q35
import q35.reference as pyref
from q35.torch import layer as qnn

IMPLS = [pytest.param(q35, id="fast"), pytest.param(pyref, id="reference")]


def _w(n=3, k=40, seed=0):
    return np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("g", [2 ** 31 - 16, 2 ** 31, 2 ** 40])
def test_group_sizes_beyond_int32_are_one_group_per_row(impl, g):
    qt = impl.quantize(_w(), g)
    assert qt.group_size == g and qt == impl.quantize(_w(), g)
    assert np.array_equal(impl.dequantize(qt), q35.dequantize(q35.quantize(_w(), None)))


def test_compact_importance_accepts_more_than_65535_columns_without_permutation():
    w = _w(1, 65536 + 16, 1)
    imp = np.random.default_rng(2).random(w.shape[1]).astype(np.float32)
    qt = q35.quantize(w, 4096, scale_format="compact", importance=imp)
    assert qt.shape == w.shape and qt.perm is None
    with pytest.raises(ValueError, match="uint16"):
        q35.quantize(w, 4096, scale_format="compact", importance=imp, permute=True)


@pytest.mark.parametrize("impl", IMPLS)
def test_quantize_argument_rules(impl):
    imp = np.ones(40, np.float32)
    with pytest.raises(ValueError, match="pass importance"):
        impl.quantize(_w(), 16, scale_format="compact", permute=True)
    with pytest.raises(ValueError, match="f16 min-max grid has no search"):
        impl.quantize(_w(), 16, importance=imp)
    assert impl.quantize(_w(), 16, importance=imp, permute=True).perm is not None   # importance orders the perm
    with pytest.raises(TypeError, match="permute must be True or False"):
        impl.quantize(_w(), 16, scale_format="compact", importance=imp, permute="yes")


@pytest.mark.parametrize("call", [lambda: q35.all_in_bits_per_weight(4096, -16),
                                  lambda: q35.encoded_nbytes(-3, 64, 32),
                                  lambda: q35.all_in_bits_per_weight(0, 16),
                                  lambda: q35.encoded_nbytes(4, 64, 100),
                                  lambda: q35.encoded_nbytes(4, 64.0, 32),
                                  lambda: q35.encoded_nbytes(4, 70000, 64, "compact", permuted=True)])
def test_size_functions_reject_impossible_arguments(call):
    with pytest.raises(ValueError):
        call()


def test_q35_info_rejects_what_quantize_rejects():
    r = subprocess.run([sys.executable, "-m", "q35.cli", "info", "--group-size", "100"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "multiple of 16" in r.stderr


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_rows_pack_and_unpack_alike(impl):
    assert impl.pack_codes(np.zeros((0, 16), np.uint8)).shape == (0, 7)
    assert impl.unpack_codes(np.zeros((0, 7), np.uint8), 16).shape == (0, 16)


@pytest.mark.parametrize("impl", IMPLS)
def test_non_integer_shape_is_refused_by_both(impl):
    qt = q35.quantize(_w(), 16)
    bad = q35.QTensor(qt.packed, qt.scales, qt.zeros, (3, 40.0), 16)
    with pytest.raises(ValueError, match="integers N, K"):
        impl.dequantize(bad)


def test_qtensor_equality_compares_bits():
    a, b = q35.quantize(_w(), 16), q35.quantize(_w(), 16)
    assert a == b and not (a != b)
    assert a != q35.quantize(_w(seed=1), 16) and a != q35.quantize(_w(), 32)
    plus, minus = (q35.QTensor(a.packed, a.scales, a.zeros.copy(), a.shape, 16) for _ in range(2))
    plus.zeros[0, 0], minus.zeros[0, 0] = np.float16(0.0), np.float16(-0.0)
    assert plus != minus and plus == q35.QTensor(a.packed, a.scales, plus.zeros.copy(), a.shape, 16)
    with pytest.raises(TypeError):
        hash(a)


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_batch_gives_an_empty_result(impl):
    qt = q35.quantize(_w(), 16)
    assert impl.matmul(np.zeros((0, 40), np.float32), qt).shape == (0, 3)


@pytest.mark.parametrize("lead", [(0,), (2, 0), (0, 5)])
def test_q35linear_empty_batches(lead):
    layer = qnn.Q35Linear.from_qtensor(q35.quantize(_w(), 16), np.ones(3, np.float32))
    y = layer(torch.zeros(lead + (40,)))
    assert y.shape == lead + (3,)


@pytest.mark.parametrize("rows", [1, 2, 7, 64, 600])
def test_q35linear_non_finite_input_raises_on_every_path(rows):
    layer = qnn.Q35Linear.from_qtensor(q35.quantize(_w(), 16))
    x = torch.zeros(rows, 40)
    x[rows // 2, 7] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        layer(x)
    x[rows // 2, 7] = float("inf")
    with pytest.raises(ValueError, match="NaN|Inf"):
        layer(x)


def test_quantized_bytes_identical_across_processes():
    code = ("import hashlib, numpy as np, q35; w = np.random.default_rng(5).standard_normal((64, 300))"
            ".astype(np.float32); imp = np.random.default_rng(6).random(300).astype(np.float32); "
            "h = hashlib.sha256()\n"
            "for kw in ({}, {'scale_format': 'compact', 'importance': imp, 'permute': True}):\n"
            "    qt = q35.quantize(w, 64, **kw)\n"
            "    for a in (qt.packed, qt.scales, qt.zeros): h.update(np.ascontiguousarray(a).tobytes())\n"
            "print(h.hexdigest())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    here = hashlib.sha256()
    w = np.random.default_rng(5).standard_normal((64, 300)).astype(np.float32)
    imp = np.random.default_rng(6).random(300).astype(np.float32)
    for kw in ({}, {"scale_format": "compact", "importance": imp, "permute": True}):
        qt = pyref.quantize(w, 64, **kw)
        for a in (qt.packed, qt.scales, qt.zeros):
            here.update(np.ascontiguousarray(a).tobytes())
    assert runs == {here.hexdigest() + "\n"}
