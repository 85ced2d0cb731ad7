"""Properties of the format (SPEC §2-§5), checked on the fast path users call (q35) and on pyref."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import q35
import q35.reference as pyref
from strategies import activations, codes, group_sizes, lattice_codes, matmul_tolerance, weights

IMPLS = [pytest.param(q35, id="bridge"), pytest.param(pyref, id="pyref")]


@pytest.mark.parametrize("impl", IMPLS)
@given(c=codes())
def test_unpack_inverts_pack(impl, c):
    assert np.array_equal(impl.unpack_codes(impl.pack_codes(c), c.shape[1]), c)


@given(w=weights(), g=group_sizes)
def test_codes_within_ranges_and_payload_length(w, g):
    qt = q35.quantize(w, g)
    n, k = w.shape
    assert qt.packed.shape == (n, 7 * -(-k // 16))  # ceil(K/16)*7 bytes per row
    c = q35.unpack_codes(qt.packed, k).astype(int)
    assert c[:, 0::2].min() >= pyref.LO4 and c[:, 0::2].max() <= pyref.HI4
    assert c[:, 1::2].min(initial=0) >= pyref.LO3 and c[:, 1::2].max(initial=0) <= pyref.HI3


@given(w=weights(), g=group_sizes)
def test_error_at_most_half_step(w, g):
    """|w - ŵ| <= s/2 on 4-bit lanes and <= s (half of the 3-bit step 2s) on 3-bit lanes (SPEC §3)."""
    qt = q35.quantize(w, g)
    k = w.shape[1]
    s = qt.scales.astype(np.float64)[:, np.arange(k) // qt.group_size]
    half_step = np.where(np.arange(k) % 2 == 0, 0.5, 1.0) * s
    exact = qt.zeros.astype(np.float64)[:, np.arange(k) // qt.group_size] + s * lattice_codes(
        q35.unpack_codes(qt.packed, k))
    err = np.abs(w.astype(np.float64) - exact)
    assert (err <= half_step * (1 + 1e-9)).all(), f"max error / half step = {(err / half_step).max()}"
    # and the stored binary32 result is that lattice point rounded once
    assert np.array_equal(q35.dequantize(qt), exact.astype(np.float32))


@given(w=weights(max_cols=64), g=group_sizes, batch=st.sampled_from([None, 3]), data=st.data())
def test_matmul_matches_dequantized_product(w, g, batch, data):
    qt = q35.quantize(w, g)
    x = data.draw(activations(w.shape[1], batch))
    exact = x.astype(np.float64) @ q35.dequantize(qt).astype(np.float64).T
    tol = matmul_tolerance(x.reshape(-1, w.shape[1]), qt, q35.unpack_codes(qt.packed, w.shape[1]))
    err = np.abs(q35.matmul(x, qt) - exact).reshape(tol.shape)
    assert (err <= tol).all()


@given(k=st.integers(1, 5000), g=group_sizes)
def test_all_in_bits_formula_matches_encoded_sizes(k, g):
    gs = g or k
    formula = 56 * -(-k // 16) / k + 32 * -(-k // gs) / k
    assert pyref.all_in_bits_per_weight(k, g) == pytest.approx(formula, rel=1e-12)
    qt = q35.quantize(np.ones((2, k), np.float32), g)
    assert qt.bits_per_weight == pytest.approx(formula, rel=1e-12)
    assert qt.nbytes == pyref.encoded_nbytes(2, k, g)["total"]


def test_llama_7b_shape_payload_is_exactly_3_5_bits():
    w = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    qt = q35.quantize(w, 128)
    assert qt.packed.nbytes == 4096 * -(-4096 // 16) * 7 == 4096 * 4096 * 7 // 16
    assert qt.bits_per_weight == pytest.approx(3.5 + 32 / 128)


def test_constant_and_binary16_groups_reconstruct_exactly():
    for value in [0.0, -0.0, 1.0, -3.25, 65504.0, -65504.0, 2.0**-24]:
        w = np.full((2, 40), value, np.float32)
        for impl in (q35, pyref):
            assert np.array_equal(impl.dequantize(impl.quantize(w, 16)), np.abs(w) if value == 0 else w)


def test_signed_zero_never_stored_as_zero_point():
    w = np.array([[-0.0, 0.0, -0.0, 0.0] * 4], np.float32)
    for impl in (q35, pyref):
        assert not np.signbit(impl.quantize(w, 16).zeros).any()


@given(w=weights(), g=group_sizes)
def test_zero_point_below_min_and_grid_covers_max(w, g):
    qt = q35.quantize(w, g)
    k = w.shape[1]
    cols = np.arange(k) // qt.group_size
    z, s = qt.zeros.astype(np.float64)[:, cols], qt.scales.astype(np.float64)[:, cols]
    assert (z <= w).all()
    assert (w <= z + 15 * s * (1 + 1e-12)).all()


def _weighted_error(w, w_hat, a):
    return ((w.astype(np.float64) - w_hat.astype(np.float64)) ** 2 * a.astype(np.float64)).sum(axis=1)


@given(w=weights(max_cols=64), g=group_sizes, data=st.data())
def test_compact_search_beats_its_centred_candidate(w, g, data):
    """SPEC §8: per group, the chosen grid's weighted error is <= that of the centred (c0, zc) candidate,
    recomputed here independently with numpy."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.random(w.shape[1]).astype(np.float32)
    qt = q35.quantize(w, g, scale_format="compact", importance=a)
    k, gs = w.shape[1], qt.group_size
    w_hat = q35.dequantize(qt).astype(np.float64)
    d = qt.row_scales.astype(np.float64)
    lanes = np.arange(k) % 2 == 0
    for j, start in enumerate(range(0, k, gs)):
        cols = slice(start, min(start + gs, k))
        wg = w[:, cols].astype(np.float64)
        lo, hi = np.minimum(wg.min(1), 0), np.maximum(wg.max(1), 0)
        c0 = np.clip(np.ceil((hi - lo) / 15 / d), 1, 63)
        s = d * c0
        zp = np.clip(np.floor(8 - (lo + hi) / (2 * s)), 0, 15)
        t = (wg + (zp * s)[:, None]) / s[:, None]
        even = lanes[cols]
        lat = np.where(even, np.clip(np.floor(t + 0.5), 0, 15), 2 * np.clip(np.floor(t * 0.5 + 0.5), 0, 7))
        centred = (lat - zp[:, None]) * s[:, None]
        chosen_err = _weighted_error(wg, w_hat[:, cols], a[cols])
        assert (chosen_err <= _weighted_error(wg, centred, a[cols]) * (1 + 1e-9) + 1e-300).all()
        sc, zpc = qt.group_codes[:, j] & 63, qt.group_codes[:, j] >> 6
        assert ((sc >= 1) & (sc <= 63) & (zpc <= 15)).all()


