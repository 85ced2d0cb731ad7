"""Calibration statistics for the quantizers, measured with forward hooks on the float model.

Per input of every named linear layer: the mean squared activation of each input channel (the *importance* that
SPEC §8's search weights its error with, llama.cpp's imatrix statistic) and, on request, the second-moment matrix
``H = XᵀX / n`` over all calibration tokens (the Hessian of the layer's squared output error, GPTQ's input).
Layers fed the same tensor (q/k/v after one norm, gate/up after another) share one statistics object.

Calibration windows are cut like the evaluation windows (:func:`q35.eval.perplexity.build_eval_set`: same window
length, same leading ``<|endoftext|>`` token), so the attention sink of calibration matches evaluation. The default
texts are :func:`q35.fetch.calibration_documents` (Shakespeare plays disjoint from every evaluation text).
"""
from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..eval import perplexity

__all__ = ["LayerStats", "CalibrationSet", "calibration_windows", "collect_stats", "collect_stats_sequential",
           "text_documents", "DEFAULT_WINDOWS_PER_DOC"]

DEFAULT_WINDOWS_PER_DOC = 2     # 8 plays x 2 windows x 512 tokens = 8,192 calibration tokens by default


@dataclass
class LayerStats:
    """Second-moment statistics of one layer input over the calibration tokens."""
    importance: np.ndarray          # float32 [K]: mean x_k^2 per input channel
    hessian: np.ndarray | None      # float64 [K, K]: X^T X / tokens, or None when not collected
    tokens: int


@dataclass(frozen=True)
class TextDocument:
    """A calibration text given by the user (the shape q35.eval.perplexity.build_eval_set expects)."""
    name: str
    text: str
    sha256: str


def text_documents(paths) -> list[TextDocument]:
    """Read the user's calibration text files (UTF-8) as documents; one clear error for an unreadable file."""
    from ..fetch import sha256_text

    docs = []
    for p in paths:
        try:
            text = open(p, encoding="utf-8").read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"calibration text {p}: cannot be read as UTF-8 ({exc})") from None
        if not text.strip():
            raise ValueError(f"calibration text {p} is empty")
        docs.append(TextDocument(str(p), text, sha256_text(text)))
    return docs


@dataclass
class CalibrationSet:
    """Token windows for calibration; ``bos_id`` (when set) is prepended to every window, as in evaluation."""
    windows: np.ndarray     # int64 [W, window]
    bos_id: int | None
    docs: list              # document name of each window

    @property
    def tokens(self) -> int:
        return int(self.windows.size + (len(self.windows) if self.bos_id is not None else 0))

    def describe(self) -> str:
        lead = f"token {self.bos_id} prepended to each" if self.bos_id is not None else "no leading token"
        return (f"{len(self.windows)} windows of {self.windows.shape[1]} tokens from {len(set(self.docs))} "
                f"documents ({lead}; {self.tokens} tokens)")


