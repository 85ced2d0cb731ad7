"""W3.5·A8 (SPEC §5.1): the Fortran kernel and pyref.matmul_a8 agree bit for bit, for every thread count, on
any valid QTensor and on extreme activations (zeros, huge, tiny, binary32 subnormals); bad block sizes are named.
Every example is counted by the equivalence counter (conftest)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import q35
import q35.reference as pyref
from conftest import EQUIVALENCE
from strategies import arbitrary_qtensors, group_sizes, weights

A8_BLOCKS = [16, 32, 48, 64, 128, 256]
SCALES = [0.0, 1e-45, 1e-40, 1e-30, 1e-6, 1.0, 1e3, 1e20, 1e37, 3e38]


def _check(ok: bool, what: str) -> None:
    EQUIVALENCE["examples"] += 1
    if not ok:
        EQUIVALENCE["mismatches"] += 1
    assert ok, what


@st.composite
def extreme_activations(draw, k: int, batch: int | None):
    """x with magnitudes from subnormal to near the binary32 maximum, zero blocks and mixed scales."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (k,) if batch is None else (batch, k)
    x = rng.standard_normal(shape) * rng.choice(SCALES, size=shape if draw(st.booleans()) else 1)
    x[rng.random(shape) < 0.15] = 0.0
    return np.clip(x, -3.4e38, 3.4e38).astype(np.float32)


@st.composite
def any_qtensor(draw):
    """What quantize produces (f16 or compact) or any valid payload with binary16 scales and zeros."""
    if draw(st.booleans()):
        w, g = draw(weights(max_rows=6, max_cols=96)), draw(group_sizes)
        return q35.quantize(w, g, scale_format=draw(st.sampled_from(["f16", "compact"])))
    return draw(arbitrary_qtensors())[0]


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float32).tobytes()


@given(qt=any_qtensor(), block=st.sampled_from(A8_BLOCKS), batch=st.sampled_from([None, 1, 2, 3, 5]),
       threads=st.sampled_from([1, 2]), data=st.data())
def test_a8_kernel_bit_identical_to_pyref(qt, block, batch, threads, data):
    x = data.draw(extreme_activations(qt.shape[1], batch))
    ref = pyref.matmul_a8(x, qt, block)
    fast = q35.matmul(x, qt, activations="a8", threads=threads, a8_block=block)
    _check(ref.shape == fast.shape and _bits(ref) == _bits(fast),
           f"A8 differs: shape {qt.shape}, group {qt.group_size}, block {block}, batch {batch}, threads {threads}")


@given(w=weights(max_rows=40, max_cols=300), g=group_sizes, data=st.data())
def test_a8_result_does_not_depend_on_thread_count(w, g, data):
    qt = q35.quantize(w, g)
    x = data.draw(extreme_activations(w.shape[1], data.draw(st.sampled_from([None, 4]))))
    kw = q35.kernel_weights(qt)
    outs = [q35.matmul_kernel(x, kw, activations="a8", threads=t) for t in (1, 2, 3, 7)]
    _check(all(_bits(o) == _bits(outs[0]) for o in outs), f"A8 depends on the thread count, shape {w.shape}")


def test_a8_quantization_matches_pyref_codes():
    """The kernel's exposed activation quantizer gives pyref's codes and scales (SPEC §5.1 rounding)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 200)) * np.array([[1e-40], [1.0], [1e37]])).astype(np.float32)
    x[1, 5:40] = 0.0
    q, dx = q35.fast.gemm.quantize_activations(x, 64)
    assert q.shape == x.shape and dx.shape == (3, 4)
    for b in range(3):
        codes, scales = pyref.quantize_activations(x[b].astype(np.float64).tolist(), 64)
        assert q[b].tolist() == codes and dx[b].tolist() == scales


def test_a8_error_is_a8_sized():
    """A8 differs from the exact float product by about the int8 rounding of x: small, never zero-sized."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 512)).astype(np.float32)
    x = rng.standard_normal((4, 512)).astype(np.float32)
    qt = q35.quantize(w, 128)
    exact = pyref.matmul(x, qt).astype(np.float64)
    a8 = q35.matmul(x, qt, activations="a8").astype(np.float64)
    rel = np.linalg.norm(a8 - exact) / np.linalg.norm(exact)
    assert 1e-4 < rel < 1e-2, rel


@pytest.mark.parametrize("activations", ["float", "a8"])
def test_group_sums_beyond_binary32_are_exact(activations):
    """Σx of a group above the binary32 range once gave NaN on the float path (z·inf); both paths now agree with
    the reference, which computes in binary64."""
    w = np.array([[0.5, -0.25] * 8, [1.0, 0.0] * 8, [0.0] * 16], dtype=np.float32)
    qt = q35.quantize(w, 16)
    for x in (np.full(16, 2.2e37, np.float32), np.full((2, 16), -3.0e38, np.float32)):
        ref = pyref.matmul_a8(x, qt) if activations == "a8" else pyref.matmul(x, qt)
        with np.errstate(over="ignore"):
            fast = q35.matmul(x, qt, activations=activations)
        assert not np.isnan(fast).any()
        assert np.array_equal(np.isinf(ref), np.isinf(fast))
        finite = np.isfinite(ref)
        assert np.allclose(fast[finite], ref[finite], rtol=1e-5, atol=0)


def test_issue_example_no_longer_nan():
    qt = q35.quantize(np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32), 16)
    x = np.full(16, 2.2e37, np.float32)
    for act in ("float", "a8"):
        with np.errstate(over="ignore"):
            y = q35.matmul(x, qt, activations=act)
        assert not np.isnan(y).any(), (act, y)


@pytest.mark.parametrize("bad", [0, 8, 24, 4112, -16, 1.5, True, None])
def test_bad_a8_block_is_named(bad):
    qt = q35.quantize(np.ones((2, 32), np.float32), 16)
    with pytest.raises((ValueError, TypeError), match="a8 block"):
        q35.matmul(np.ones(32, np.float32), qt, activations="a8", a8_block=bad)
    with pytest.raises((ValueError, TypeError), match="a8 block"):
        pyref.matmul_a8(np.ones(32, np.float32), qt, bad)


@pytest.mark.parametrize("bad", [0, -1, 2.0, "2"])
def test_bad_thread_count_is_named(bad):
    qt = q35.quantize(np.ones((2, 32), np.float32), 16)
    with pytest.raises(ValueError, match="threads"):
        q35.matmul(np.ones(32, np.float32), qt, threads=bad)


def test_bad_activations_mode_is_named():
    qt = q35.quantize(np.ones((2, 32), np.float32), 16)
    with pytest.raises(ValueError, match="activations"):
        q35.matmul(np.ones(32, np.float32), qt, activations="int4")


@given(w=weights(max_rows=5, max_cols=64), g=group_sizes, batch=st.integers(q35.fast.gemm.BLAS_MIN_BATCH, 40),
       data=st.data())
def test_float_prefill_path_within_derived_bound(w, g, batch, data):
    """Batches of BLAS_MIN_BATCH rows or more take dequantized tiles times BLAS: still within SPEC §5's bound."""
    from strategies import activations, matmul_tolerance
    assert batch >= q35.fast.gemm.BLAS_MIN_BATCH
    qt = q35.quantize(w, g)
    x = data.draw(activations(w.shape[1], batch))
    ref, fast = pyref.matmul(x, qt), q35.matmul(x, qt)
    tol = matmul_tolerance(x, qt, q35.unpack_codes(qt.packed, w.shape[1]))
    _check(bool((np.abs(ref.astype(np.float64) - fast) <= tol).all()), f"prefill path above the bound, {w.shape}")
