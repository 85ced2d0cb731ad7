"""Hypothesis strategies shared by every property test: shapes, group sizes and value distributions.

Shapes cover K odd, K < 16, K not a multiple of the group size and per-row groups. Matrices come from named
distributions (normal, heavy-tailed, constant, tiny/subnormal, huge, mixed signs with signed zeros) drawn with
a Hypothesis-chosen seed, plus raw Hypothesis floats for adversarial values.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

F16_MAX = 65504.0
GROUP_SIZES = [16, 32, 48, 64, 128, None]
DISTRIBUTIONS = ["normal", "heavy", "constant", "tiny", "huge", "mixed", "outlier"]


@st.composite
def shapes(draw, max_rows: int = 6, max_cols: int = 80):
    n = draw(st.integers(1, max_rows))
    k = draw(st.one_of(st.integers(1, 15), st.integers(16, max_cols), st.sampled_from([16, 32, 47, 48, 63, 64])))
    return n, k


def make_matrix(dist: str, shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n, k = shape
    if dist == "normal":
        w = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 1)
    elif dist == "heavy":  # Student-t with 2 degrees of freedom: LLM-like outliers
        w = np.clip(rng.standard_t(2, shape) * 0.02, -F16_MAX, F16_MAX)
    elif dist == "constant":
        w = np.full(shape, rng.choice([0.0, -0.0, 1.0, -3.25, 0.1, 1e-6, 65504.0, -65504.0]))
    elif dist == "tiny":  # binary32 subnormals and values below the binary16 subnormal step
        w = rng.standard_normal(shape) * 10.0 ** rng.uniform(-44, -5)
    elif dist == "huge":
        w = rng.uniform(-F16_MAX, F16_MAX, shape)
    elif dist == "mixed":
        w = rng.standard_normal(shape) * rng.choice([1e-3, 1.0, 100.0], size=shape)
        w[rng.random(shape) < 0.2] = rng.choice([0.0, -0.0])
    else:  # "outlier": small values with a few large ones
        w = rng.standard_normal(shape) * 0.01
        w[rng.random(shape) < 0.05] = rng.choice([-1, 1]) * 50.0
    return np.asarray(w, dtype=np.float32)


finite_f32 = st.floats(-F16_MAX, F16_MAX, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)


@st.composite
def weights(draw, max_rows: int = 6, max_cols: int = 80):
    shape = draw(shapes(max_rows, max_cols))
    if draw(st.integers(0, 4)) == 0:  # raw Hypothesis floats, shrinkable to the exact bad value
        return draw(hnp.arrays(np.float32, shape, elements=finite_f32))
    return make_matrix(draw(st.sampled_from(DISTRIBUTIONS)), shape, draw(st.integers(0, 2**32 - 1)))


group_sizes = st.sampled_from(GROUP_SIZES)


@st.composite
def activations(draw, k: int, batch: int | None = None):
    """x of shape [K] (batch None) or [B, K], moderate magnitudes so products cannot overflow binary32."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (k,) if batch is None else (batch, k)
    x = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 2)
    x[rng.random(shape) < 0.1] = 0.0
    return x.astype(np.float32)


@st.composite
def codes(draw, max_rows: int = 4, max_cols: int = 96):
    """Per-weight codes: even columns in [0, 15], odd columns in [0, 7]."""
    n, k = draw(st.integers(1, max_rows)), draw(st.integers(1, max_cols))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    limits = np.where(np.arange(k) % 2 == 0, 16, 8)
    return (rng.integers(0, 2**16, (n, k)) % limits).astype(np.uint8)


def lattice_codes(codes: np.ndarray) -> np.ndarray:
    """L = q4 on even columns, 2·q3 on odd columns (SPEC §2)."""
    return codes.astype(np.int64) * np.where(np.arange(codes.shape[-1]) % 2 == 0, 1, 2)


def matmul_tolerance(x: np.ndarray, qt, codes: np.ndarray) -> np.ndarray:
    """SPEC §5: (K+4)·u·Σ|x|·(|z| + s·L) + (K+4)·2^-126 per output entry, u = 2^-24 (1% slack for the
    binary64 evaluation of the bound itself)."""
    k = qt.shape[1]
    cols = np.arange(k) // qt.group_size
    z = np.abs(qt.zeros.astype(np.float64))[:, cols]            # [N, K]
    s = qt.scales.astype(np.float64)[:, cols]
    magnitude = np.abs(x.astype(np.float64)) @ (z + s * lattice_codes(codes)).T
    return (k + 4) * 2.0**-24 * magnitude * 1.01 + (k + 4) * 2.0**-126


@st.composite
def arbitrary_qtensors(draw):
    """Any valid QTensor, not only what quantize produces: random codes, binary16 scales/zeros (and the codes)."""
    import q35.reference as pyref
    c = draw(codes(max_rows=4, max_cols=70))
    n, k = c.shape
    g = draw(group_sizes)
    ng = pyref.num_groups(k, g)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scales = np.abs(rng.standard_normal((n, ng)) * 10.0 ** rng.uniform(-7, 2)).astype(np.float16)
    scales[scales == 0] = np.float16(2.0**-24)
    zeros = (rng.standard_normal((n, ng)) * 10.0 ** rng.uniform(-7, 3)).astype(np.float16)
    return pyref.QTensor(pyref.pack_codes(c), scales, zeros, (n, k), pyref.effective_group_size(k, g)), c
