"""A quantized model as a Hugging Face-style directory, and loading it back with every byte checked.

Directory (written by :func:`save_pretrained`):

- ``config.json``: the model's transformers config plus ``quantization_config`` = {``quant_method: "q35"``,
  ``format_version``, the q35 configuration, ``layers`` (one spec per packed layer: shape, group size, scale
  format, permutation, bias), ``float_dtype``, ``tensor_digests`` (SHA-256 of every tensor's bytes)};
- ``model.safetensors``: every tensor once (tied ones once, with their aliases named in the metadata); packed
  layers as their q35 buffers, 2-D float tensors (embeddings, lm_head) in ``float_dtype`` (default binary16, or the
  model's own 16-bit dtype), 1-D ones (norms) in the model's dtype; its metadata holds the SHA-256 of config.json;
- the tokenizer files when a tokenizer is given.

:func:`from_pretrained` trusts nothing: it validates config.json's fields (one ``ValueError`` naming the field),
builds the model skeleton on the meta device, checks every tensor's name, dtype and shape in the safetensors header
against the skeleton *before* reading any data, verifies every digest (``verify=False`` skips only the hashing),
checks the q35 layers' value constraints (SPEC §6) and only then materialises the model.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .. import format as fmt
from .config import QuantConfig
from .models import check_supported, nonpersistent_buffer_dtypes, q35_layers, restore_nonpersistent_buffers
from .layer import Q35Linear

__all__ = ["save_pretrained", "from_pretrained", "read_quantization_config", "FORMAT_VERSION", "QUANT_METHOD",
           "WEIGHTS_NAME"]

FORMAT_VERSION = 1          # SPEC.md: "The q35 format, version 1"
QUANT_METHOD = "q35"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FLOAT_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
MAX_DIM = 1 << 20            # no real layer has a side above ~10^6: a bigger value is a corrupted file


# -- saving ----------------------------------------------------------------------------------------------------
def _dtype_name(dt: torch.dtype) -> str:
    return str(dt).removeprefix("torch.")


def tensor_digest(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and little-endian bytes."""
    a = t.detach().cpu().contiguous()
    raw = (a.view(torch.int16) if a.dtype == torch.bfloat16 else a).numpy().tobytes()
    h = hashlib.sha256(f"{_dtype_name(t.dtype)}{list(t.shape)}".encode())
    h.update(raw)
    return h.hexdigest()


def _canonical(d: dict) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def _layer_spec(m: Q35Linear) -> dict:
    return {"shape": [m.out_features, m.in_features], "group_size": m.group_size,
            "scale_format": m.scale_format, "permuted": m.perm is not None, "bias": m.bias is not None}


def _stored_tensors(model, float_dtype: torch.dtype) -> tuple[dict, dict]:
    """(name -> tensor to store, alias -> stored name): q35 buffers as they are, 2-D float tensors in
    float_dtype, the rest (norms) in their own dtype; tied tensors stored once."""
    qbuf = {f"{n}.{b}" for n, m in q35_layers(model).items() for b, _ in m.named_buffers(recurse=False)}
    tensors, aliases, seen = {}, {}, {}
    for name, t in model.state_dict(keep_vars=False).items():
        key = (t.data_ptr(), t.shape, t.dtype) if t.numel() else None
        if key is not None and key in seen:
            aliases[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        if name not in qbuf and t.is_floating_point() and t.dim() == 2:
            t = t.to(float_dtype)
        tensors[name] = t.detach().to("cpu").contiguous()
    return tensors, aliases


def save_pretrained(model, directory, tokenizer=None, float_dtype: str | None = None) -> Path:
    """Write the quantized ``model`` (and ``tokenizer``) to ``directory`` (see the module doc)."""
    from safetensors.torch import save_file

    qs = q35_layers(model)
    if not qs:
        raise ValueError("model has no Q35Linear layers: run q35.quantize_model first")
    src = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    if float_dtype is None:
        float_dtype = _dtype_name(src) if src in (torch.float16, torch.bfloat16) else "float16"
    if float_dtype not in FLOAT_DTYPES:
        raise ValueError(f"float_dtype must be one of {sorted(FLOAT_DTYPES)}, got {float_dtype!r}")
    tensors, aliases = _stored_tensors(model, FLOAT_DTYPES[float_dtype])
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)          # e.g. a GGUF source's: this checkpoint is q35 only
    cfg["torch_dtype"] = cfg["dtype"] = _dtype_name(src)
    q35cfg = getattr(model, "_q35_config", None)
    cfg["quantization_config"] = {
        "quant_method": QUANT_METHOD, "format_version": FORMAT_VERSION,
        "config": q35cfg.to_dict() if q35cfg is not None else None,
        "layers": {n: _layer_spec(m) for n, m in qs.items()}, "aliases": aliases, "float_dtype": float_dtype,
        "tensor_digests": {n: tensor_digest(t) for n, t in tensors.items()},
        "buffer_dtypes": nonpersistent_buffer_dtypes(model),
    }
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    cfg_bytes = json.dumps(cfg, indent=2, sort_keys=True, default=str).encode()
    (out / CONFIG_NAME).write_bytes(cfg_bytes)
    meta = {"format": QUANT_METHOD, "q35_format_version": str(FORMAT_VERSION),
            "config_sha256": hashlib.sha256(_canonical(json.loads(cfg_bytes))).hexdigest()}
    save_file(tensors, str(out / WEIGHTS_NAME), metadata=meta)
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out


