"""Fuzzing saved q35 model directories: Hypothesis tampers with a saved tiny model — bit flips anywhere
in the weights file, truncation, edited config.json fields, edited safetensors metadata, swapped tensors — and
every outcome must be "loads bit-identically" or "one ValueError", never a silent difference or another
exception. The counts per class are printed at the end of the run (tests/conftest.py)."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import q35
from q35.torch import checkpoint
from tiny_models import quantized

FUZZ_COUNTS: dict[str, dict[str, int]] = {}
WEIGHTS, CONFIG = checkpoint.WEIGHTS_NAME, checkpoint.CONFIG_NAME
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    model = quantized("qwen2", q35.QuantConfig(group_size=32, permute=True), seed=21)
    out = q35.save_pretrained(model, tmp_path_factory.mktemp("fuzz") / "q")
    loaded = q35.from_pretrained(out)
    state = {k: v.contiguous().view(-1).view(torch.uint8).clone() for k, v in loaded.state_dict().items()}
    return out, state


def _outcome(kind: str, directory: Path, state: dict) -> str:
    """Load the tampered directory and classify what happened; anything but identical/error fails the test."""
    counts = FUZZ_COUNTS.setdefault(kind, {"inputs": 0, "clear error": 0, "identical load": 0, "other": 0})
    counts["inputs"] += 1
    try:
        model = q35.from_pretrained(directory)
    except ValueError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), f"not a one-line error: {exc!r}"
        counts["clear error"] += 1
        return "clear error"
    except Exception as exc:  # noqa: BLE001 - the point of the fuzz test
        counts["other"] += 1
        raise AssertionError(f"{kind}: {type(exc).__name__}: {exc}") from exc
    got = model.state_dict()
    same = set(got) == set(state) and all(
        got[k].contiguous().view(-1).view(torch.uint8).equal(state[k]) for k in state)
    if not same:
        counts["other"] += 1
        raise AssertionError(f"{kind}: loaded a different model without an error")
    counts["identical load"] += 1
    return "identical load"


def _copy(original) -> Path:
    d = Path(tempfile.mkdtemp(prefix="q35-fuzz-")) / "q"
    shutil.copytree(original, d)
    return d


@settings(max_examples=150, **SETTINGS)
@given(where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7), header_bias=st.booleans())
def test_bit_flips_anywhere_in_the_weights_file(original, where, bit, header_bias):
    d = _copy(original[0])
    raw = bytearray((d / WEIGHTS).read_bytes())
    header_end = 8 + int.from_bytes(raw[:8], "little")
    span = header_end if header_bias else len(raw)
    raw[int(where * span)] ^= 1 << bit
    (d / WEIGHTS).write_bytes(bytes(raw))
    _outcome("bit flip", d, original[1])
    shutil.rmtree(d.parent)


@settings(max_examples=60, **SETTINGS)
@given(where=st.floats(0, 1, exclude_max=True))
def test_truncation(original, where):
    d = _copy(original[0])
    raw = (d / WEIGHTS).read_bytes()
    (d / WEIGHTS).write_bytes(raw[:int(where * len(raw))])
    assert _outcome("truncation", d, original[1]) == "clear error"
    shutil.rmtree(d.parent)


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=True),
                        st.text(max_size=8), st.lists(st.integers(-3, 100000), max_size=3),
                        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def _paths(node, prefix=()):
    """Every key path of a JSON document (dicts and lists)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield prefix + (k,)
        yield from _paths(v, prefix + (k,))


@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), verify=st.booleans())
def test_edited_config_fields(original, data, verify):
    """Edits anywhere in config.json. Verified loads catch them by the config digest. Unverified loads skip the
    digests, so only structural checks remain: they must refuse every structural edit of the quantization metadata
    (layer shapes, bias, scale format, permutation flags, aliases, version) or load the same model. (A group-size
    edit that keeps the group count is structurally valid: only the digest catches it, see docs/reliability.md.)"""
    d = _copy(original[0])
    cfg = json.loads((d / CONFIG).read_text())
    structural = {"quantization_config": {k: v for k, v in cfg["quantization_config"].items()
                                          if k in ("layers", "aliases", "format_version")}}
    paths = list(_paths(cfg)) if verify else [p for p in _paths(structural) if p[-1] != "group_size"]
    path = data.draw(st.sampled_from(paths))
    parent = cfg
    for k in path[:-1]:
        parent = parent[k]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    (d / CONFIG).write_text(json.dumps(cfg))
    kind = "config edit (verified)" if verify else "quantization metadata edit (unverified)"
    FUZZ_COUNTS.setdefault(kind, {"inputs": 0, "clear error": 0, "identical load": 0, "other": 0})
    try:
        model = q35.from_pretrained(d, verify=verify)
    except ValueError:
        FUZZ_COUNTS[kind]["inputs"] += 1
        FUZZ_COUNTS[kind]["clear error"] += 1
    else:
        FUZZ_COUNTS[kind]["inputs"] += 1
        got = model.state_dict()
        same = set(got) == set(original[1]) and all(
            got[k].contiguous().view(-1).view(torch.uint8).equal(original[1][k]) for k in original[1])
        FUZZ_COUNTS[kind]["identical load" if same else "other"] += 1
        assert same, f"{kind} at {path} loaded a different model"
    shutil.rmtree(d.parent)


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_swapped_tensors(original, data):
    d = _copy(original[0])
    tensors = load_file(str(d / WEIGHTS))
    raw = (d / WEIGHTS).read_bytes()
    meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
    by_kind: dict = {}
    for name, t in tensors.items():
        by_kind.setdefault((t.dtype, tuple(t.shape)), []).append(name)
    groups = [names for names in by_kind.values() if len(names) > 1]
    names = data.draw(st.sampled_from(groups))
    a, b = data.draw(st.permutations(names))[:2]
    tensors[a], tensors[b] = tensors[b], tensors[a]
    save_file(tensors, str(d / WEIGHTS), metadata=meta)
    _outcome("swapped tensors", d, original[1])
    shutil.rmtree(d.parent)


@settings(max_examples=40, **SETTINGS)
@given(key=st.sampled_from(["format", "q35_format_version", "config_sha256"]), value=st.text(max_size=70))
def test_edited_safetensors_metadata(original, key, value):
    d = _copy(original[0])
    tensors = load_file(str(d / WEIGHTS))
    raw = (d / WEIGHTS).read_bytes()
    meta = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
    meta[key] = value
    save_file(tensors, str(d / WEIGHTS), metadata=meta)
    _outcome("safetensors metadata edit", d, original[1])
    shutil.rmtree(d.parent)


def test_every_class_was_hit():
    """The counts the closing note quotes: every class ran, and nothing but errors and identical loads."""
    for kind in ("bit flip", "truncation", "config edit (verified)", "quantization metadata edit (unverified)",
                 "swapped tensors", "safetensors metadata edit"):
        counts = FUZZ_COUNTS.get(kind)
        assert counts and counts["inputs"] > 0 and counts["other"] == 0, (kind, counts)
        assert counts["clear error"] > 0, (kind, counts)
