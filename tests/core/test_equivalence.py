"""Fortran (through q35) vs pyref: bit for bit on codes, bytes, scales, zeros and dequantized values;
matmul within the bound SPEC §5 derives. Every example is counted (conftest prints the total)."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import q35
import q35.reference as pyref
from conftest import EQUIVALENCE
from strategies import activations, arbitrary_qtensors, codes, group_sizes, lattice_codes, matmul_tolerance, weights


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


def _dequantize_formula(codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray, g: int) -> np.ndarray:
    """SPEC §5 written out: f32(z + s·L) in binary64, for any binary32 scales and zeros."""
    cols = np.arange(codes.shape[1]) // g
    with np.errstate(over="ignore"):
        return (zeros.astype(np.float64)[:, cols] + scales.astype(np.float64)[:, cols] * lattice_codes(codes)
                ).astype(np.float32)


def _binary32_values(rng, shape, max_exp: int) -> np.ndarray:
    """m·2^e with m odd of 1..24 bits (so every precision around the fast path's 20-bit limit occurs) and
    |value| spread over 2^-150 .. 2^max_exp, around the 2^-24 grid and the 2^18 bound."""
    bits = rng.integers(1, 25, shape)
    m = (2**(bits - 1) + rng.integers(0, 2**23, shape) % 2**(bits - 1)) | 1
    e = rng.integers(-150, max_exp, shape) - bits
    return np.ldexp(m.astype(np.float64), e).astype(np.float32)


@st.composite
def binary32_parameters(draw, shape: tuple[int, int]):
    """Scales > 0 and zeros of any binary32 precision (binary16 values mixed in), so the kernel's binary32 fast
    path (valid QTensors) and its general binary64 path both run, also within one row."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    narrow = draw(st.booleans())        # mostly near the fast path's limits, or anywhere in binary32
    scales = _binary32_values(rng, shape, 20 if narrow else 128)
    zeros = _binary32_values(rng, shape, 20 if narrow else 128) * rng.choice([-1, 1], shape).astype(np.float32)
    centred = rng.random(shape) < 0.4   # z = -zp·s as compact grids have: z + s·L cancels, exposing any rounding
    zp_s = rng.integers(0, 16, centred.sum()) * scales[centred].astype(np.float64)
    zeros[centred] = -np.minimum(zp_s, np.finfo(np.float32).max).astype(np.float32)
    easy = rng.random(shape) < 0.2      # binary16 values, exact in binary32: the fast path's case
    scales[easy] = np.maximum(np.abs(rng.standard_normal(easy.sum())), 2.0**-24).astype(np.float16)
    zeros[easy] = (rng.standard_normal(easy.sum()) * 10.0).astype(np.float16)
    scales[scales == 0] = np.float32(2.0**-149)
    return scales, zeros


@given(c=codes(max_rows=5, max_cols=100), g=group_sizes, threads=st.sampled_from([1, 2, 3]), data=st.data())
def test_dequantize_kernel_any_binary32_parameters(c, g, threads, data):
    """The Fortran dequantize gives SPEC §5's bits for any finite binary32 scales and zeros, not only for the
    binary16-exact ones of valid QTensors (whose groups take the binary32 fast path)."""
    n, k = c.shape
    gk = min(g or k, k)
    scales, zeros = data.draw(binary32_parameters((n, -(-k // gk))))
    packed = pyref.pack_codes(c).view(np.int8)
    w, info = q35.fast.extension.ext.q35_dequantize(packed.T, scales.T, zeros.T, k, gk, threads)
    _check(info == 0 and _same_bits(np.ascontiguousarray(w.T), _dequantize_formula(c, scales, zeros, gk)),
           f"dequantize kernel differs from SPEC §5's formula, shape {c.shape}, group {gk}, threads {threads}")


@given(qc=arbitrary_qtensors(), data=st.data())
def test_dequantize_does_not_depend_on_thread_count(qc, data):
    qt, _ = qc
    ref = pyref.dequantize(qt)
    outs = [q35.dequantize(qt, threads=t) for t in (1, 2, data.draw(st.integers(3, 9)))]
    _check(all(_same_bits(ref, o) for o in outs), f"dequantize depends on the thread count, shape {qt.shape}")


@given(w=weights(max_rows=40, max_cols=300), g=group_sizes, tiny=st.booleans(), data=st.data(),
       batch=st.sampled_from([None, 1, 3, 4, 7, q35.fast.gemm.BLAS_MIN_BATCH]))
def test_float_matmul_does_not_depend_on_thread_count(w, g, tiny, data, batch):
    """Every float path (fused fast kernel, its portable variant for tiny x, dequantized tiles times BLAS) splits
    rows over threads without changing a bit."""
    kw = q35.kernel_weights(q35.quantize(w, g))
    x = data.draw(activations(w.shape[1], batch))
    if tiny:                             # |x| < 2^-100 somewhere: the fused kernel's portable path
        x[..., ::3] *= np.float32(2.0**-110)
    outs = [q35.matmul_kernel(x, kw, threads=t) for t in (1, 2, 3, 7)]
    _check(all(_same_bits(o, outs[0]) for o in outs), f"float matmul depends on the thread count, shape {w.shape}")
