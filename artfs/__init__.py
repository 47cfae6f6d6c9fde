"""artfs: a self-hosted, versioned, deduplicated artifact store with a FUSE mount.

The Python API follows W&B Artifacts::

    import artfs
    with artfs.init(project="cv", job_type="train") as run:
        art = artfs.Artifact("mnist", type="dataset")
        art.add_dir("data/")
        run.log_artifact(art, aliases=["best"])
    artfs.Api().artifact("cv/mnist:latest").download("out/")
"""

from .client.api import Api
from .client.artifact import Artifact
from .client.client import Client
from .client.run import Run, init
from .client.sweeps import agent, sweep
from .client.tables import PartitionedTable, Table
from .core.errors import ArtfsError
from .core.manifest import Manifest, ManifestEntry

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
    "init",
    "sweep",
]
__version__ = "0.1.0"
