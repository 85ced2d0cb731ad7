"""What machine did this run on, and how fast is its memory? Shared helpers for every q35 benchmark script.

Two functions are meant for reuse:

* `provenance()` -> dict: machine, CPU, memory, OS, Python and package versions, git commit, UTC date and the
  command line. Put it next to every number a script writes.
* `measure_bandwidth(...)` -> dict: a STREAM-like main-memory bandwidth probe (numpy `copy` and `triad`,
  multi-threaded, median and spread over repeats, in GB/s = 1e9 bytes/s).

`measure_matmul_flops(...)` (numpy float32 GEMM throughput) and `memory_total_bytes()` complete the picture of
the CPU for the projection. Nothing here needs more than numpy and the standard library.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PACKAGES = ("numpy", "matplotlib", "pandas", "scipy", "torch")


# --- provenance ---------------------------------------------------------------------------------------------
def _read_proc(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo 'model name', else platform.processor(), else 'unknown')."""
    for line in _read_proc("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total_bytes() -> int | None:
    """Physical memory from /proc/meminfo (MemTotal), or None where that file does not exist."""
    for line in _read_proc("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def usable_cpus() -> int:
    """CPUs this process may run on (affinity mask), falling back to os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def package_versions(packages=DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions (None when a package is not installed). Nothing is imported."""
    versions = {}
    for name in packages:
        try:
            versions[name] = _md.version(name)
        except _md.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(packages=DEFAULT_PACKAGES) -> dict:
    """Where and with what a result was produced. JSON-serialisable; every key always present.

    Keys: date_utc (ISO 8601), hostname, os, machine (arch), cpu_model, cpus_logical, cpus_usable,
    memory_total_bytes, python, python_implementation, packages {name: version or None},
    git_sha (None outside a git checkout), git_dirty (tracked files modified; None if unknown), command.
    """
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "hostname": platform.node(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpus_logical": os.cpu_count(),
        "cpus_usable": usable_cpus(),
        "memory_total_bytes": memory_total_bytes(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(packages),
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
    }


def provenance_line(prov: dict) -> str:
    """One human-readable line summarising `provenance()` for table footers."""
    sha = (prov.get("git_sha") or "no-git")[:12] + ("+dirty" if prov.get("git_dirty") else "")
    pk = ", ".join(f"{k} {v}" for k, v in prov.get("packages", {}).items() if v)
    return (f"{prov['date_utc']} | {prov['hostname']} | {prov['cpu_model']} ({prov['cpus_usable']} usable CPUs) | "
            f"{prov['os']} | Python {prov['python']} | {pk} | git {sha}")


# --- measurements -------------------------------------------------------------------------------------------
def _summary(samples: list[float]) -> dict:
    s = sorted(samples)
    q = statistics.quantiles(s, n=4, method="inclusive") if len(s) >= 2 else [s[0]] * 3
    return {"median_gbps": statistics.median(s), "min_gbps": s[0], "max_gbps": s[-1],
            "p25_gbps": q[0], "p75_gbps": q[2], "iqr_gbps": q[2] - q[0], "samples_gbps": list(samples)}


def _chunks(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // parts)
    return [(i, min(i + step, n)) for i in range(0, n, step)]


TRIAD_SCALAR = 3.0


def _stream_kernels(arrays: dict, spans: list[tuple[int, int]], blk: int) -> dict:
    """name -> (function of a thread's span index, bytes counted per element) for STREAM copy and blocked triad."""
    a, b, c = arrays["a"], arrays["b"], arrays["c"]
    temps = [np.empty(blk) for _ in spans]

    def copy_part(k: int) -> None:
        lo, hi = spans[k]
        np.copyto(b[lo:hi], a[lo:hi])

    def triad_part(k: int) -> None:
        lo, hi = spans[k]
        t = temps[k]
        for i in range(lo, hi, blk):
            j = min(i + blk, hi)
            tt = t[: j - i]
            np.multiply(c[i:j], TRIAD_SCALAR, out=tt)
            np.add(b[i:j], tt, out=a[i:j])

    return {"copy": (copy_part, 16), "triad": (triad_part, 24)}


def _time_kernels(work: dict, kernels, spans, threads: int, repeats: int, n: int) -> dict[str, list[float]]:
    """GB/s of every kernel in every repeat, after one untimed warm-up pass of each (pages faulted in, threads up)."""
    samples: dict[str, list[float]] = {k: [] for k in kernels}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        def run(fn) -> float:
            t0 = time.perf_counter()
            for f in [pool.submit(fn, k) for k in range(len(spans))]:
                f.result()
            return time.perf_counter() - t0

        for name in kernels:
            run(work[name][0])
        for _ in range(repeats):
            for name in kernels:
                fn, bytes_per_elem = work[name]
                samples[name].append(bytes_per_elem * n / run(fn) / 1e9)
    return samples


def measure_bandwidth(size_mib: float = 128.0, repeats: int = 7, threads: int | None = None,
                      kernels: tuple[str, ...] = ("copy", "triad"), block_kib: int = 512) -> dict:
    """STREAM-like main-memory bandwidth of this machine, in GB/s (1e9 bytes/s), measured now.

    Three float64 arrays of `size_mib` MiB each (pick it well above the last-level cache) are split across
    `threads` worker threads (default: every usable CPU; numpy releases the GIL in these loops). Each repeat
    times one full pass of every kernel; bytes are counted as STREAM does (no write-allocate traffic):

    * copy:  b[:] = a                      -> 16 bytes per element (read a, write b)
    * triad: a[:] = b + s*c, in cache-sized blocks so the temporary stays in cache
                                           -> 24 bytes per element (read b, read c, write a)

    One untimed warm-up pass touches every page first. Returns::

        {"median_gbps", "min_gbps", "max_gbps", "p25_gbps", "p75_gbps", "iqr_gbps", "samples_gbps",
         "headline_kernel", "kernels": {name: same summary keys}, "size_mib", "repeats", "threads",
         "method"}

    The top-level summary is the headline kernel's (triad when measured, else the first kernel).
    """
    if size_mib <= 0 or repeats < 1:
        raise ValueError("size_mib must be > 0 and repeats >= 1")
    unknown = set(kernels) - {"copy", "triad"}
    if unknown or not kernels:
        raise ValueError(f"unknown kernels {sorted(unknown)}; choose from copy, triad")
    threads = threads or usable_cpus()
    n = max(int(size_mib * 2**20) // 8, 1024)
    arrays = {"a": np.full(n, 1.0), "b": np.full(n, 2.0), "c": np.full(n, 0.5)}
    spans = _chunks(n, threads)
    work = _stream_kernels(arrays, spans, max(block_kib * 1024 // 8, 64))
    samples = _time_kernels(work, kernels, spans, threads, repeats, n)
    a, b, c = arrays["a"], arrays["b"], arrays["c"]
    if "triad" in kernels and not np.allclose(a[:8], b[:8] + TRIAD_SCALAR * c[:8]):
        raise RuntimeError("triad kernel produced wrong values")
    per_kernel = {k: _summary(v) for k, v in samples.items()}
    headline = "triad" if "triad" in per_kernel else kernels[0]
    out = dict(per_kernel[headline])
    out.update({"headline_kernel": headline, "kernels": per_kernel, "size_mib": n * 8 / 2**20,
                "repeats": repeats, "threads": len(spans),
                "method": "numpy STREAM-like copy (16 B/elem) and blocked triad (24 B/elem), float64, "
                          "threads split the arrays, bytes counted as in STREAM (no write-allocate)"})
    return out


def measure_matmul_flops(n: int = 1024, repeats: int = 5, dtype=np.float32) -> dict:
    """Dense GEMM throughput of numpy's BLAS on this machine: 2·n³ FLOPs per (n×n)@(n×n), in GFLOP/s.

    Returns {"median_gflops", "min_gflops", "max_gflops", "samples_gflops", "n", "repeats", "dtype"}.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n)).astype(dtype)
    y = rng.standard_normal((n, n)).astype(dtype)
    z = np.empty((n, n), dtype=dtype)
    np.matmul(x, y, out=z)  # warm-up
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(x, y, out=z)
        samples.append(2.0 * n**3 / (time.perf_counter() - t0) / 1e9)
    return {"median_gflops": statistics.median(samples), "min_gflops": min(samples), "max_gflops": max(samples),
            "samples_gflops": samples, "n": n, "repeats": repeats, "dtype": np.dtype(dtype).name}


if __name__ == "__main__":
    import json

    print(json.dumps({"provenance": provenance(), "bandwidth": measure_bandwidth(),
                      "matmul": measure_matmul_flops()}, indent=2))
