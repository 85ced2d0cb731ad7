"""Everything a projection needs, resolved once (catalogues, the CPU measured now or a saved measurement,
bandwidth utilisations, pipeline calibrations), and the rows computed from it: the model x format x hardware
grid and the validation against published points."""
from __future__ import annotations

from dataclasses import dataclass

from bench.formats import FORMATS, Format, get_format

from .catalogue import load_hardware, load_models, load_published
from .hardware import measure_cpu, measured_utilisation, resolve_hardware
from .performance import calibrate_pipeline, devices_needed, project

__all__ = ["PROJECTION_FORMATS", "Context", "build_context", "project_in", "error_pct", "validation_rows",
           "all_rows"]

# the formats of the projection's tables and figures, in display order (ids of bench.formats.FORMATS)
PROJECTION_FORMATS = ("fp16", "int8", "int4-g128", "nf4", "q35-g64", "q35-g128", "q35-g256", "q35-row",
                      "q35c-g128")


@dataclass
class Context:
    models: dict
    hardware: dict          # resolved
    published: list
    calibrations: dict      # hardware id -> calibration
    cpu: dict | None
    measured: dict

    @property
    def formats(self) -> list[Format]:
        return [FORMATS[f] for f in PROJECTION_FORMATS]


def build_context(quick: bool = False, measure: bool = True, cpu: dict | None = None) -> Context:
    """Load and resolve everything. ``cpu``: a saved CPU measurement (report-only runs) instead of measuring;
    ``measure=False`` without ``cpu`` leaves the measured CPU entry out."""
    models, raw_hw, published = load_models(), load_hardware(), load_published()
    if cpu is None and measure:
        cpu = measure_cpu(quick)
    measured = measured_utilisation()
    hardware = {k: resolve_hardware(v, cpu, measured) for k, v in raw_hw.items()
                if cpu is not None or not v.get("measured")}
    by_id = {p["id"]: p for p in published}
    calibrations = {}
    for hid, h in hardware.items():
        if h["kind"] == "sram_asic":
            pt = by_id.get(h["calibration"])
            if pt is None or pt["hardware"] != hid:
                raise ValueError(f"{hid}: calibration point {h['calibration']!r} missing or for other hardware")
            calibrations[hid] = calibrate_pipeline(pt, models, hardware)
    return Context(models, hardware, published, calibrations, cpu, measured)


def project_in(ctx: Context, model_id: str, fmt: Format, hw_id: str, context: int, batch: int,
               devices: int | None = None) -> dict:
    return project(ctx.models[model_id], fmt, ctx.hardware[hw_id], context, batch, ctx.calibrations.get(hw_id),
                   devices)


def error_pct(projected: float, published: float) -> float:
    return 100.0 * (projected - published) / published


def _validation_row(ctx: Context, p: dict) -> dict:
    fmt = get_format(p["format"])
    h = dict(ctx.hardware[p["hardware"]])
    if "utilisation" in p:
        h["utilisation"] = p["utilisation"]
    row = project(ctx.models[p["model"]], fmt, h, p["context"], p["batch"], ctx.calibrations.get(h["id"]),
                  p.get("devices"))
    needed = devices_needed(row["weights_bytes"] + row["kv_bytes"], h["memory_bytes"])
    if p["metric"] == "tok_s":
        proj, naive = row["decode_tok_s"], row["bandwidth_bound_tok_s"]
    else:
        proj, naive = 1000.0 / row["decode_tok_s"], 1000.0 / row["bandwidth_bound_tok_s"]
    return {
        "id": p["id"], "role": p["role"], "hardware": p["hardware"], "model": p["model"], "format": fmt.id,
        "context": p["context"], "batch": p["batch"], "devices_published": p.get("devices"),
        "devices_modelled": needed, "metric": p["metric"], "published": p["value"],
        "projected": proj, "error_pct": error_pct(proj, p["value"]),
        "bandwidth_only": naive, "bandwidth_only_error_pct": error_pct(naive, p["value"]),
        "method": row["method"] + (f" at utilisation {h['utilisation']:g}" if h["kind"] != "sram_asic" else ""),
        "format_note": p.get("format_note", ""), "source": p["source"], "label": "modelled"}


def validation_rows(ctx: Context) -> list[dict]:
    return [_validation_row(ctx, p) for p in ctx.published]


def all_rows(ctx: Context, context: int, batch: int, roles=("main",)) -> list[dict]:
    return [project_in(ctx, mid, fmt, hid, context, batch)
            for mid, m in ctx.models.items() if m.get("role", "main") in roles
            for fmt in ctx.formats for hid in ctx.hardware]
