"""Sweep configurations (the W&B form) and the parameters of each trial.

    {"method": "grid" | "random",
     "metric": {"name": "val_acc", "goal": "maximize"},
     "parameters": {"lr": {"values": [0.1, 0.01]}, "batch": {"value": 32},
                    "dropout": {"min": 0.1, "max": 0.5}},       # min/max: random only
     "run_cap": 20}                                             # optional

Trial ``k`` of a grid is the k-th combination, parameter names in sorted order; a random
trial is drawn from a generator seeded by the sweep id and ``k``, so every agent agrees.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from typing import Any

from .errors import InvalidArgument
from .records import RunInfo

METHODS = ("grid", "random")
GOALS = ("maximize", "minimize")


def check_sweep_config(config: object) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InvalidArgument("a sweep config must be a dict")
    method = config.get("method", "grid")
    if method not in METHODS:
        raise InvalidArgument(f"sweep method must be one of {', '.join(METHODS)}, not {method!r}")
    params = config.get("parameters")
    if not isinstance(params, dict) or not params:
        raise InvalidArgument("a sweep config needs 'parameters': {name: {values|value|min,max}}")
    for name, spec in params.items():
        if not isinstance(spec, dict) or not (
            {"values", "value"} & spec.keys() or {"min", "max"} <= spec.keys()
        ):
            raise InvalidArgument(
                f"sweep parameter {name!r} needs 'values', 'value' or 'min'/'max'"
            )
        if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
            raise InvalidArgument(f"sweep parameter {name!r}: 'values' must be a non-empty list")
        if method == "grid" and "values" not in spec and "value" not in spec:
            raise InvalidArgument(f"grid sweep parameter {name!r} needs 'values' or 'value'")
    metric = config.get("metric")
    if metric is not None and (
        not isinstance(metric, dict)
        or "name" not in metric
        or metric.get("goal", "maximize") not in GOALS
    ):
        raise InvalidArgument("sweep 'metric' must be {'name': ..., 'goal': 'maximize'|'minimize'}")
    return {**config, "method": method}


def _choices(spec: dict[str, Any]) -> list[Any]:
    return spec["values"] if "values" in spec else [spec["value"]]


def trial_count(config: dict[str, Any]) -> int | None:
    """How many trials the sweep has: the grid size (capped), the cap, or None (unbounded)."""
    cap = config.get("run_cap")
    if config["method"] == "grid":
        size = 1
        for spec in config["parameters"].values():
            size *= len(_choices(spec))
        return min(size, cap) if cap else size
    return cap


def trial_params(config: dict[str, Any], sweep_id: str, index: int) -> dict[str, Any]:
    names = sorted(config["parameters"])
    specs = [config["parameters"][n] for n in names]
    if config["method"] == "grid":
        combo = next(itertools.islice(itertools.product(*map(_choices, specs)), index, None))
        return dict(zip(names, combo))
    rng = random.Random(f"{sweep_id}:{index}")
    out = {}
    for name, spec in zip(names, specs):
        if "values" in spec or "value" in spec:
            out[name] = rng.choice(_choices(spec))
        elif isinstance(spec["min"], int) and isinstance(spec["max"], int):
            out[name] = rng.randint(spec["min"], spec["max"])
        else:
            out[name] = rng.uniform(float(spec["min"]), float(spec["max"]))
    return out


def sweep_metric(config: dict[str, Any]) -> tuple[str | None, str]:
    """The metric a sweep optimizes (None if it names none) and its goal."""
    spec = config.get("metric") or {}
    return spec.get("name"), spec.get("goal", "maximize")


def rank_runs(runs: Sequence[RunInfo], metric: str, goal: str = "maximize") -> list[RunInfo]:
    """The finished runs with a numeric summary value of ``metric``, best first (ties keep
    their order)."""
    sign = -1 if goal == "minimize" else 1
    scored = [
        r
        for r in runs
        if r.state == "finished"
        and isinstance(r.summary.get(metric), (int, float))
        and not math.isnan(r.summary[metric])
    ]
    return sorted(scored, key=lambda r: sign * r.summary[metric], reverse=True)
