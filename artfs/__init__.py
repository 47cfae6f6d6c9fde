"""artfs: a self-hosted, versioned, deduplicated artifact store with a FUSE mount.

The Python API follows W&B Artifacts::

    import artfs
    with artfs.init(project="cv", job_type="train") as run:
        art = artfs.Artifact("mnist", type="dataset")
        art.add_dir("data/")
        run.log_artifact(art, aliases=["best"])
    artfs.Api().artifact("cv/mnist:latest").download("out/")

Names are imported on first use, so ``import artfs`` (and every ``artfs`` command, which
imports this package first) loads nothing it does not need; ``artfs.run`` is the current
run, None outside one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client.api import Api
    from .client.artifact import Artifact
    from .client.client import Client
    from .client.login import login
    from .client.run import Run
    from .client.sweeps import agent, sweep
    from .client.tables import PartitionedTable, Table
    from .client.toplevel import finish, init, log_artifact, use_artifact
    from .core.errors import ArtfsError
    from .core.manifest import Manifest, ManifestEntry

    run: Run | None

_WHERE = {
    "Api": ".client.api",
    "Artifact": ".client.artifact",
    "Client": ".client.client",
    "login": ".client.login",
    "Run": ".client.run",
    "agent": ".client.sweeps",
    "sweep": ".client.sweeps",
    "PartitionedTable": ".client.tables",
    "Table": ".client.tables",
    "finish": ".client.toplevel",
    "init": ".client.toplevel",
    "log_artifact": ".client.toplevel",
    "use_artifact": ".client.toplevel",
    "ArtfsError": ".core.errors",
    "Manifest": ".core.manifest",
    "ManifestEntry": ".core.manifest",
}

__all__ = [
    "Api",
    "ArtfsError",
    "Artifact",
    "Client",
    "Manifest",
    "ManifestEntry",
    "PartitionedTable",
    "Run",
    "Table",
    "agent",
    "finish",
    "init",
    "log_artifact",
    "login",
    "run",
    "sweep",
    "use_artifact",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "run":  # looked up on every access: it changes with init and finish
        from .client.run import active

        return active.current
    if name not in _WHERE:
        raise AttributeError(f"module 'artfs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