@given(k=st.integers(1, 300), data=st.data())
def test_importance_permutation_puts_important_channels_on_4bit_lanes(k, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.random(k).astype(np.float32)
    perm = pyref.importance_permutation(a).astype(int)
    assert sorted(perm) == list(range(k))
    assert a[perm[0::2]].min() >= a[perm[1::2]].max(initial=-1)


@given(w=weights(max_cols=64), g=group_sizes, fmt=st.sampled_from(["f16", "compact"]), data=st.data())
def test_permuted_matmul_and_dequantize_in_original_column_order(w, g, fmt, data):
    a = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).random(w.shape[1]).astype(np.float32)
    qt = q35.quantize(w, g, scale_format=fmt, importance=a, permute=True)
    x = data.draw(activations(w.shape[1], 2))
    w_hat = q35.dequantize(qt)
    exact = x.astype(np.float64) @ w_hat.astype(np.float64).T
    xp = x[:, qt.perm.astype(int)]
    tol = matmul_tolerance(xp, qt, q35.unpack_codes(qt.packed, w.shape[1]))
    assert (np.abs(q35.matmul(x, qt) - exact) <= tol).all()
    # same codes as quantizing the permuted matrix directly: the permutation is only a column gather
    direct = q35.quantize(np.ascontiguousarray(w[:, qt.perm.astype(int)]), g, scale_format=fmt,
                          importance=a[qt.perm.astype(int)] if fmt == "compact" else None)
    assert direct.packed.tobytes() == qt.packed.tobytes()


@given(k=st.integers(1, 3000), n=st.integers(1, 8), g=group_sizes, permute=st.booleans())
def test_compact_sizes_match_serialized_bytes(k, n, g, permute):
    gs = g or k
    n_groups = -(-k // gs)
    codes = list(np.random.default_rng(k).integers(0, 1024, n_groups))
    data = pyref.pack_group_codes(codes)
    assert len(data) == -(-10 * n_groups // 8)
    assert pyref.unpack_group_codes(data, n_groups) == codes
    formula = (56 * -(-k // 16) * n + (16 + 8 * len(data)) * n + (16 * k if permute else 0)) / (n * k)
    assert pyref.all_in_bits_per_weight(k, g, "compact", n, permute) == pytest.approx(formula, rel=1e-12)
