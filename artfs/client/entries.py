"""``ArtifactEntry``: one file of an artifact as ``Artifact.get_entry`` returns it (W&B's
``ArtifactManifestEntry``): its fields, and ``download`` of that file alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.manifest import ManifestEntry
from ..core.paths import local_target

if TYPE_CHECKING:
    from .artifact import Artifact


class ArtifactEntry:
    def __init__(self, artifact: Artifact, entry: ManifestEntry):
        self._artifact = artifact
        self._entry = entry

    @property
    def path(self) -> str:
        return self._entry.path

    @property
    def digest(self) -> str:
        return self._entry.digest

    @property
    def size(self) -> int:
        return self._entry.size

    @property
    def ref(self) -> str | None:
        """The URI of a reference entry (bytes kept elsewhere); None for stored files."""
        return self._entry.ref

    def download(self, root: str | os.PathLike[str] | None = None) -> str:
        """Write this file under ``root`` (default: the artifact's root); returns its path."""
        target = Path(self._artifact.download(root, path_prefix=self.path))
        return str(local_target(target, self.path))

    def __repr__(self) -> str:
        return f"<ArtifactEntry {self.path} of {self._artifact.name}>"
