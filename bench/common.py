"""Timing helpers for the benchmarks: run a command, time it, read its peak RSS, print ratios.

Every figure is printed next to a baseline measured in the same run on the same bytes.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Timing:
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float = 0.0  # user + system: less disturbed than wall time by a busy machine


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Timing:
    """Run ``cmd`` to completion; its wall time and the peak RSS of the process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(c) for c in cmd], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(
            f"{' '.join(map(str, cmd))} failed ({code}): {proc.stderr.read().decode()}"
        )
    proc.stderr.close()
    return Timing(elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def best_of(n: int, make: callable, cleanup: callable | None = None) -> Timing:  # type: ignore[valid-type]
    """The fastest of ``n`` runs (the least disturbed by the rest of the machine)."""
    runs = []
    for _ in range(n):
        if cleanup:
            cleanup()
        runs.append(make())
    return min(runs, key=lambda t: t.seconds)


def isolated_env(work: Path) -> dict[str, str]:
    """This environment with artfs pointed at an embedded store, cache and state under ``work``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    env.update(
        ARTFS_HOME=str(work / "store"),
        ARTFS_CACHE_DIR=str(work / "cache"),
        ARTFS_STATE_DIR=str(work / "state"),
        XDG_CONFIG_HOME=str(work / "config"),
    )
    return env


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def report(
    label: str, subject: Timing, baseline: Timing, baseline_label: str, size: int = 0
) -> None:
    ratio = subject.seconds / baseline.seconds if baseline.seconds else float("inf")
    rate = f" {size / subject.seconds / 1e6:6.0f} MB/s" if size else " " * 12
    rss = f"peak RSS {subject.peak_rss_mib:4.0f} MiB"
    print(
        f"{label:<34} {subject.seconds:7.3f} s{rate} | {baseline_label:<24} "
        f"{baseline.seconds:7.3f} s | ratio {ratio:6.2f}x | {rss}"
    )


def report_runs(
    label: str, subject: list[float], baseline: list[float], baseline_label: str, size: int
) -> None:
    """Median wall time of runs taken in turns (fastest-slowest), its rate for ``size`` bytes,
    and the ratio to the baseline's median (with the range of the run-by-run ratios)."""
    ratios = sorted(s / b for s, b in zip(subject, baseline))
    med, base = statistics.median(subject), statistics.median(baseline)
    spread = f"({min(subject):.2f}-{max(subject):.2f})"
    print(
        f"{label:<40} {med:7.2f} s {spread:<13} {size / med / 1e6:6.0f} MB/s | "
        f"{baseline_label:<26} {base:7.2f} s | ratio {med / base:5.2f}x "
        f"({ratios[0]:.2f}-{ratios[-1]:.2f})"
    )
