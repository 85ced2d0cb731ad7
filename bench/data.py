"""Data of the repository's tables and benchmarks, beside what the library fetches (q35.fetch).

* **The fixed evaluation text**: the four large English texts of the Canterbury corpus (``alice29``, ``asyoulik``,
  ``lcet10``, ``plrabn12``) from the ``brotli==1.2.1`` source distribution (``tests/testdata/``), then the four fixed
  Shakespeare plays (q35.fetch.DEFAULT_PLAYS). The held-out text is q35.fetch.heldout_documents().
* **SmolLM2-135M-Instruct** as q35.torch.loading loads it, plus :func:`verify_against_gguf`: every block linear
  checked bit for bit against ``gguf.quants.dequantize`` of the GGUF tensor.
* Helpers the tables need and the library does not: :func:`block_linear_weights`, :func:`swapped_weights` (a
  model's block linears temporarily replaced by given matrices), and :func:`run_pip` for installing the peers'
  packages (hqq, llama-cpp-python) into the benchmark environment: a repository script may do that; the library
  never does.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
import tarfile
from contextlib import contextmanager

import numpy as np

from q35 import fetch
from q35.fetch import (AcquisitionError, Text, cache_dir, calibration_documents, read_manifest,  # noqa: F401
                       write_manifest, fixed_plays, heldout_documents, sha256_file, sha256_text, smollm2_gguf)

BROTLI_SDIST = "brotli==1.2.1"
CANTERBURY = ("alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt")
# module-name suffixes of the block linear layers of a LLaMA-architecture model (transformers naming)
BLOCK_LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


class MissingDependency(RuntimeError):
    """A Python package needed for this step is not installed (message says how to install it)."""


def require(module: str, pip_spec: str | None = None):
    """Import ``module`` or raise :class:`MissingDependency` with a one-line install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        spec = pip_spec or module
        raise MissingDependency(f"missing package '{module}' ({e.__class__.__name__}: {e}); "
                                f"install it with: {sys.executable} -m pip install '{spec}'") from None


def run_pip(args: list[str]) -> None:
    """Run ``python -m pip <args>``; one-line :class:`AcquisitionError` on failure. Tests monkeypatch this."""
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()
        raise AcquisitionError(f"pip {' '.join(args)} failed (exit {r.returncode}): "
                               f"{tail[-1] if tail else 'no output'}")


def load_smollm2(verify: bool = True, threads: int | None = 2):
    """SmolLM2-135M-Instruct (q35.torch.loading.load_smollm2) for the tables: torch on ``threads`` threads (this
    process is a benchmark script) and, when ``verify``, every block linear checked against the GGUF."""
    torch = require("torch", "torch==2.13.0")
    require("gguf", "gguf>=0.10")
    require("accelerate", "accelerate>=0.30")
    from q35.torch.loading import load_smollm2 as load
    if threads:
        torch.set_num_threads(threads)
    model, tok, info = load()
    if verify:
        info["verify"] = verify_against_gguf(model, info["gguf_path"])
    return model, tok, info


def _gguf_name(hf_name: str) -> tuple[str, str]:
    """'model.layers.3.self_attn.q_proj' -> ('blk.3.attn_q.weight', 'q')."""
    parts = hf_name.split(".")
    layer = parts[2]
    kind = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
            "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}[parts[-1]]
    return f"blk.{layer}.{kind}.weight", parts[-1][0]


