"""Token perplexity and bits per byte under one fixed, stated protocol.

Protocol (``Protocol.describe()`` prints it next to every number):

* Each document (in the fixed order given, e.g. :func:`q35.fetch.fixed_plays`) is tokenized on its own,
  without special tokens.
* From each document the first ``windows_per_doc`` *non-overlapping* windows of ``window`` (512) tokens are
  taken, starting at token 0 (window ``i`` = tokens ``[i*512, (i+1)*512)``). No stride, no overlap, no padding.
* Every window is evaluated independently (no carried state). When ``bos_id`` is set, that token is prepended
  (input length ``window + 1``) and all ``window`` tokens are scored; when it is ``None``, the first token of
  the window is context only and ``window - 1`` tokens are scored.
* Score = natural-log negative log-likelihood of each scored token (float32 logits and log-softmax; greedy,
  deterministic, no sampling). Sums are accumulated in float64.
* ``ppl = exp(total NLL / scored tokens)``; ``bpb = total NLL / ln 2 / scored bytes`` where scored bytes are the
  UTF-8 bytes of the scored tokens (exact for byte-level BPE: each token's byte string, summed; checked to add
  up to each document's length).

:func:`evaluate` returns per-window NLL sums, token and byte counts (for paired tests across methods),
the totals and the wall time. torch's thread count is the caller's to set.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..fetch import sha256_bytes

__all__ = ["Protocol", "EvalSet", "PPLResult", "build_eval_set", "default_bos_id", "evaluate", "token_byte_lengths",
           "DEFAULT_WINDOW", "DEFAULT_WINDOWS_PER_DOC"]

DEFAULT_WINDOW = 512
DEFAULT_WINDOWS_PER_DOC = 3


@dataclass(frozen=True)
class Protocol:
    window: int = DEFAULT_WINDOW
    windows_per_doc: int = DEFAULT_WINDOWS_PER_DOC
    bos_id: int | None = None
    bos_token: str | None = None

    def describe(self, n_docs: int | None = None, n_tokens: int | None = None) -> str:
        bos = (f"token {self.bos_id} ({self.bos_token!r}) prepended to every window, all {self.window} tokens "
               f"scored" if self.bos_id is not None else
               f"no BOS; first token of each window is context only, {self.window - 1} tokens scored")
        docs = f"{n_docs} documents" if n_docs is not None else "each document"
        tot = f"; {n_tokens} tokens scored in total" if n_tokens is not None else ""
        return (f"{docs} tokenized separately (no special tokens); first {self.windows_per_doc} non-overlapping "
                f"windows of {self.window} tokens from token 0 of each; windows independent; {bos}; "
                f"float32 logits and log-softmax, NLL summed in float64; ppl = exp(NLL/tokens), "
                f"bpb = NLL/ln2/UTF-8 bytes of scored tokens{tot}")


@dataclass
class EvalSet:
    """Token windows to score, with the bytes each window's scored tokens stand for."""
    windows: np.ndarray          # int64 [W, window] text tokens
    window_bytes: np.ndarray     # int64 [W] UTF-8 bytes of the *scored* tokens of each window
    window_docs: list            # [W] document name of each window
    protocol: Protocol
    doc_sha256: dict = field(default_factory=dict)   # document name -> SHA-256 of its text
    tokens_sha256: str = ""      # SHA-256 of the windows array (int64 little-endian bytes)

    @property
    def scored_per_window(self) -> int:
        return self.protocol.window if self.protocol.bos_id is not None else self.protocol.window - 1

    def describe(self) -> str:
        return self.protocol.describe(len(self.doc_sha256), self.scored_per_window * len(self.windows))


@dataclass
class PPLResult:
    nll: np.ndarray              # float64 [W] summed NLL (nats) of each window's scored tokens
    tokens: np.ndarray           # int64 [W] scored tokens per window
    bytes: np.ndarray            # int64 [W] scored UTF-8 bytes per window
    seconds: float
    protocol: str
    window_docs: list = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return int(self.tokens.sum())

    @property
    def total_bytes(self) -> int:
        return int(self.bytes.sum())

    @property
    def ppl(self) -> float:
        return math.exp(float(self.nll.sum()) / self.total_tokens)

    @property
    def bpb(self) -> float:
        return float(self.nll.sum()) / math.log(2) / self.total_bytes

    def summary(self) -> dict:
        return {"ppl": self.ppl, "bpb": self.bpb, "tokens": self.total_tokens, "bytes": self.total_bytes,
                "windows": int(len(self.nll)), "seconds": self.seconds, "protocol": self.protocol}


# ---------------------------------------------------------------------------------------------------------
# bytes per token

