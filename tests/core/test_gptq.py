"""SPEC §9 (error-compensating quantization): Fortran vs pyref bit for bit (counted in the equivalence counter),
the factorisation, what the error compensation must achieve, and the input rules."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import q35
import q35.reference as pyref
from conftest import EQUIVALENCE, PROFILE
from q35.format.gptq_inputs import ORDERS
from strategies import group_sizes, weights

FIELDS = ("packed", "scales", "zeros", "row_scales", "group_codes", "perm")
# pyref is O(K³) pure Python: fewer, smaller examples than the rest of the equivalence suite
GPTQ_EXAMPLES = 1000 if PROFILE == "ci" else 60


def _same(a, b) -> bool:
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        if (x is None) != (y is None):
            return False
        if x is not None and not (x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()):
            return False
    return a.shape == b.shape and a.group_size == b.group_size and a.scale_format == b.scale_format


@st.composite
def hessians(draw, k: int):
    """XᵀX/n of random inputs: correlated channels, channels of very different scale, dead channels."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.sampled_from([max(1, k // 3), 2 * k + 3]))      # rank-deficient or full rank
    x = rng.standard_normal((n, k)) * 10.0 ** rng.uniform(-2, 2, size=k)
    if draw(st.booleans()):
        x = x + rng.standard_normal((n, 1)) * rng.uniform(0, 3)  # a shared direction: strong correlation
    if k > 2 and draw(st.booleans()):
        x[:, rng.integers(0, k, size=max(1, k // 8))] = 0.0      # dead channels
    h = x.T @ x / n
    return (h + h.T) * 0.5


@settings(max_examples=GPTQ_EXAMPLES)
@given(w=weights(max_rows=5, max_cols=80), g=group_sizes, data=st.data())
def test_gptq_bit_exact(w, g, data):
    k = w.shape[1]
    h = data.draw(hessians(k))
    order = data.draw(st.one_of(st.sampled_from(ORDERS), st.permutations(range(k)).map(np.array)))
    kw = dict(scale_format=data.draw(st.sampled_from(["compact", "f16"])), permute=data.draw(st.booleans()),
              order=order, damp=data.draw(st.sampled_from([0.01, 0.1, 1.0])))
    if data.draw(st.booleans()) and (kw["scale_format"] == "compact" or kw["permute"]):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        kw["importance"] = (rng.random(k) * rng.choice([0.0, 1.0, 1e3], size=k)).astype(np.float32)
    try:
        ref = pyref.quantize_gptq(w, h, g, **kw)
    except ValueError as exc:          # ill-conditioned cases must fail the same way on both paths
        with pytest.raises(ValueError, match=str(exc).split(" (")[0][:20]):
            q35.quantize_gptq(w, h, g, **kw)
        EQUIVALENCE["examples"] += 1
        return
    fast = q35.quantize_gptq(w, h, g, block_size=data.draw(st.sampled_from([1, 3, 16])),
                             threads=data.draw(st.sampled_from([None, 1, 2])), **kw)
    EQUIVALENCE["examples"] += 1
    ok = _same(ref, fast) and np.array_equal(pyref.dequantize(ref).view(np.uint32), q35.dequantize(fast).view(np.uint32))
    if not ok:
        EQUIVALENCE["mismatches"] += 1
    assert ok, f"GPTQ quantize differs for shape {w.shape}, group {g}, {kw}"


@pytest.mark.parametrize("k", [1, 2, 7, 24])
def test_inverse_upper_factor(k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((3 * k, k))
    a = x.T @ x / (3 * k) + 0.1 * np.eye(k)
    u = np.array(pyref.gptq.inverse_upper_factor(a.tolist()))
    assert np.array_equal(u, np.triu(u)) and (np.diag(u) > 0).all()
    np.testing.assert_allclose(u.T @ u @ a, np.eye(k), atol=1e-10)
    ut, info = q35.fast.extension.ext.q35_gptq_factor(a.T)
    assert info == 0 and np.array_equal(ut.T, u)        # Fortran: the same bits


@pytest.mark.parametrize("scale_format", ["f16", "compact"])
def test_uncorrelated_inputs_give_plain_quantization(scale_format):
    """With a diagonal Hessian no error can be compensated: GPTQ must equal the plain quantizer (SPEC §3/§8)
    in every order, with the Hessian's diagonal as importance."""
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((9, 80)) * 0.05).astype(np.float32)
    h = np.diag(rng.random(80) * 3 + 0.01)
    imp = np.diag(h).astype(np.float32) if scale_format == "compact" else None
    plain = q35.quantize(w, 32, scale_format=scale_format, importance=imp)
    for order in ORDERS:
        assert _same(q35.quantize_gptq(w, h, 32, scale_format=scale_format, order=order), plain), order


def _proxy_loss(w, h, qt):
    d = q35.dequantize(qt).astype(np.float64) - w
    return float(np.einsum("ij,jk,ik->", d, h, d))


def test_error_compensation_lowers_the_layer_output_error():
    """On correlated inputs the output error tr(ΔW·H·ΔWᵀ) falls well below round-to-nearest on the same grids,
    and quantizing the 3-bit lanes first beats quantizing them last."""
    rng = np.random.default_rng(0)
    k = 192
    x = rng.standard_normal((2000, k)) @ (np.eye(k) + 0.3 * rng.standard_normal((k, k)))
    h = x.T @ x / 2000
    w = (rng.standard_normal((48, k)) * 0.02).astype(np.float32)
    rtn = _proxy_loss(w, h, q35.quantize(w, 64, scale_format="compact", importance=np.diag(h).astype(np.float32)))
    losses = {o: _proxy_loss(w, h, q35.quantize_gptq(w, h, 64, order=o)) for o in ORDERS}
    assert losses["natural"] < 0.75 * rtn
    assert losses["odd_first"] < losses["even_first"]


def test_result_does_not_depend_on_threads_or_block_size():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 96))
    h = x.T @ x / 300
    w = rng.standard_normal((37, 96)).astype(np.float32)
    ref = q35.quantize_gptq(w, h, 32, block_size=1, threads=1)
    for bs, th in [(5, 2), (16, 2), (64, 1)]:
        assert _same(q35.quantize_gptq(w, h, 32, block_size=bs, threads=th), ref)


@pytest.mark.parametrize("quantize", [q35.quantize_gptq, pyref.quantize_gptq], ids=["fortran", "pyref"])
@pytest.mark.parametrize("hessian, kwargs, message", [
    (np.eye(5), {}, r"expected shape \(4, 4\)"),
    (np.eye(4)[None], {}, r"expected shape \(4, 4\)"),
    (np.where(np.eye(4) > 0, np.nan, 0.0), {}, "NaN or Inf"),
    (np.eye(4).astype(np.int64), {}, "not a floating-point type"),
    (np.eye(4) - 2 * np.eye(4)[0:1].T @ np.eye(4)[0:1], {}, "negative diagonal"),
    (np.eye(4) + np.triu(np.ones((4, 4)), 1), {}, "not symmetric"),
    (np.ones((4, 4)), {"damp": 0.0}, "not positive definite"),
    (np.eye(4), {"damp": -1.0}, "damp must be"),
    (np.eye(4), {"damp": float("nan")}, "damp must be"),
    (np.eye(4), {"order": "sideways"}, "order must be one of"),
    (np.eye(4), {"order": np.array([0, 1, 1, 2])}, "permutation of 0..3"),
    (np.eye(4), {"block_size": 0}, "block_size must be"),
    (np.eye(4), {"threads": -2}, "threads must be"),
    (np.eye(4), {"scale_format": "bf16"}, "scale_format must be"),
    (np.eye(4), {"scale_format": "f16", "importance": np.ones(4)}, "no search to weight"),
    (np.eye(4), {"permute": 1}, "permute must be True or False"),
    (np.eye(4), {"order": "odd_first"}, None),
])
def test_bad_input_gives_one_clear_error(quantize, hessian, kwargs, message):
    w = np.arange(16, dtype=np.float32).reshape(4, 4) / 16
    if message is None:                        # the control: the same call with good arguments works
        assert quantize(w, hessian, 16, **kwargs).shape == (4, 4)
        return
    with pytest.raises((ValueError, TypeError), match=message):
        quantize(w, hessian, 16, **kwargs)


def test_singular_hessian_is_fine_with_damping():
    """A rank-one Hessian (fewer tokens than channels) is dampened into a usable one."""
    w = np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32)
    x = np.ones((1, 32))
    qt = q35.quantize_gptq(w, x.T @ x, 16)
    assert _same(qt, pyref.quantize_gptq(w, x.T @ x, 16))
    huge = q35.quantize_gptq(w, x.T @ x, 2**40)        # a group wider than the row: one group per row
    assert huge.scales.shape == (2, 1) and _same(huge, pyref.quantize_gptq(w, x.T @ x, 2**40))
