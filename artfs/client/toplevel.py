"""The calls W&B users make on the module: ``artfs.init``, ``finish``, ``log_artifact``,
``use_artifact`` (``artfs.run`` is ``run.active.current``), acting on the process's current
run the way ``wandb`` does."""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, get_args

from ..core.config import default_project
from ..core.errors import ArtfsError
from .artifact import Artifact
from .client import Client
from .run import Run, active

Reinit = Literal["default", "return_previous", "finish_previous", "create_new"]
REINIT_MODES: tuple[str, ...] = get_args(Reinit)

current_trial: ContextVar[Run | None] = ContextVar("current_trial", default=None)


def init(
    project: str | None = None,
    entity: str | None = None,
    id: str | None = None,
    resume: str | None = None,
    name: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    config: dict[str, Any] | None = None,
    save_code: bool = False,
    reinit: Reinit | bool | None = None,
    *,
    client: Client | None = None,
) -> Run:
    """Start a run (or resume one: ``id=`` with ``resume="allow"`` or ``"must"``) in
    ``project`` (default: the configured one, else ``uncategorized``) and make it ``artfs.run``.

    With a run already active, ``reinit`` decides as in W&B: ``"finish_previous"`` finishes
    the active runs first, ``"return_previous"`` returns the newest active run,
    ``"create_new"`` starts one more without making it ``artfs.run``; ``"default"`` (or None)
    is ``"finish_previous"`` under IPython/Jupyter and ``"return_previous"`` elsewhere.
    Inside a sweep agent's trial, returns the trial's run, its parameters in ``config``.
    ``save_code`` logs the main script as a ``code`` artifact the run uses.
    """
    trial = current_trial.get()
    if trial is not None:
        active.start(trial, current=True)
        return trial
    mode = _reinit_mode(reinit)
    if active.running and mode == "finish_previous":
        for previous in list(active.running):
            previous.finish()
    elif active.running and mode == "return_previous":
        if resume == "must":
            raise ArtfsError(
                "cannot resume a run while another is active: finish it first, "
                "or pass reinit='create_new'"
            )
        return active.running[-1]
    owns_client = client is None
    client = client or Client()
    try:
        info = client.backend.init_run(
            entity or client.entity,
            project or default_project(client.config),
            id,
            resume=resume or "never",
            name=name,
            group=group,
            job_type=job_type,
            config=config,
        )
    except BaseException:
        if owns_client:
            client.close()
        raise
    run = Run(client, info, owns_client=owns_client)
    active.start(run, current=mode != "create_new")
    if save_code:
        _save_code(run)
    return run


def finish(exit_code: int | None = None) -> None:
    """Finish the current run (failed for a non-zero ``exit_code``); nothing outside a run."""
    if active.current is not None:
        active.current.finish(exit_code)


def log_artifact(
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: list[str] | None = None,
    tags: list[str] | None = None,
) -> Artifact:
    """``Run.log_artifact`` on the current run."""
    return _current("log_artifact").log_artifact(artifact_or_path, name, type, aliases, tags)


def use_artifact(artifact_or_name: Artifact | str, type: str | None = None) -> Artifact:
    """``Run.use_artifact`` on the current run."""
    return _current("use_artifact").use_artifact(artifact_or_name, type)


def _current(call: str) -> Run:
    if active.current is None:
        raise ArtfsError(f"artfs.{call}() needs a run: call artfs.init() first")
    return active.current


def _reinit_mode(reinit: Reinit | bool | None) -> str:
    """W&B's modes; ``True``/``False`` are its older spellings."""
    if isinstance(reinit, bool):
        return "finish_previous" if reinit else "return_previous"
    if reinit in (None, "default"):
        return "finish_previous" if _in_ipython() else "return_previous"
    if reinit not in REINIT_MODES:
        raise ArtfsError(f"reinit={reinit!r}: expected one of {', '.join(REINIT_MODES)}")
    return reinit


def _in_ipython() -> bool:
    """Whether this is an IPython shell or a Jupyter kernel (W&B's "notebook")."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


def _save_code(run: Run) -> None:
    main = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if main is None or not main.is_file():
        raise ArtfsError("save_code=True: the main script is not a file (interactive session?)")
    art = Artifact(f"source-{run.project}-{main.stem}"[:128], type="code")
    art.add_file(main)
    logged = run.log_artifact(art)
    run.use_artifact(logged)