# -- reading the metadata --------------------------------------------------------------------------------------
def _field(d, key, kind, where):
    if not isinstance(d, dict) or key not in d:
        raise ValueError(f"{where}: missing field '{key}'")
    v = d[key]
    if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise ValueError(f"{where}.{key}: expected an integer, got {v!r}")
    if kind is not int and not isinstance(v, kind):
        raise ValueError(f"{where}.{key}: expected {kind.__name__}, got {type(v).__name__}")
    return v


def check_layer_spec(name: str, spec) -> None:
    where = f"quantization_config.layers[{name!r}]"
    shape = _field(spec, "shape", list, where)
    if len(shape) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_DIM
                              for v in shape):
        raise ValueError(f"{where}.shape: expected [N, K] with 1 <= N, K <= {MAX_DIM}, got {shape!r}")
    g = _field(spec, "group_size", int, where)
    if not (g == shape[1] or (g > 0 and g % fmt.WEIGHTS_PER_BLOCK == 0 and g <= MAX_DIM)):
        raise ValueError(f"{where}.group_size: {g} is neither a positive multiple of 16 nor K={shape[1]}")
    if _field(spec, "scale_format", str, where) not in fmt.SCALE_FORMATS:
        raise ValueError(f"{where}.scale_format: {spec['scale_format']!r} is not one of {fmt.SCALE_FORMATS}")
    for flag in ("permuted", "bias"):
        _field(spec, flag, bool, where)
    if spec["permuted"] and shape[1] > fmt.MAX_PERMUTED_COLUMNS:
        raise ValueError(f"{where}: a permutation of {shape[1]} columns cannot be stored as uint16")


def read_quantization_config(directory) -> tuple[dict, dict]:
    """(config.json as a dict, its validated quantization_config); one ValueError naming any bad field."""
    path = Path(directory) / CONFIG_NAME
    try:
        cfg = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON config ({exc})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object")
    qc = _field(cfg, "quantization_config", dict, CONFIG_NAME)
    where = "quantization_config"
    if qc.get("quant_method") != QUANT_METHOD:
        raise ValueError(f"{where}.quant_method: {qc.get('quant_method')!r} is not {QUANT_METHOD!r}")
    if _field(qc, "format_version", int, where) != FORMAT_VERSION:
        raise ValueError(f"{where}.format_version: {qc['format_version']} is not supported (this build reads "
                         f"version {FORMAT_VERSION})")
    layers = _field(qc, "layers", dict, where)
    if not layers:
        raise ValueError(f"{where}.layers: empty")
    for name, spec in layers.items():
        check_layer_spec(name, spec)
    for key in ("aliases", "tensor_digests", "buffer_dtypes"):
        m = _field(qc, key, dict, where)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in m.items()):
            raise ValueError(f"{where}.{key}: expected a mapping of names to strings")
    if _field(qc, "float_dtype", str, where) not in FLOAT_DTYPES:
        raise ValueError(f"{where}.float_dtype: {qc['float_dtype']!r} is not one of {sorted(FLOAT_DTYPES)}")
    if qc.get("config") is not None:
        try:
            QuantConfig.from_dict(_field(qc, "config", dict, where))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}.config: {exc}") from None
    _field(cfg, "model_type", str, CONFIG_NAME)
    return cfg, qc


# -- loading ---------------------------------------------------------------------------------------------------
_ST_DTYPES = {torch.uint8: "U8", torch.uint16: "U16", torch.float16: "F16", torch.bfloat16: "BF16",
              torch.float32: "F32", torch.int64: "I64"}