def calibration_windows(tokenizer, documents=None, windows_per_doc: int = DEFAULT_WINDOWS_PER_DOC,
                        window: int = perplexity.DEFAULT_WINDOW) -> CalibrationSet:
    """The first ``windows_per_doc`` non-overlapping windows of each document, cut as the evaluation protocol cuts
    them (tokenized alone, no special tokens, the same leading token). A document shorter than that gives the
    whole windows it has; one without a single window is an error."""
    if documents is None:
        from ..fetch import calibration_documents
        documents = calibration_documents()
    wins, names = [], []
    for doc in documents:
        ids = np.asarray(tokenizer(doc.text, add_special_tokens=False)["input_ids"], dtype=np.int64)
        fits = min(windows_per_doc, len(ids) // window)
        if fits < 1:
            raise ValueError(f"calibration text {doc.name} has {len(ids)} tokens, fewer than one window of {window}")
        wins += [ids[i * window:(i + 1) * window] for i in range(fits)]
        names += [doc.name] * fits
    if not wins:
        raise ValueError("no calibration text given")
    return CalibrationSet(np.stack(wins), perplexity.default_bos_id(tokenizer), names)


class _Accumulator:
    def __init__(self, k: int, hessian: bool):
        import torch

        self.sumsq = torch.zeros(k, dtype=torch.float64)
        self.gram = torch.zeros(k, k, dtype=torch.float64) if hessian else None
        self.tokens = 0

    def add(self, x) -> None:
        xd = x.detach().reshape(-1, x.shape[-1]).to("cpu", dtype=self.sumsq.dtype)
        self.sumsq += (xd * xd).sum(0)
        if self.gram is not None:
            self.gram += xd.T @ xd
        self.tokens += xd.shape[0]

    def stats(self) -> LayerStats:
        n = max(self.tokens, 1)
        hess = None if self.gram is None else (self.gram / n).numpy()
        return LayerStats((self.sumsq / n).float().numpy(), hess, self.tokens)


class _Hooks:
    """Forward pre-hooks that accumulate the statistics of named linear layers. Layers fed one tensor (q/k/v,
    gate/up) are called one after another in a pass; they share one accumulator, found by tensor identity."""

    def __init__(self, modules: dict, layer_names, hessian: bool):
        self.acc: dict[str, _Accumulator] = {}
        self.owner: dict[str, str] = {}   # layer -> the layer whose accumulator it shares (same input tensor)
        # the last few inputs seen, held (so their memory cannot be reused) and compared by identity
        self.recent: deque = deque(maxlen=8)
        self.hessian = hessian
        self.handles = [modules[n].register_forward_pre_hook(self._hook(n)) for n in layer_names]

    def _hook(self, name):
        def pre(_module, inputs):
            x = inputs[0]
            first = next((n for t, n in self.recent if t is x), name)
            if first == name:
                self.recent.append((x, name))
            if self.owner.setdefault(name, first) != first:
                raise RuntimeError(f"calibration: {name} shared its input with {self.owner[name]} in one pass and "
                                   f"with {first} in another")
            if first == name:
                self.acc.setdefault(name, _Accumulator(x.shape[-1], self.hessian)).add(x)
        return pre

    def new_pass(self) -> None:
        self.recent.clear()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def stats(self, layer_names) -> dict[str, LayerStats]:
        shared = {name: self.acc[name].stats() for name in self.acc}
        return {name: shared[self.owner[name]] for name in layer_names}


def _token_batches(windows, batch_size: int):
    import torch

    ids = torch.as_tensor(windows.windows if hasattr(windows, "windows") else np.asarray(windows))
    bos = getattr(windows, "bos_id", getattr(getattr(windows, "protocol", None), "bos_id", None))
    if bos is not None:
        ids = torch.cat([torch.full((ids.shape[0], 1), bos, dtype=ids.dtype), ids], dim=1)
    return ids, [ids[b0:b0 + batch_size] for b0 in range(0, len(ids), batch_size)]


def collect_stats(model, windows, layer_names, hessian: bool = False, batch_size: int = 4,
                  progress: bool = True) -> dict[str, LayerStats]:
    """Run ``windows`` (a :class:`CalibrationSet`, an :class:`~q35.eval.perplexity.EvalSet` or an int array [W, T])
    through ``model`` and return ``{layer name: LayerStats}`` for every named module (inputs of linear layers)."""
    import torch

    modules = dict(model.named_modules())
    missing = [n for n in layer_names if n not in modules]
    if missing:
        raise ValueError(f"model has no modules {missing[:3]}")
    ids, batches = _token_batches(windows, batch_size)
    hooks = _Hooks(modules, layer_names, hessian)
    bar = _progress(batches, f"calibrating on {len(ids)} windows x {ids.shape[1]} tokens", progress)
    try:
        with torch.inference_mode():
            for batch in bar:
                hooks.new_pass()
                model(input_ids=batch, use_cache=False)
    finally:
        hooks.remove()
    return hooks.stats(layer_names)


class _StopForward(Exception):
    pass


def _block_inputs(model, blocks, batches) -> list[tuple]:
    """(hidden states, keyword arguments) that the first decoder block receives for each batch."""
    captured = []

    def grab(_module, args, kwargs):
        captured.append((args[0] if args else kwargs.pop("hidden_states"), kwargs))
        raise _StopForward

    handle = blocks[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for batch in batches:
            try:
                model(input_ids=batch, use_cache=False)
            except _StopForward:
                pass
    finally:
        handle.remove()
    return captured


def collect_stats_sequential(model, windows, layer_names, quantize_block, hessian: bool = True,
                             batch_size: int = 4, progress: bool = True) -> dict[str, LayerStats]:
    """GPTQ's sequential calibration: the statistics of decoder block ``b``'s layers are measured on the inputs
    that blocks ``0 … b−1`` produce *after* they were quantized. For each block, ``quantize_block(stats)`` gets
    ``{layer name: LayerStats}`` of that block's named layers and returns ``{layer name: float32 weight}`` (the
    dequantized replacement), which feeds the next block. The model's weights are restored on return; the result
    is the statistics of every named layer (a LLaMA-like model: decoder blocks in ``model.model.layers``)."""
    import torch

    modules = dict(model.named_modules())
    missing = [n for n in layer_names if n not in modules]
    if missing:
        raise ValueError(f"model has no modules {missing[:3]}")
    blocks = model.model.layers
    prefix = {id(blk): f"model.layers.{i}." for i, blk in enumerate(blocks)}
    _, batches = _token_batches(windows, batch_size)
    saved = {n: modules[n].weight.detach().clone() for n in layer_names}
    out: dict[str, LayerStats] = {}
    try:
        with torch.inference_mode():
            inputs = _block_inputs(model, blocks, batches)
            for blk in _progress(blocks, f"sequential calibration, {len(blocks)} blocks", progress):
                names = [n for n in layer_names if n.startswith(prefix[id(blk)])]
                hooks = _Hooks(modules, names, hessian)
                try:
                    for hidden, kwargs in inputs:
                        hooks.new_pass()
                        blk(hidden, **kwargs)
                finally:
                    hooks.remove()
                stats = hooks.stats(names)
                out.update(stats)
                for name, w in (quantize_block(stats) if names else {}).items():
                    modules[name].weight.copy_(torch.as_tensor(np.asarray(w, dtype=np.float32)))
                inputs = [(_hidden(blk(hidden, **kwargs)), kwargs) for hidden, kwargs in inputs]
    finally:
        with torch.no_grad():
            for n, w in saved.items():
                modules[n].weight.copy_(w)
    return {n: out[n] for n in layer_names}


def _hidden(output):
    """A decoder block returns the hidden states, or a tuple starting with them (older transformers)."""
    return output[0] if isinstance(output, tuple) else output


def _progress(iterable, desc: str, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print(desc, file=sys.stderr)
        return iterable
    return tqdm(iterable, desc=desc, unit="batch", file=sys.stderr)