def _gpt2_byte_decoder() -> dict:
    """Inverse of GPT-2's bytes_to_unicode table (byte-level BPE token strings -> raw bytes)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_byte_lengths(tokenizer) -> np.ndarray:
    """UTF-8 byte length of every token id of a byte-level BPE tokenizer (special tokens: their text length,
    though they never occur in the scored text). Raises ``ValueError`` for a tokenizer that is not byte-level."""
    dec = _gpt2_byte_decoder()
    n = len(tokenizer)
    toks = tokenizer.convert_ids_to_tokens(list(range(n)))
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    out = np.zeros(n, dtype=np.int64)
    for i, t in enumerate(toks):
        if t is None:
            continue
        if i in special:
            out[i] = len(t.encode("utf-8"))
            continue
        try:
            out[i] = len(bytes(dec[c] for c in t))
        except KeyError:
            raise ValueError(f"tokenizer is not byte-level BPE (token {i} = {t!r}); bytes per token unknown") \
                from None
    return out


# ---------------------------------------------------------------------------------------------------------

def default_bos_id(tokenizer) -> int | None:
    """The start-of-window token of the protocol: the GPT-2-family document separator ``<|endoftext|>`` when the
    vocabulary has it (SmolLM2 was pretrained with it between documents; its GGUF sets add_bos_token=false and
    its ``bos_token`` is the chat token ``<|im_start|>``), else the tokenizer's BOS, else None."""
    vocab = tokenizer.get_vocab()
    if "<|endoftext|>" in vocab:
        return int(vocab["<|endoftext|>"])
    return getattr(tokenizer, "bos_token_id", None)


def build_eval_set(tokenizer, documents, window: int = DEFAULT_WINDOW,
                   windows_per_doc: int = DEFAULT_WINDOWS_PER_DOC, bos_id="auto",
                   byte_lengths: np.ndarray | None = None) -> EvalSet:
    """Cut the protocol's windows out of ``documents`` (a list of objects with ``.name``, ``.text``, ``.sha256``
    such as :class:`q35.fetch.Text`). ``tokenizer`` is a Hugging Face tokenizer (byte-level BPE).
    ``bos_id``: ``"auto"`` (:func:`default_bos_id`), a token id, or None (no BOS, first token unscored)."""
    if window < 2 or windows_per_doc < 1:
        raise ValueError("window must be >= 2 and windows_per_doc >= 1")
    if bos_id == "auto":
        bos_id = default_bos_id(tokenizer)
    blen = token_byte_lengths(tokenizer) if byte_lengths is None else np.asarray(byte_lengths)
    first = 0 if bos_id is not None else 1
    wins, wbytes, wdocs, shas = [], [], [], {}
    for doc in documents:
        ids = np.asarray(tokenizer(doc.text, add_special_tokens=False)["input_ids"], dtype=np.int64)
        total = int(blen[ids].sum())
        if total != len(doc.text.encode("utf-8")):
            raise ValueError(f"{doc.name}: token bytes add up to {total}, document has "
                             f"{len(doc.text.encode('utf-8'))} bytes (tokenizer not byte-exact)")
        need = window * windows_per_doc
        if len(ids) < need:
            raise ValueError(f"{doc.name} has {len(ids)} tokens, fewer than {windows_per_doc} windows of {window}")
        for i in range(windows_per_doc):
            w = ids[i * window:(i + 1) * window]
            wins.append(w)
            wbytes.append(int(blen[w[first:]].sum()))
            wdocs.append(doc.name)
        shas[doc.name] = doc.sha256
    arr = np.stack(wins).astype(np.int64)
    bos_tok = tokenizer.convert_ids_to_tokens(bos_id) if bos_id is not None else None
    return EvalSet(arr, np.asarray(wbytes, dtype=np.int64), wdocs, Protocol(window, windows_per_doc, bos_id, bos_tok),
                   shas, sha256_bytes(arr.astype("<i8").tobytes()))


def evaluate(model, evalset: EvalSet, batch_size: int = 4) -> PPLResult:
    """Score ``evalset`` with a causal LM whose forward returns ``.logits`` (float32). Deterministic for a given
    ``batch_size`` (windows per forward pass; a different batch size may change the last bits of the logits) and
    torch thread count (the caller's: this function does not change it)."""
    import torch
    proto = evalset.protocol
    wins = torch.from_numpy(evalset.windows)
    if proto.bos_id is not None:
        wins = torch.cat([torch.full((wins.shape[0], 1), proto.bos_id, dtype=torch.int64), wins], dim=1)
    nll = np.zeros(len(wins), dtype=np.float64)
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b0 in range(0, len(wins), batch_size):
            x = wins[b0:b0 + batch_size]
            out = model(input_ids=x, use_cache=False)
            logits = out.logits if hasattr(out, "logits") else out
            logits = logits[:, :-1, :].float()
            target = x[:, 1:]
            lp = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                   reduction="none").reshape(target.shape)
            nll[b0:b0 + len(x)] = lp.double().sum(dim=1).numpy()
    secs = time.perf_counter() - t0
    if was_training:
        model.train()
    tokens = np.full(len(wins), evalset.scored_per_window, dtype=np.int64)
    if not np.all(np.isfinite(nll)):
        raise FloatingPointError("non-finite NLL: the model produced NaN/Inf logits")
    return PPLResult(nll, tokens, evalset.window_bytes.copy(), secs, evalset.describe(), list(evalset.window_docs))
