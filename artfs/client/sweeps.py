"""Sweeps from the Python API: ``artfs.sweep`` defines one, ``artfs.agent`` runs its trials
in-process, ``Api.sweep(path)`` reads the runs back and picks the best."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..core.config import default_project
from ..core.errors import ArtfsError
from ..core.names import parse_project_path
from ..core.records import RunInfo, SweepInfo
from ..core.sweeps import rank_runs, sweep_metric
from .client import Client
from .run import Run
from .toplevel import current_trial

log = logging.getLogger(__name__)


def sweep(
    config: dict[str, Any],
    project: str | None = None,
    entity: str | None = None,
    *,
    client: Client | None = None,
) -> str:
    """Create a sweep in ``project`` (default: the configured one, else ``uncategorized``);
    returns its path ``entity/project/sweep_id``."""
    with _client(client) as using:
        project = project or default_project(using.config)
        return using.backend.create_sweep(entity or using.entity, project, config).path


def agent(
    sweep_id: str,
    function: Callable[[], Any],
    count: int | None = None,
    project: str | None = None,
    *,
    client: Client | None = None,
) -> int:
    """Run up to ``count`` trials of a sweep, each as a run; ``artfs.init()`` inside
    ``function`` returns the trial's run. A trial that raises is marked failed and the
    agent goes on. Returns the number of trials run."""
    with _client(client) as using:
        path = _sweep_path(using, sweep_id, project)
        done = 0
        while count is None or done < count:
            info = using.backend.claim_trial(path)
            if info is None:
                break
            run = Run(using, info)
            token = current_trial.set(run)
            try:
                function()
            except Exception:
                log.exception("sweep trial %s failed", run.path)
                run.finish(1)
            else:
                run.finish(0)
            finally:
                current_trial.reset(token)
            done += 1
        return done


def _client(given: Client | None) -> contextlib.AbstractContextManager[Client]:
    """The caller's client as it is, or a new one closed afterwards."""
    return contextlib.nullcontext(given) if given is not None else Client()


def _sweep_path(client: Client, sweep_id: str, project: str | None) -> str:
    if sweep_id.count("/") == 2:
        return sweep_id
    entity, proj = parse_project_path(project or default_project(client.config), client.entity)
    return f"{entity}/{proj}/{sweep_id}"


class Sweep:
    def __init__(self, client: Client, info: SweepInfo):
        self._client = client
        self._info = info

    id = property(lambda self: self._info.id)
    config = property(lambda self: self._info.config)
    path = property(lambda self: self._info.path)

    def _run_infos(self) -> list[RunInfo]:
        return self._client.backend.list_runs(
            self._info.entity, self._info.project, {"sweep": self._info.id}
        )

    @property
    def runs(self) -> list[Run]:
        return [Run(self._client, i) for i in self._run_infos()]

    def best_run(self, metric: str | None = None, goal: str | None = None) -> Run | None:
        """The finished run with the best summary value of ``metric`` (default: the sweep's)."""
        spec_metric, spec_goal = sweep_metric(self._info.config)
        metric = metric or spec_metric
        if not metric:
            raise ArtfsError("name a metric: the sweep config has none")
        ranked = rank_runs(self._run_infos(), metric, goal or spec_goal)
        return Run(self._client, ranked[0]) if ranked else None
