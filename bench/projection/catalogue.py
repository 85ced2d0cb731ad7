"""The projection's catalogues (bench/catalog/*.json): hardware, models and published points, each entry with a
`source`; the loaders check every field they use and raise ValueError naming the file and the entry."""
from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["CATALOG_DIR", "load_hardware", "load_models", "load_published"]

CATALOG_DIR = Path(__file__).resolve().parents[1] / "catalog"


def _positive(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and v > 0 and math.isfinite(v)


def _load_entries(path: Path, key: str, required: tuple[str, ...], positive: tuple[str, ...] = ()) -> list[dict]:
    data = json.loads(Path(path).read_text())
    entries = data.get(key)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty list under {key!r}")
    seen = set()
    for e in entries:
        name = e.get("id", "<no id>")
        src = e.get("source")
        if not isinstance(src, str) or not src.strip():
            raise ValueError(f"{path}: entry {name!r} has no source string")
        missing = [f for f in ("id", *required) if f not in e]
        if missing:
            raise ValueError(f"{path}: entry {name!r} lacks {missing}")
        _check_positive(path, e, positive)
        if name in seen:
            raise ValueError(f"{path}: duplicate id {name!r}")
        seen.add(name)
    return entries


def _check_positive(path, e: dict, fields) -> None:
    for f in fields:
        if not _positive(e.get(f)):
            raise ValueError(f"{path}: entry {e.get('id', '<no id>')!r} field {f!r} must be a positive number, "
                             f"got {e.get(f)!r}")


def load_hardware(path: Path = CATALOG_DIR / "hardware.json") -> dict[str, dict]:
    out = {}
    for e in _load_entries(path, "hardware", ("name", "kind")):
        if e["kind"] not in ("gpu", "sram_asic", "cpu"):
            raise ValueError(f"{path}: entry {e['id']!r} has unknown kind {e['kind']!r}")
        if not e.get("measured"):
            _check_positive(path, e, ("memory_gb", "bandwidth_gbps", "fp16_tflops"))
            for f in ("power_w", "int8_tops"):
                v = e.get(f)
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
                    raise ValueError(f"{path}: entry {e['id']!r} field {f!r} must be positive or null")
        if e["kind"] == "sram_asic" and not e.get("calibration"):
            raise ValueError(f"{path}: SRAM entry {e['id']!r} needs a `calibration` point id")
        out[e["id"]] = e
    return out


def load_models(path: Path = CATALOG_DIR / "models.json") -> dict[str, dict]:
    fields = ("layers", "hidden", "intermediate", "heads", "kv_heads", "vocab")
    out = {}
    for e in _load_entries(path, "models", ("name", "tied_embeddings", *fields), positive=fields):
        if e["hidden"] % e["heads"] or e["heads"] % e["kv_heads"]:
            raise ValueError(f"{path}: model {e['id']!r}: heads must divide hidden and kv_heads divide heads")
        out[e["id"]] = e
    return out


def load_published(path: Path = CATALOG_DIR / "published.json") -> list[dict]:
    pts = _load_entries(path, "points", ("role", "hardware", "model", "format", "context", "batch", "metric",
                                         "value"), positive=("context", "batch", "value"))
    for p in pts:
        if p["metric"] not in ("tok_s", "ms_per_token") or p["role"] not in ("calibration", "validation"):
            raise ValueError(f"{path}: point {p['id']!r}: bad metric or role")
    return pts
