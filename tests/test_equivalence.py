"""Fortran (through q35) vs pyref: bit for bit on codes, bytes, scales, zeros and dequantized values;
matmul within the bound SPEC §5 derives. Every example is counted (conftest prints the total)."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35
import q35.reference as pyref
from conftest import EQUIVALENCE
from strategies import activations, arbitrary_qtensors, codes, group_sizes, matmul_tolerance, weights


def _check(ok: bool, what: str) -> None:
    EQUIVALENCE["examples"] += 1
    if not ok:
        EQUIVALENCE["mismatches"] += 1
    assert ok, what


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@given(w=weights(), g=group_sizes)
def test_quantize_bit_exact(w, g):
    ref, fast = pyref.quantize(w, g), q35.quantize(w, g)
    same = (ref.shape == fast.shape and ref.group_size == fast.group_size and _same_bits(ref.packed, fast.packed)
            and _same_bits(ref.scales, fast.scales) and _same_bits(ref.zeros, fast.zeros))
    _check(same, f"quantize differs for shape {w.shape}, group {g}")
    assert np.array_equal(pyref.unpack_codes(ref.packed, w.shape[1]), q35.unpack_codes(fast.packed, w.shape[1]))


@given(w=weights(), g=group_sizes)
def test_dequantize_bit_exact(w, g):
    qt = q35.quantize(w, g)
    _check(_same_bits(pyref.dequantize(qt), q35.dequantize(qt)), f"dequantize differs, shape {w.shape}, group {g}")


@given(arbitrary_qtensors())
def test_dequantize_bit_exact_any_payload(qc):
    qt, _ = qc
    _check(_same_bits(pyref.dequantize(qt), q35.dequantize(qt)), f"dequantize differs, shape {qt.shape}")


@given(w=weights(max_rows=5, max_cols=64), g=group_sizes, batch=st.sampled_from([None, 1, 2, 4]), data=st.data())
def test_matmul_within_derived_bound(w, g, batch, data):
    qt = q35.quantize(w, g)
    x = data.draw(activations(w.shape[1], batch))
    ref, fast = pyref.matmul(x, qt), q35.matmul(x, qt)
    assert ref.shape == fast.shape == (x.shape[:-1] + (w.shape[0],))
    tol = matmul_tolerance(x.reshape(-1, w.shape[1]), qt, q35.unpack_codes(qt.packed, w.shape[1]))
    err = np.abs(ref.astype(np.float64) - fast.astype(np.float64)).reshape(tol.shape)
    _check(bool((err <= tol).all()), f"matmul error {err.max():.3g} above the SPEC §5 bound, shape {w.shape}")


@given(codes())
def test_pack_unpack_bit_exact(c):
    ref, fast = pyref.pack_codes(c), q35.pack_codes(c)
    same = _same_bits(ref, fast) and np.array_equal(pyref.unpack_codes(ref, c.shape[1]),
                                                    q35.unpack_codes(fast, c.shape[1]))
    _check(same, f"pack/unpack differs for codes of shape {c.shape}")


@given(w=weights(max_rows=4, max_cols=70), g=group_sizes, permute=st.booleans(), data=st.data())
def test_compact_search_bit_exact(w, g, permute, data):
    """SPEC §8: the importance-weighted search picks the same grid, codes and bytes in Fortran and pyref."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    importance = (rng.random(w.shape[1]) * rng.choice([0.0, 1.0, 1e3], size=w.shape[1])).astype(np.float32)
    kw = dict(scale_format="compact", importance=importance, permute=permute)
    ref, fast = pyref.quantize(w, g, **kw), q35.quantize(w, g, **kw)
    same = all(_same_bits(getattr(ref, f), getattr(fast, f)) for f in
               ("packed", "scales", "zeros", "row_scales", "group_codes"))
    same = same and (not permute or _same_bits(ref.perm, fast.perm))
    same = same and _same_bits(pyref.dequantize(ref), q35.dequantize(fast))
    _check(same, f"compact quantize differs for shape {w.shape}, group {g}, permute {permute}")
