"""``artfs.init`` and ``Run``: a job that logs and uses artifacts (lineage)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any

from ..core.errors import ArtfsError
from ..core.names import parse_artifact_path
from ..core.records import RunInfo
from .artifact import Artifact
from .client import Client


class SyncedDict(MutableMapping[str, Any]):
    """A dict whose every change is written to the store at once (summary, config)."""

    def __init__(self, data: dict[str, Any], push: Callable[[dict[str, Any]], None]):
        self._data = dict(data)
        self._push = push

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._push({key: value})

    def __delitem__(self, key: str) -> None:
        raise ArtfsError("run summary and config keys cannot be removed")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def update(self, *args: Any, **kwargs: Any) -> None:
        changes = dict(*args, **kwargs)
        self._data.update(changes)
        self._push(changes)

    def __repr__(self) -> str:
        return repr(self._data)


class Run:
    """A run. One that ``artfs.init`` started owns its client and closes it in ``finish``;
    a run read through ``Api`` or a sweep agent shares its caller's client."""

    def __init__(self, client: Client, info: RunInfo, *, owns_client: bool = False):
        self._client = client
        self._owns_client = owns_client
        self._finished = False
        self._info = info
        self.summary = SyncedDict(info.summary, lambda c: self._update({"summary": c}))
        self.config = SyncedDict(info.config, lambda c: self._update({"config": c}))

    def _update(self, changes: dict[str, Any]) -> None:
        self._info = self._client.backend.update_run(self.path, changes)

    id = property(lambda self: self._info.id)
    name = property(lambda self: self._info.name)
    entity = property(lambda self: self._info.entity)
    project = property(lambda self: self._info.project)
    group = property(lambda self: self._info.group)
    job_type = property(lambda self: self._info.job_type)
    sweep = property(lambda self: self._info.sweep)
    created_at = property(lambda self: self._info.created_at)

    @property
    def state(self) -> str:
        return self._info.state

    @property
    def path(self) -> str:
        return self._info.path

    @property
    def project_path(self) -> str:
        """``entity/project``: where the run logs its artifacts."""
        return f"{self.entity}/{self.project}"

    def __repr__(self) -> str:
        return f"<Run {self.path} ({self.state})>"

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> Artifact:
        """Commit a draft (or a local file or directory) as a new version logged by this run."""
        if isinstance(artifact_or_path, Artifact):
            art = artifact_or_path
        else:
            local = Path(artifact_or_path)
            art = Artifact(name or local.name.replace(" ", "-"), type or "dataset")
            if local.is_dir():
                art.add_dir(local)
            else:
                art.add_file(local)
        return art._log(self._client, self.project_path, self, aliases, tags)

    def upsert_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Add this writer's files to the shared pending version of ``distributed_id``
        (default: the run's group)."""
        return artifact._upsert(
            self._client, self, self._distributed_id(distributed_id), False, aliases
        )

    def finish_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Add this writer's files (if any) and commit the distributed version."""
        return artifact._upsert(
            self._client, self, self._distributed_id(distributed_id), True, aliases
        )

    def _distributed_id(self, given: str | None) -> str:
        if given or self.group:
            return given or self.group
        raise ArtfsError("distributed writers need distributed_id= or a run group")

    def use_artifact(self, artifact_or_name: Artifact | str, type: str | None = None) -> Artifact:
        """Resolve an artifact and record that this run used it."""
        if isinstance(artifact_or_name, Artifact):
            path = artifact_or_name._logged_info().path
        else:
            path = parse_artifact_path(artifact_or_name, self.entity, self.project)
        info = self._client.backend.use_version(self.path, path)
        if type is not None and info.type != type:
            raise ArtfsError(f"{info.path} has type {info.type!r}, not {type!r}")
        return Artifact._logged(self._client, info)

    def logged_artifacts(self) -> list[Artifact]:
        infos = self._client.backend.run_versions(self.path, "logged")
        return [Artifact._logged(self._client, i) for i in infos]

    def used_artifacts(self) -> list[Artifact]:
        infos = self._client.backend.run_versions(self.path, "used")
        return [Artifact._logged(self._client, i) for i in infos]

    def finish(self, exit_code: int | None = None) -> None:
        """End the run: finished, or failed for a non-zero ``exit_code``. Closes the client
        the run owns; a second call does nothing."""
        if self._finished:
            return
        self._finished = True
        try:
            self._update({"state": "failed" if exit_code else "finished"})
        finally:
            active.end(self)
            if self._owns_client:
                self._client.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(0 if exc_type is None else 1)


class ActiveRuns:
    """The runs ``artfs.init`` started in this process and not yet finished; ``current`` is
    ``artfs.run`` (W&B's ``wandb.run``)."""

    def __init__(self) -> None:
        self.running: list[Run] = []
        self.current: Run | None = None

    def start(self, run: Run, *, current: bool) -> None:
        if run not in self.running:
            self.running.append(run)
        if current:
            self.current = run

    def end(self, run: Run) -> None:
        if run in self.running:
            self.running.remove(run)
        if self.current is run:
            self.current = None


active = ActiveRuns()
