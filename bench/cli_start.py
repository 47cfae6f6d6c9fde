"""Benchmark the quick commands (``ls``, ``show``, ``alias set``, ``cache info``, ``--help``)
on an embedded store, beside the bare interpreter start measured in the same run.

Each figure is the median of ``--runs`` runs (wall time, with the fastest and slowest, and
CPU time, user + system, which a busy machine disturbs less). ``--source DIR`` (repeatable)
times the ``artfs`` package found in DIR, e.g. an older commit unpacked with ``git archive``;
the sources take turns run by run, so a before/after comparison shares the machine's load,
and each later source is also given as a ratio to the first.

    .venv/bin/python bench/cli_start.py [--runs 15] [--source DIR]... [--dir /tmp/artfs-cli]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timing, fresh, isolated_env, timed

COMMANDS = [
    ["ls"],
    ["ls", "proj"],
    ["show", "proj/data"],
    ["alias", "set", "proj/data:v0", "best"],
    ["cache", "info"],
    ["--help"],
]


def interleaved(cmds: list[list[str]], envs: list[dict[str, str]], runs: int) -> list[list[Timing]]:
    """``runs`` timings of each (command, environment), taking turns."""
    for cmd, env in zip(cmds, envs):
        timed(cmd, env)  # warm the page cache and the byte-code files
    out: list[list[Timing]] = [[] for _ in cmds]
    for _ in range(runs):
        for i, (cmd, env) in enumerate(zip(cmds, envs)):
            out[i].append(timed(cmd, env))
    return out


def line(label: str, times: list[Timing]) -> tuple[str, float]:
    """``label``, the median wall time (fastest-slowest) and the median CPU time."""
    walls = sorted(t.seconds for t in times)
    wall = statistics.median(walls)
    cpu = statistics.median(t.cpu_seconds for t in times)
    ms = f"{wall * 1000:5.0f} ({walls[0] * 1000:.0f}-{walls[-1] * 1000:.0f})"
    return f"{label:<34} {ms:<16} cpu {cpu * 1000:4.0f}", wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--source", type=Path, action="append")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/artfs-cli"))
    args = parser.parse_args()
    sources = args.source or [Path(__file__).resolve().parent.parent]
    work = fresh(args.dir)
    work.mkdir(parents=True)
    data = work / "data.txt"
    data.write_text("data\n")
    envs = []
    for i, source in enumerate(sources):
        env = {**isolated_env(work / str(i)), "PYTHONPATH": str(source.resolve())}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte-code files written once
        timed([sys.executable, "-m", "artfs.cli.main", "put", data, "-n", "proj/data"], env)
        envs.append(env)
    python = [sys.executable]
    [base] = interleaved([[*python, "-c", "pass"]], envs[:1], args.runs)
    text, base_wall = line("python -c pass (baseline)", base)
    print(f"{args.runs} runs each: median wall ms (fastest-slowest), median CPU ms")
    print(text)
    for cmd in COMMANDS:
        runs = interleaved([[*python, "-m", "artfs.cli.main", *cmd]] * len(envs), envs, args.runs)
        first = 0.0
        for source, times in zip(sources, runs):
            text, wall = line("artfs " + " ".join(cmd), times)
            first = first or wall
            versus = f" | {wall / first:4.2f}x of the first" if source != sources[0] else ""
            print(f"{text} | {wall / base_wall:4.1f}x baseline | {source.name}{versus}")


if __name__ == "__main__":
    main()
