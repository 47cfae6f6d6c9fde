"""``artfs.Artifact``: a draft you fill and log, or a logged version you read and edit."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..core.config import default_project, load_config
from ..core.errors import ArtfsError, ArtfsWarning, NotFound
from ..core.manifest import Manifest, ManifestEntry
from ..core.names import ArtifactPath, check_identifier, parse_project_path
from ..core.paths import check_path, local_target
from ..core.records import VersionInfo
from . import rootdir
from .client import HASH_CACHE_FILE, Client
from .entries import ArtifactEntry
from .hashcache import HashCache
from .localtree import scan_tree
from .references import reference_entries, remember_root
from .tables import MEDIA, PartitionedTable, Table
from .transfer import TransferStats, hash_sources, unchanged_at

if TYPE_CHECKING:
    from .run import Run


class Artifact:
    """A W&B-style artifact. New ones are drafts; ``log_artifact`` or ``save`` commits them."""

    def __init__(
        self,
        name: str,
        type: str = "dataset",
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._name = check_identifier("artifact", name)
        self.type = check_identifier("type", type)
        self.description = description
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.aliases: list[str] = []
        self.tags: list[str] = []
        self._sources: dict[str, Path] = {}
        self._entries: dict[str, ManifestEntry] = {}
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._info: VersionInfo | None = None
        self._manifest: Manifest | None = None
        self._client: Client | None = None
        self._base: int | None = None
        self._origin: ArtifactPath | None = None  # the version this is, or its draft came from
        self.ttl: timedelta | None = None
        self.last_transfer: TransferStats | None = None

    @classmethod
    def _logged(
        cls, client: Client, info: VersionInfo, manifest: Manifest | None = None
    ) -> Artifact:
        art = cls(info.artifact, info.type, info.description, info.metadata)
        art._attach(client, info, manifest)
        return art

    def _attach(self, client: Client, info: VersionInfo, manifest: Manifest | None) -> None:
        self._client, self._info, self._manifest = client, info, manifest
        self.description, self.metadata = info.description, dict(info.metadata)
        self.aliases, self.tags = list(info.aliases), list(info.tags)
        self._sources, self._entries = {}, {}
        self._origin = info.path
        self.ttl = timedelta(seconds=info.expires_at - info.created_at) if info.expires_at else None

    # -- identity -------------------------------------------------------------------------

    def is_draft(self) -> bool:
        return self._info is None

    def _logged_info(self) -> VersionInfo:
        if self._info is None:
            raise ArtfsError(f"artifact {self._name} is a draft: log it first")
        return self._info

    @property
    def name(self) -> str:
        return f"{self._name}:{self._info.label}" if self._info else self._name

    @property
    def qualified_name(self) -> str:
        return str(self._logged_info().path)

    @property
    def version(self) -> str:
        return self._logged_info().label

    @property
    def digest(self) -> str:
        return self._logged_info().digest if self._info else self._draft_manifest().digest

    @property
    def size(self) -> int:
        return self._logged_info().size if self._info else self._draft_manifest().size

    @property
    def file_count(self) -> int:
        return self._logged_info().file_count

    @property
    def state(self) -> str:
        return self._info.state.upper() if self._info else "PENDING"

    @property
    def id(self) -> int:
        return self._logged_info().id

    @property
    def entity(self) -> str:
        return self._logged_info().entity

    @property
    def project(self) -> str:
        return self._logged_info().project

    @property
    def created_at(self) -> float:
        return self._logged_info().created_at

    def __repr__(self) -> str:
        return f"<Artifact {self.qualified_name if self._info else self._name + ' (draft)'}>"

    # -- building a draft -----------------------------------------------------------------

    def _draft_only(self) -> None:
        if self._info is not None:
            raise ArtfsError(f"{self.qualified_name} is logged and immutable: use new_draft()")

    def _put(self, name: str, local: Path | ManifestEntry, overwrite: bool) -> None:
        """Add a local file to hash, or an entry as it is (a link, a directory)."""
        check_path(name)
        if not overwrite and (name in self._sources or name in self._entries):
            raise ArtfsError(f"{name} is already in the artifact (pass overwrite=True)")
        self._entries.pop(name, None)
        self._sources.pop(name, None)
        if isinstance(local, Path):
            self._sources[name] = local
        else:
            self._entries[name] = local

    def add_file(
        self, local_path: str | os.PathLike[str], name: str | None = None, overwrite: bool = False
    ) -> str:
        self._draft_only()
        local = Path(local_path)
        if not local.is_file():
            raise ArtfsError(f"{local} is not a file")
        target = name or local.name
        self._put(target, local.resolve(), overwrite)
        return target

    def add_dir(
        self, local_path: str | os.PathLike[str], name: str | None = None, overwrite: bool = False
    ) -> None:
        """Add what a directory holds, as a version keeps it (``localtree``): files with
        their executable bit and mtime, symlinks that stay inside it, empty directories;
        links leading out of it are followed. What could not be kept as it was is told in
        one ``ArtfsWarning`` line each (followed links, skipped special files, SQLite
        write-ahead logs)."""
        self._draft_only()
        root = Path(local_path)
        if not root.is_dir():
            raise ArtfsError(f"{root} is not a directory")
        found = scan_tree(root, (name or "").strip("/"))
        for path, local in found.files.items():
            self._put(path, local.absolute(), overwrite)
        for path, entry in found.entries.items():
            self._put(path, entry, overwrite)
        for line in found.warnings(root):
            warnings.warn(line, ArtfsWarning, stacklevel=2)

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "w", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """Write a file straight into the draft."""
        self._draft_only()
        check_path(name)
        if self._tmpdir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="artfs-new-")
        local = Path(self._tmpdir.name, *name.split("/"))
        local.parent.mkdir(parents=True, exist_ok=True)
        with open(local, mode, encoding=encoding) as f:
            yield f
        self._put(name, local, overwrite=True)

    def remove(self, name: str) -> None:
        self._draft_only()
        if self._sources.pop(name, None) is None and self._entries.pop(name, None) is None:
            raise NotFound(f"{name} is not in the artifact")

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ManifestEntry]:
        """Record files that stay where they are (file://, http(s)://, s3://)."""
        self._draft_only()
        entries = reference_entries(uri, name, checksum, max_objects)
        if uri.startswith("file://"):  # this user's own files: its reads may follow them
            remember_root(self._client.config if self._client else load_config(), uri)
        for entry in entries:
            self._sources.pop(entry.path, None)
            self._entries[entry.path] = entry
        return entries

    def add(self, obj: Table | PartitionedTable, name: str) -> str:
        """Store a table as a JSON file (``name`` + ``.table.json``)."""
        path = name if name.endswith(obj.SUFFIX) else name + obj.SUFFIX
        with self.new_file(path) as f:
            json.dump(obj.to_json(), f)
        return path

    def get(self, name: str) -> Table | PartitionedTable:
        """A table stored with ``add``, read back (``name`` with or without its suffix)."""
        manifest = self.manifest()
        for candidate in (name, name + Table.SUFFIX, name + PartitionedTable.SUFFIX):
            entry = manifest.get(candidate)
            if entry is not None:
                break
        else:
            raise NotFound(f"{self.name} has no table {name!r}")
        if self._info is None and entry.path in self._sources:
            data = self._sources[entry.path].read_bytes()
        else:
            data = self._require_client().read_bytes(entry)
        obj = json.loads(data)
        kind = MEDIA.get(str(obj.get("_type"))) if isinstance(obj, dict) else None
        if kind is None:
            raise ArtfsError(f"{entry.path} is not a table")
        table = kind.from_json(obj)
        if isinstance(table, PartitionedTable):
            table._artifact = self
        return table

    def _draft_manifest(self) -> Manifest:
        """What the draft would log, hashed the way ``put`` hashes (the hash cache, the
        configured chunk size), so asking a draft's digest twice reads its files once."""
        with contextlib.ExitStack() as stack:
            if self._client is not None:
                config, hashes = self._client.config, self._client.hash_cache
            else:
                config = load_config()
                hashes = stack.enter_context(
                    contextlib.closing(HashCache(config.cache_dir / HASH_CACHE_FILE))
                )
            manifest = Manifest(self._entries.values())
            for entry in hash_sources(
                self._sources, hashes, config.chunk_size, TransferStats()
            ).values():
                manifest.add(entry)
        return manifest

    # -- logging --------------------------------------------------------------------------

    def _target(self, client: Client, project: str | None) -> ArtifactPath:
        """Where logging puts the draft: ``[entity/]project`` when given (a run gives its
        own), else the collection the draft came from, else the configured project or W&B's
        ``uncategorized``; the entity defaults to the draft's origin, else the client's."""
        origin = self._origin
        where = project or (origin.project if origin else default_project(client.config))
        entity, project = parse_project_path(where, origin.entity if origin else client.entity)
        return ArtifactPath(entity, project, self._name)

    def _log(
        self,
        client: Client,
        project: str | None,
        run: Run | None = None,
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
        progress: bool | None = None,
    ) -> Artifact:
        self._draft_only()
        path = self._target(client, project)
        same_collection = self._origin is not None and self._origin.collection == path.collection
        result, stats = client.put(
            path,
            self.type,
            self._sources,
            self._entries.values(),
            progress=progress,
            description=self.description,
            metadata=self.metadata,
            aliases=[*self.aliases, *(aliases or [])],
            tags=[*self.tags, *(tags or [])],
            run=run.path if run else None,
            base=self._base if same_collection else None,
            ttl=self.ttl.total_seconds() if self.ttl else None,
        )
        self.last_transfer = stats
        self.moved_on = result.moved_on
        self.created = result.created
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        self._attach(client, result.version, None)
        return self

    def _upsert(
        self,
        client: Client,
        run: Run,
        distributed_id: str,
        finish: bool,
        aliases: list[str] | None,
    ) -> Artifact:
        self._draft_only()
        result, self.last_transfer = client.put(
            self._target(client, run.project_path),
            self.type,
            self._sources,
            self._entries.values(),
            distributed_id=distributed_id,
            finish=finish,
            description=self.description,
            metadata=self.metadata,
            aliases=[*self.aliases, *(aliases or [])],
            tags=self.tags,
            run=run.path,
        )
        if finish:
            self._attach(client, result.version, None)
        return self

    def save(self, project: str | None = None, *, client: Client | None = None) -> Artifact:
        """Log a draft, or send edits of a logged version's fields.

        As in W&B, the current run (``artfs.run``) logs a draft if there is one and neither
        ``project`` nor ``client`` is given; otherwise the draft is logged without a run (see
        ``_target`` for where). A client made here is closed once the draft is logged.
        """
        if self._info is None:
            from .run import active

            if active.current is not None and project is None and client is None:
                return active.current.log_artifact(self)
            given = client or self._client
            if given is not None:
                return self._log(given, project)
            with Client() as own:
                return self._log(own, project)
        info = self._require_client().backend.update_version(
            self._info.path,
            {
                "description": self.description,
                "metadata": self.metadata,
                "aliases": self.aliases,
                "tags": self.tags,
                "expires_at": self._info.created_at + self.ttl.total_seconds()
                if self.ttl
                else None,
            },
        )
        self._attach(self._require_client(), info, self._manifest)
        return self

    def wait(self, timeout: float | None = None) -> Artifact:
        """Logging is synchronous; kept for W&B compatibility."""
        return self

    def _require_client(self) -> Client:
        if self._client is None:
            raise ArtfsError(f"artifact {self._name} is a draft: log it first")
        return self._client

    def new_draft(self) -> Artifact:
        """A draft holding this version's files, to edit and log as the next version."""
        draft = Artifact(self._name, self.type, self.description, self.metadata)
        draft._entries = {e.path: e for e in self.manifest()}
        draft._base = self._logged_info().number
        draft._client = self._client
        draft._origin = self._origin
        return draft

    def delete(self, delete_aliases: bool = False) -> None:
        info = self._require_client().backend.delete_version(
            self._logged_info().path, delete_aliases
        )
        self._info = info

    # -- reading --------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        if self._info is None:
            return self._draft_manifest()
        if self._manifest is None:
            _, self._manifest = self._require_client().backend.manifest(self._info.path)
        return self._manifest

    def files(self) -> list[ManifestEntry]:
        return list(self.manifest())

    def get_entry(self, name: str) -> ArtifactEntry:
        """One file's entry (W&B's ``ArtifactManifestEntry``): fields and ``download``."""
        entry = self.manifest().get(name)
        if entry is None:
            raise NotFound(f"{self.name} has no file {name!r}")
        return ArtifactEntry(self, entry)

    get_path = get_entry  # W&B's older name, still in use

    def file(self, root: str | os.PathLike[str] | None = None) -> str:
        """Download the artifact's one file under ``root``; returns the file's path."""
        entries = list(self.manifest().files())
        if len(entries) != 1:
            raise ArtfsError(
                f"{self.name} has {len(entries)} files: file() is for single-file artifacts, "
                "use download()"
            )
        return ArtifactEntry(self, entries[0]).download(root)

    def default_root(self) -> Path:
        return Path("artifacts") / f"{self._name}:{self.version}"

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        path_prefix: str | None = None,
        progress: bool | None = False,
        link: str = "copy",
    ) -> str:
        """Materialize the version (or the part under ``path_prefix``) under ``root``, as
        copies, or as ``"reflink"`` or read-only ``"hardlink"`` links of the stored bytes."""
        target = Path(root) if root is not None else self.default_root()
        self.last_transfer = self._require_client().download(
            self._logged_info(), self.manifest(), target, path_prefix, progress, link
        )
        return str(target)

    def checkout(self, root: str | os.PathLike[str] | None = None) -> str:
        """Make ``root`` hold exactly this version: download, then remove anything else
        (files, links, directories; a link is removed, never followed)."""
        target = Path(self.download(root))
        wanted = _with_parents(self.manifest())
        for path, st in sorted(rootdir.entries(target).items(), reverse=True):  # deepest first
            if path not in wanted:
                local = target.joinpath(*path.split("/"))
                if stat.S_ISDIR(st.st_mode):
                    local.rmdir()
                else:
                    local.unlink()
        return str(target)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Raise unless ``root`` holds exactly this version: every entry of its kind (no
        link where a file or directory belongs), files byte for byte with their executable
        bit, links with their target; nothing else."""
        target = Path(root) if root is not None else self.default_root()
        manifest = self.manifest()
        present = rootdir.entries(target)
        client = self._require_client()
        for entry in manifest:
            if entry.ref is not None:
                continue
            if entry.path not in present:
                raise ArtfsError(f"verify failed: {entry.path} is missing from {target}")
            dest = local_target(target, entry.path)
            if not unchanged_at(dest, entry, client.hash_cache, client.config.chunk_size):
                raise ArtfsError(f"verify failed: {entry.path} differs from {self.name}")
        extra = sorted(set(present) - _with_parents(manifest))
        if extra:
            raise ArtfsError(f"verify failed: {extra[0]} is not part of {self.name}")

    # -- lineage --------------------------------------------------------------------------

    def logged_by(self) -> Run | None:
        from .run import Run

        client = self._require_client()
        runs = client.backend.version_runs(self._logged_info().path, "logged_by")
        return Run(client, runs[0]) if runs else None

    def used_by(self) -> list[Run]:
        from .run import Run

        client = self._require_client()
        return [
            Run(client, r) for r in client.backend.version_runs(self._logged_info().path, "used_by")
        ]


def _with_parents(manifest: Manifest) -> set[str]:
    """The manifest's paths and every directory above them."""
    out = set()
    for path in manifest.entries:
        while path and path not in out:
            out.add(path)
            path = path.rpartition("/")[0]
    return out
