"""Fuzzing tampered QTensors: Hypothesis corrupts one field of a valid QTensor (bit flips in the payload,
non-finite or non-positive scales, out-of-range group codes, broken permutations, wrong dtypes and shapes) and
both implementations must answer alike: one ValueError/TypeError naming the field, or (when the tampered QTensor
is still valid) bit-identical dequantization. Never a crash, another exception, or a disagreement."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import q35
import q35.reference as pyref

FUZZ_COUNTS: dict[str, dict[str, int]] = {}


def _valid(seed: int, mode: str):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((3, 37)).astype(np.float32)
    if mode == "f16":
        return q35.quantize(w, 16)
    return q35.quantize(w, 16, scale_format="compact", importance=rng.random(37).astype(np.float32),
                        permute=mode == "compact+perm")


def _tamper(qt, field: str, draw):
    fields = {f: getattr(qt, f) for f in ("packed", "scales", "zeros", "row_scales", "group_codes", "perm")}
    shape, g = qt.shape, qt.group_size
    a = fields[field]
    if a is None:
        return None
    a = a.copy()
    how = draw(st.sampled_from(["bitflip", "special", "dtype", "shape"]))
    if how == "bitflip":
        flat = a.reshape(-1).view(np.uint8)
        i = draw(st.integers(0, flat.size - 1))
        flat[i] ^= np.uint8(1 << draw(st.integers(0, 7)))
    elif how == "special" and a.dtype.kind == "f":
        a.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0]))
    elif how == "special":
        top = int(np.iinfo(a.dtype).max)
        a.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(
            [v for v in (0, 63, 64, 127, 1023, top) if v <= top]))
    elif how == "dtype":
        a = a.astype(draw(st.sampled_from([np.float64, np.int32, np.uint8, np.float32])))
    else:
        a = a[..., :-1] if a.shape[-1] > 1 else np.concatenate([a, a], axis=-1)
    fields[field] = a
    return q35.QTensor(fields["packed"], fields["scales"], fields["zeros"], shape, g, qt.scale_format,
                       fields["row_scales"], fields["group_codes"], fields["perm"])


def _run(impl, qt):
    try:
        return "ok", impl.dequantize(qt)
    except (ValueError, TypeError) as exc:
        return "error", str(exc)


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2 ** 16), mode=st.sampled_from(["f16", "compact", "compact+perm"]),
       field=st.sampled_from(["packed", "scales", "zeros", "row_scales", "group_codes", "perm"]), data=st.data())
def test_tampered_qtensors_are_refused_or_identical_in_both_implementations(seed, mode, field, data):
    bad = _tamper(_valid(seed, mode), field, data.draw)
    if bad is None:
        return
    counts = FUZZ_COUNTS.setdefault(f"tampered QTensor.{field}",
                                    {"inputs": 0, "clear error": 0, "identical load": 0, "other": 0})
    counts["inputs"] += 1
    (kind_f, out_f), (kind_r, out_r) = _run(q35, bad), _run(pyref, bad)
    if kind_f == kind_r == "error":
        counts["clear error"] += 1
    elif kind_f == kind_r == "ok" and np.array_equal(out_f, out_r):
        counts["identical load"] += 1
    else:
        counts["other"] += 1
        raise AssertionError(f"fast {kind_f} / reference {kind_r}: {out_f!r:.200} / {out_r!r:.200}")


def test_every_field_was_tampered():
    for field in ("packed", "scales", "zeros", "row_scales", "group_codes", "perm"):
        c = FUZZ_COUNTS.get(f"tampered QTensor.{field}")
        assert c and c["inputs"] and c["clear error"] and not c["other"], (field, c)
