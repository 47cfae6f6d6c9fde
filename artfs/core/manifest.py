"""The manifest: a version's entries, its JSON form (docs/FORMAT.md) and its digest."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .chunking import ChunkRef, FileContent
from .digest import EMPTY_DIGEST, check_digest, digest_bytes
from .errors import InvalidManifest
from .paths import check_path

FORMAT_NAME = "artfs.manifest"
FORMAT_VERSION = 1
REFERENCE_SCHEMES = ("file://", "http://", "https://", "s3://")


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a version. ``ref`` is set for reference entries (bytes kept elsewhere)."""

    path: str
    size: int
    digest: str
    chunks: tuple[ChunkRef, ...] = ()
    ref: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_content(cls, path: str, content: FileContent) -> ManifestEntry:
        return cls(path, content.size, content.digest, content.chunks)

    def check(self) -> ManifestEntry:
        """Raise ``InvalidPath``/``InvalidManifest`` unless the entry is self-consistent."""
        check_path(self.path)
        check_digest(self.digest)
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise InvalidManifest(f"{self.path}: size must be a non-negative integer")
        if self.ref is not None:
            if not isinstance(self.ref, str) or not self.ref.startswith(REFERENCE_SCHEMES):
                raise InvalidManifest(
                    f"{self.path}: a reference must be a file://, http(s):// or s3:// URI"
                )
            if self.chunks:
                raise InvalidManifest(f"{self.path}: a reference entry has no chunks")
            return self
        for chunk in self.chunks:
            check_digest(chunk.digest)
            if not isinstance(chunk.size, int) or chunk.size <= 0:
                raise InvalidManifest(f"{self.path}: chunk sizes must be positive integers")
        if sum(chunk.size for chunk in self.chunks) != self.size:
            raise InvalidManifest(f"{self.path}: chunk sizes do not add up to the file size")
        if len(self.chunks) == 1 and self.chunks[0].digest != self.digest:
            raise InvalidManifest(f"{self.path}: a one-chunk file's chunk digest is its digest")
        if self.size == 0 and self.digest != EMPTY_DIGEST:
            raise InvalidManifest(f"{self.path}: wrong digest for an empty file")
        return self

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size, "digest": self.digest}
        if len(self.chunks) > 1:
            out["chunks"] = [[c.digest, c.size] for c in self.chunks]
        if self.ref is not None:
            out["ref"] = self.ref
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_json(cls, path: str, obj: Any) -> ManifestEntry:
        """Parse an entry; ``check`` it before use (``Manifest`` does, once per entry)."""
        if not isinstance(obj, dict):
            raise InvalidManifest(f"{path!r}: an entry must be a JSON object")
        try:
            size, digest = obj["size"], obj["digest"]
            ref = obj.get("ref")
            if "chunks" in obj:
                chunks = tuple(ChunkRef(d, s) for d, s in obj["chunks"])
            else:
                chunks = (ChunkRef(digest, size),) if size and ref is None else ()
            extra = obj.get("extra") or {}
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidManifest(f"{path!r}: malformed entry ({exc})") from None
        if not isinstance(extra, dict) or (ref is not None and not isinstance(ref, str)):
            raise InvalidManifest(f"{path!r}: malformed entry")
        return cls(path, size, digest, chunks, ref, extra)


def version_digest(entries: Iterable[ManifestEntry]) -> str:
    """The digest of the sorted ``path:file-digest`` lines: equal content, equal digest."""
    lines = sorted(f"{e.path}:{e.digest}\n".encode() for e in entries)
    return digest_bytes(b"".join(lines))


class Manifest:
    """The entries of a version, keyed by path."""

    def __init__(self, entries: Iterable[ManifestEntry] = ()):
        self.entries: dict[str, ManifestEntry] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: ManifestEntry) -> None:
        entry.check()
        self.entries[entry.path] = entry

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, path: object) -> bool:
        return path in self.entries

    def get(self, path: str) -> ManifestEntry | None:
        return self.entries.get(path)

    @property
    def digest(self) -> str:
        return version_digest(self.entries.values())

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries.values())

    def chunks(self) -> dict[str, int]:
        """Every distinct chunk the stored entries use, with its size."""
        return {c.digest: c.size for e in self.entries.values() for c in e.chunks}

    def check_tree(self) -> None:
        """Refuse a file that is also used as a directory (``a`` and ``a/b``)."""
        dirs = {p.rsplit("/", 1)[0] for p in self.entries if "/" in p}
        parents = {"/".join(d.split("/")[: i + 1]) for d in dirs for i in range(d.count("/") + 1)}
        clash = parents & self.entries.keys()
        if clash:
            raise InvalidManifest(f"{min(clash)!r} is both a file and a directory")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "entries": {p: self.entries[p].to_json() for p in sorted(self.entries)},
        }

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, obj: Any) -> Manifest:
        if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
            raise InvalidManifest("not an artfs manifest (missing 'format': 'artfs.manifest')")
        if obj.get("version") != FORMAT_VERSION:
            raise InvalidManifest(f"unsupported manifest version {obj.get('version')!r}")
        entries = obj.get("entries")
        if not isinstance(entries, dict):
            raise InvalidManifest("manifest 'entries' must be an object")
        manifest = cls(ManifestEntry.from_json(p, e) for p, e in entries.items())
        manifest.check_tree()
        return manifest

    @classmethod
    def loads(cls, data: bytes | str) -> Manifest:
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise InvalidManifest(f"manifest is not valid JSON ({exc})") from None
        return cls.from_json(obj)