def _skeleton(cfg: dict, qc: dict):
    """The model on the meta device (no memory), with a meta Q35Linear for every layer spec."""
    import transformers

    from .models import SUPPORTED_MODEL_TYPES, block_linears

    fields = {k: v for k, v in cfg.items() if k not in ("quantization_config", "model_type")}
    if cfg["model_type"] not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"config.json model_type {cfg['model_type']!r} is not a supported architecture "
                         f"({', '.join(SUPPORTED_MODEL_TYPES)})")
    try:
        config = transformers.AutoConfig.for_model(cfg["model_type"], **fields)
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(config)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types on a malformed config
        raise ValueError(f"config.json does not describe a buildable {cfg['model_type']} model: "
                         f"{type(exc).__name__}: {exc}") from None
    check_supported(model)
    linears = block_linears(model)
    for name, spec in qc["layers"].items():
        lin = linears.get(name)
        if lin is None:
            raise ValueError(f"quantization_config.layers: {name!r} is not a block linear of this model")
        n, k = spec["shape"]
        if (lin.out_features, lin.in_features) != (n, k) or (lin.bias is not None) != spec["bias"]:
            raise ValueError(f"quantization_config.layers[{name!r}]: shape {spec['shape']} / bias {spec['bias']} "
                             f"disagree with the model config ({lin.out_features}, {lin.in_features})")
        with torch.device("meta"):
            layer = Q35Linear(k, n, spec["bias"], spec["group_size"], spec["scale_format"], spec["permuted"])
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, layer)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    return model


def _expected(model, qc: dict) -> dict[str, torch.Tensor]:
    """Every tensor the file must hold: the skeleton's state minus the aliases (which must be tied there)."""
    state = model.state_dict(keep_vars=True)
    for alias, target in qc["aliases"].items():
        if alias not in state or target not in state or state[alias] is not state[target]:
            raise ValueError(f"quantization_config.aliases: {alias!r} -> {target!r} is not a pair of tied tensors "
                             "of this model")
    return {n: t for n, t in state.items() if n not in qc["aliases"]}


def _check_header(f, expected: dict, qbuf: set, path) -> None:
    keys = set(f.keys())
    if keys != set(expected):
        raise ValueError(f"{path}: tensors do not match the model (missing {sorted(set(expected) - keys)[:4]}, "
                         f"unexpected {sorted(keys - set(expected))[:4]})")
    for name, want in expected.items():
        sl = f.get_slice(name)
        shape, dt = list(sl.get_shape()), sl.get_dtype()
        ok_dtype = dt == _ST_DTYPES.get(want.dtype) if name in qbuf else dt in ("F16", "BF16", "F32")
        if shape != list(want.shape) or not ok_dtype:
            raise ValueError(f"{path}: tensor {name} is {dt} {shape}, the model needs {want.dtype} "
                             f"{list(want.shape)}")


def _read_tensors(path: Path, expected: dict, qbuf: set, qc: dict, verify: bool) -> dict:
    from safetensors import SafetensorError, safe_open

    cfg_sha = hashlib.sha256(_canonical(json.loads((path.parent / CONFIG_NAME).read_bytes()))).hexdigest()
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != QUANT_METHOD or meta.get("q35_format_version") != str(FORMAT_VERSION):
                raise ValueError(f"{path}: not a q35 version {FORMAT_VERSION} weights file")
            if verify and meta.get("config_sha256") != cfg_sha:
                raise ValueError(f"{path.parent / CONFIG_NAME} does not match the one saved with {path.name} "
                                 "(edited or swapped: SHA-256 mismatch)")
            _check_header(f, expected, qbuf, path)
            state = {}
            for name in expected:
                t = f.get_tensor(name)
                if verify and tensor_digest(t) != qc["tensor_digests"].get(name):
                    raise ValueError(f"{path}: tensor {name} is corrupted (SHA-256 mismatch)")
                state[name] = t
    except SafetensorError as exc:
        raise ValueError(f"{path}: truncated or corrupted safetensors file ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    return state


def from_pretrained(directory, dtype: torch.dtype | None = None, verify: bool = True):
    """Load a directory written by :func:`save_pretrained`: the same bits, in eval mode, on CPU.

    ``dtype``: compute dtype of the float tensors (default: the source model's); the q35 buffers never change.
    ``verify=False`` skips the SHA-256 checks (the structural and value checks always run)."""
    directory = Path(directory)
    cfg, qc = read_quantization_config(directory)
    model = _skeleton(cfg, qc)
    expected = _expected(model, qc)
    qbuf = {f"{n}.{b}" for n, m in q35_layers(model).items() for b, _ in m.named_buffers(recurse=False)}
    state = _read_tensors(directory / WEIGHTS_NAME, expected, qbuf, qc, verify)
    for alias, target in qc["aliases"].items():
        state[alias] = state[target]
    model.load_state_dict(state, strict=True, assign=True)
    for name, layer in q35_layers(model).items():
        try:
            layer.kernel_weights()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{directory / WEIGHTS_NAME}: layer {name}: {exc}") from None
    compute = dtype or FLOAT_DTYPES.get(str(cfg.get("dtype") or cfg.get("torch_dtype")), torch.float32)
    model.to(compute)
    restore_nonpersistent_buffers(model, qc["buffer_dtypes"])
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    model.config.quantization_config = qc
    model._q35_config = QuantConfig.from_dict(qc["config"]) if qc.get("config") else None
    return model.eval()