def verify_against_gguf(model, path) -> dict:
    """Check every block linear of ``model`` equals ``gguf.quants.dequantize`` of the GGUF tensor (q/k with
    llama.cpp's rotary row permutation undone). Raises :class:`AcquisitionError` on any mismatch."""
    gguf = require("gguf", "gguf>=0.10")
    reader = gguf.GGUFReader(str(path))
    tensors = {t.name: t for t in reader.tensors}
    cfg = model.config
    n = 0
    types = {}
    for name, w in block_linear_weights(model).items():
        gname, kind = _gguf_name(name)
        t = tensors[gname]
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(w.shape)
        if kind in ("q", "k"):
            heads = cfg.num_attention_heads if kind == "q" else cfg.num_key_value_heads
            a = a.reshape(heads, a.shape[0] // heads // 2, 2, a.shape[1]).swapaxes(1, 2).reshape(w.shape)
        if not np.array_equal(a, w):
            raise AcquisitionError(f"{name} differs from GGUF tensor {gname} after dequantization")
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        n += 1
    return {"block_linears_checked": n, "all_equal": True, "gguf_types": types}


def block_linear_weights(model) -> dict:
    """Block linear layers of a LLaMA-architecture model: ``{module name: float32 numpy [out, in]}``.

    Covers q/k/v/o and gate/up/down of every decoder layer, in model order (copies, not views)."""
    out = {}
    for name, mod in model.named_modules():
        if name.startswith("model.layers.") and name.endswith(BLOCK_LINEARS):
            out[name] = mod.weight.detach().to("cpu").float().numpy().copy()
    if not out:
        raise ValueError("no block linear layers found (expected LLaMA-style 'model.layers.N.*_proj')")
    return out


# ---------------------------------------------------------------------------------------------------------
# texts

def canterbury_texts() -> dict:
    """The four large English texts of the Canterbury corpus: ``{name: Text}`` (name without '.txt')."""
    d = cache_dir() / "canterbury"
    man = read_manifest(d)
    if man is None:
        archive = fetch.download(BROTLI_SDIST, cache_dir() / "downloads", sdist=True, what="Canterbury corpus texts")
        d.mkdir(parents=True, exist_ok=True)
        wanted = {f"tests/testdata/{n}": n for n in CANTERBURY}
        found = set()
        with tarfile.open(archive, "r:*") as tf:
            for m in tf.getmembers():
                rel = m.name.split("/", 1)[1] if "/" in m.name else m.name
                if rel in wanted and m.isfile():
                    (d / wanted[rel]).write_bytes(tf.extractfile(m).read())
                    found.add(wanted[rel])
        if found != set(CANTERBURY):
            raise AcquisitionError(f"{archive.name} lacks {sorted(set(CANTERBURY) - found)} under tests/testdata/")
        man = write_manifest(d, f"PyPI sdist {BROTLI_SDIST} ({archive.name}): tests/testdata/", list(CANTERBURY),
                              {"archive": archive.name, "archive_sha256": sha256_file(archive)})
    out = {}
    for n in CANTERBURY:
        # latin-1 would also decode; these files are ASCII (checked by the strict decode)
        text = (d / n).read_bytes().decode("utf-8")
        out[n[:-4]] = Text(n[:-4], text, sha256_text(text), f"{man['source']}{n}")
    return out


def eval_documents() -> list:
    """The fixed, ordered evaluation documents of the tables: the 4 Canterbury texts, then the 4 fixed plays."""
    return list(canterbury_texts().values()) + fixed_plays()


@contextmanager
def swapped_weights(model, weights: dict):
    """Context manager: set ``model``'s modules named in ``weights`` (``{module name: float32 [out, in]}``, e.g.
    from :func:`bench.data.block_linear_weights` or a quantizer) to those matrices; restore originals on exit."""
    torch = require("torch", "torch==2.13.0")
    mods = dict(model.named_modules())
    saved = {}
    try:
        with torch.no_grad():
            for name, w in weights.items():
                if name not in mods:
                    raise KeyError(f"model has no module {name!r}")
                p = mods[name].weight
                w = torch.as_tensor(np.asarray(w, dtype=np.float32))
                if tuple(w.shape) != tuple(p.shape):
                    raise ValueError(f"{name}: replacement shape {tuple(w.shape)} != {tuple(p.shape)}")
                saved[name] = p.detach().clone()
                p.copy_(w.to(p.dtype))
        yield model
    finally:
        with torch.no_grad():
            for name, orig in saved.items():
                mods[name].weight.copy_(orig)
