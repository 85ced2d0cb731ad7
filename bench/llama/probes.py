"""Measurement probes of the worker process: GPU energy through NVML, resident memory through Linux /proc."""
from __future__ import annotations

import ctypes
import gc
import time
from pathlib import Path

__all__ = ["UNAVAILABLE", "EnergyMeter", "rss_bytes", "peak_rss_bytes", "reset_peak_rss"]

UNAVAILABLE = "unavailable"


class EnergyMeter:
    """GPU energy through NVML: total-energy counter (mJ) over a window, minus idle power × window.

    ``available`` is False (and ``reason`` says why) without pynvml, without a GPU, or when NVML fails; every
    reading is then the string "unavailable", never 0."""

    MIN_WINDOW_S = 1.0   # the counter updates about every 100 ms: shorter windows are not reported

    def __init__(self, device_index: int = 0):
        self.available, self.reason, self.idle_w = False, "", None
        self._nvml = None
        try:
            import pynvml  # noqa: PLC0415
        except Exception as e:  # noqa: BLE001 - any import failure means no energy
            self.reason = f"pynvml not importable ({e.__class__.__name__})"
            return
        try:
            pynvml.nvmlInit()
            self._h = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self._h)
            self.gpu_name = pynvml.nvmlDeviceGetName(self._h)
            self.driver = pynvml.nvmlSystemGetDriverVersion()
        except Exception as e:  # noqa: BLE001
            self.reason = f"NVML unavailable ({e.__class__.__name__}: {e})"
            return
        self._nvml = pynvml
        self.available = True

    def _mj(self) -> float:
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h))

    def measure_idle(self, seconds: float = 3.0) -> float | str:
        if not self.available:
            return UNAVAILABLE
        e0, t0 = self._mj(), time.perf_counter()
        time.sleep(seconds)
        self.idle_w = (self._mj() - e0) / 1e3 / (time.perf_counter() - t0)
        return self.idle_w

    def start(self):
        if not self.available:
            return None
        return (self._mj(), time.perf_counter())

    def stop(self, token) -> dict:
        if not self.available or token is None:
            return {"energy_j": UNAVAILABLE, "energy_idle_subtracted_j": UNAVAILABLE, "energy_note": self.reason}
        e1, t1 = self._mj(), time.perf_counter()
        window = t1 - token[1]
        if window < self.MIN_WINDOW_S:
            return {"energy_j": UNAVAILABLE, "energy_idle_subtracted_j": UNAVAILABLE,
                    "energy_note": f"window {window:.2f} s < {self.MIN_WINDOW_S} s (counter resolution)"}
        total = (e1 - token[0]) / 1e3
        idle = UNAVAILABLE if self.idle_w is None else total - self.idle_w * window
        return {"energy_j": total, "energy_idle_subtracted_j": idle, "energy_note": ""}


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_bytes() -> int | None:
    return _status_kb("VmRSS")


def peak_rss_bytes() -> int | None:
    return _status_kb("VmHWM")


def reset_peak_rss() -> bool:
    """Return freed heap to the OS, then reset VmHWM to the current RSS (Linux clear_refs 5)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False
