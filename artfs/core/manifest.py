"""The manifest: a version's entries, its JSON form (docs/FORMAT.md, format 2) and its digests.

An entry is a file (bytes in chunks), a reference (bytes elsewhere, named by a URI), a
symlink whose target stays inside the version, or a directory (kept so empty directories
survive). Every digest here is something a store can check from facts it verified:

- a file's digest is ``chunking.file_digest`` of its chunk list, so a store that verified
  each chunk (and its size) has verified the file digest;
- a reference's digest is an identity derived from its URI and checksum facts, in a
  namespace of its own: a reference never shares a digest with content it was not checked
  against;
- the version digest is derived from the sorted entries (kind, path, mode, link target,
  file digest or reference identity; not mtimes), so equal content has an equal digest.

Format 1 manifests (artfs 0.1) are read and converted on the way in (``from_json``).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .chunking import ChunkRef, FileContent, file_digest
from .digest import MAX_CHUNK_BYTES, check_digest, derived_digest
from .errors import InvalidManifest
from .paths import CONTROL_CHARS, check_link, check_path

FORMAT_NAME = "artfs.manifest"
FORMAT_VERSION = 2
REFERENCE_SCHEMES = ("file://", "http://", "https://", "s3://")
FILE, LINK, DIR = "file", "link", "dir"
KINDS = (FILE, LINK, DIR)
FILE_MODE, EXEC_MODE = 0o644, 0o755  # a version keeps the executable bit, as git does
MAX_FILE_BYTES = 1 << 60
MAX_VERSION_BYTES = 1 << 62  # (sizes are 64-bit signed integers in the database)
MAX_EXTRA_KEYS = 16
MAX_EXTRA_TEXT = 1024
_V1_FIELDS = {"size", "digest", "chunks", "ref", "extra"}  # all an entry of format 1 had
CHECKSUMS = ("content", "etag", "none")  # what a reference's bytes are checked against
_FIELDS = {
    FILE: {"size", "digest", "chunks", "mode", "mtime", "ref", "extra"},
    LINK: {"kind", "link", "mtime"},
    DIR: {"kind", "mtime"},
}


def file_mode(st_mode: int) -> int:
    """The mode a version records for a file: executable (by its owner) or not."""
    return EXEC_MODE if st_mode & stat.S_IXUSR else FILE_MODE


def reference_digest(uri: str, extra: Mapping[str, Any]) -> str:
    """The identity of a reference: its URI and what its bytes are checked against."""
    kind = extra.get("checksum")
    facts = {"content": ("content",), "etag": ("etag", "version_id")}.get(str(kind), ())
    text = "\n".join([uri, str(kind), *(str(extra.get(f) or "") for f in facts)])
    return derived_digest("reference identity", text.encode())


def _fs(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class ManifestEntry:
    """One entry of a version. Build files with ``of_file``, the rest with ``symlink``,
    ``directory`` and ``reference``; ``check`` holds each kind to its rules."""

    path: str
    size: int = 0
    digest: str = ""
    chunks: tuple[ChunkRef, ...] = ()
    ref: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    kind: str = FILE
    mode: int = FILE_MODE
    mtime_ns: int | None = None
    link: str | None = None

    @classmethod
    def of_file(
        cls, path: str, content: FileContent, mode: int = FILE_MODE, mtime_ns: int | None = None
    ) -> ManifestEntry:
        return cls(path, content.size, content.digest, content.chunks, mode=mode, mtime_ns=mtime_ns)

    @classmethod
    def symlink(cls, path: str, target: str, mtime_ns: int | None = None) -> ManifestEntry:
        return cls(path, kind=LINK, mode=0o777, mtime_ns=mtime_ns, link=target)

    @classmethod
    def directory(cls, path: str, mtime_ns: int | None = None) -> ManifestEntry:
        return cls(path, kind=DIR, mode=EXEC_MODE, mtime_ns=mtime_ns)

    @classmethod
    def reference(
        cls, path: str, uri: str, size: int, extra: Mapping[str, Any], mtime_ns: int | None = None
    ) -> ManifestEntry:
        digest = reference_digest(uri, extra)
        return cls(path, size, digest, (), uri, dict(extra), mtime_ns=mtime_ns)

    @property
    def is_file(self) -> bool:
        """A regular file (stored or referenced), as opposed to a link or a directory."""
        return self.kind == FILE

    @property
    def content(self) -> FileContent:
        return FileContent(self.size, self.chunks)

    def check(self) -> ManifestEntry:
        """Raise ``InvalidPath``/``InvalidManifest`` unless the entry keeps its kind's rules."""
        check_path(self.path)
        if self.mtime_ns is not None and not _is_int(self.mtime_ns, -(1 << 63), 1 << 63):
            raise InvalidManifest(f"{self.path}: mtime must be an integer of nanoseconds")
        if self.kind == LINK:
            check_link(self.path, self.link)
            self._require(not self.size and not self.chunks and self.ref is None, "a link")
            return self
        if self.kind == DIR:
            self._require(not self.size and not self.chunks and self.ref is None, "a directory")
            return self
        if self.kind != FILE or self.link is not None:
            raise InvalidManifest(f"{self.path}: unknown kind {self.kind!r}")
        if self.mode not in (FILE_MODE, EXEC_MODE):
            raise InvalidManifest(f"{self.path}: a file's mode is 0644 or 0755")
        if not _is_int(self.size, 0, MAX_FILE_BYTES):
            raise InvalidManifest(f"{self.path}: size must be an integer of 0 to 2**60 bytes")
        _check_extra(self.path, self.extra)
        if self.ref is not None:
            self._check_reference()
        else:
            self._check_chunks()
        return self

    def _require(self, bare: bool, what: str) -> None:
        if not bare or self.extra:
            raise InvalidManifest(f"{self.path}: {what} has no size, chunks, reference or extra")

    def _check_chunks(self) -> None:
        for chunk in self.chunks:
            check_digest(chunk.digest)
            if not _is_int(chunk.size, 1, MAX_CHUNK_BYTES):
                raise InvalidManifest(
                    f"{self.path}: chunk sizes must be integers of 1 to {MAX_CHUNK_BYTES} bytes"
                )
        if sum(chunk.size for chunk in self.chunks) != self.size:
            raise InvalidManifest(f"{self.path}: chunk sizes do not add up to the file size")
        if self.digest != file_digest(self.chunks):
            raise InvalidManifest(
                f"{self.path}: the digest {self.digest} is not the one its chunks give"
            )

    def _check_reference(self) -> None:
        if not isinstance(self.ref, str) or not self.ref.startswith(REFERENCE_SCHEMES):
            raise InvalidManifest(
                f"{self.path}: a reference must be a file://, http(s):// or s3:// URI"
            )
        texts = [self.ref, *(v for v in self.extra.values() if isinstance(v, str))]
        if any(CONTROL_CHARS.search(text) for text in texts):  # (they join its identity's lines)
            raise InvalidManifest(f"{self.path}: a reference holds control characters")
        if self.chunks:
            raise InvalidManifest(f"{self.path}: a reference entry has no chunks")
        checksum = self.extra.get("checksum")
        if checksum not in CHECKSUMS:
            raise InvalidManifest(f"{self.path}: a reference's checksum is one of {CHECKSUMS}")
        if checksum == "content":
            check_digest(self.extra.get("content"))
        if self.digest != reference_digest(self.ref, self.extra):
            raise InvalidManifest(f"{self.path}: the digest is not the reference's identity")

    def digest_line(self) -> bytes:
        """What this entry adds to the version digest (no mtime: it is not content)."""
        if self.kind == LINK:
            assert self.link is not None
            return b"L\0%s\0%s\n" % (_fs(self.path), _fs(self.link))
        if self.kind == DIR:
            return b"D\0%s\n" % _fs(self.path)
        tag = b"F" if self.ref is None else b"R"
        return b"%s\0%s\0%o\0%s\n" % (tag, _fs(self.path), self.mode, self.digest.encode())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.kind == FILE:
            out.update(size=self.size, digest=self.digest)
            if len(self.chunks) > 1:
                out["chunks"] = [[c.digest, c.size] for c in self.chunks]
            if self.mode != FILE_MODE:
                out["mode"] = self.mode
            if self.ref is not None:
                out["ref"] = self.ref
            if self.extra:
                out["extra"] = dict(self.extra)
        else:
            out["kind"] = self.kind
            if self.link is not None:
                out["link"] = self.link
        if self.mtime_ns is not None:
            out["mtime"] = self.mtime_ns
        return out

    @classmethod
    def from_json(cls, path: str, obj: Any, version: int = FORMAT_VERSION) -> ManifestEntry:
        """Parse an entry of a format 2 (or, converted, format 1) manifest; ``Manifest``
        checks it before use."""
        if not isinstance(obj, dict):
            raise InvalidManifest(f"{path!r}: an entry must be a JSON object")
        if version == 1:
            return _from_v1(path, obj)
        kind = obj.get("kind", FILE)
        unknown = set(obj) - _FIELDS.get(kind, set())
        if unknown or kind not in KINDS:
            what = f"field {min(unknown)!r}" if unknown else f"kind {kind!r}"
            raise InvalidManifest(f"{path!r}: unknown {what}")
        mtime = obj.get("mtime")
        if kind == LINK:
            return cls.symlink(path, obj.get("link", ""), mtime)
        if kind == DIR:
            return cls.directory(path, mtime)
        try:
            size, digest = obj["size"], obj["digest"]
            chunks = _chunk_list(obj, size, digest)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidManifest(f"{path!r}: malformed entry ({exc})") from None
        extra = obj.get("extra") or {}
        if not isinstance(extra, dict):
            raise InvalidManifest(f"{path!r}: 'extra' must be an object")
        mode = obj.get("mode", FILE_MODE)
        return cls(path, size, digest, chunks, obj.get("ref"), extra, FILE, mode, mtime)


def _chunk_list(obj: dict[str, Any], size: Any, digest: Any) -> tuple[ChunkRef, ...]:
    """The chunks an entry lists, or the one chunk a small file is, or none."""
    if "chunks" in obj:
        listed = obj["chunks"]
        if not isinstance(listed, list) or len(listed) < 2:
            raise ValueError("'chunks' lists two chunks or more")
        return tuple(ChunkRef(d, s) for d, s in listed)
    return (ChunkRef(digest, size),) if size and "ref" not in obj else ()


def _from_v1(path: str, obj: dict[str, Any]) -> ManifestEntry:
    """A format 1 entry in format 2: a file of several chunks gets the digest its chunk list
    gives (format 1 recorded the whole file's BLAKE3, which no store could check), and a
    reference keeps what it was checked against, under its own identity."""
    unknown = set(obj) - _V1_FIELDS
    if unknown:
        raise InvalidManifest(f"{path!r}: unknown field {min(unknown)!r}")
    try:
        size, digest, ref = obj["size"], obj["digest"], obj.get("ref")
        chunks = _chunk_list(obj, size, digest)
        extra = dict(obj.get("extra") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidManifest(f"{path!r}: malformed entry ({exc})") from None
    if ref is None:
        return ManifestEntry(path, size, file_digest(chunks), chunks)
    if not isinstance(ref, str):
        raise InvalidManifest(f"{path!r}: malformed reference")
    if extra.get("checksum") not in CHECKSUMS:
        extra["checksum"] = "none"
    if extra["checksum"] == "content":
        extra["content"] = digest
    return ManifestEntry.reference(path, ref, size, extra)


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


def _check_extra(path: str, extra: object) -> None:
    """Bounded free-form facts: a few short keys with short text, numbers or null."""
    if not isinstance(extra, Mapping) or len(extra) > MAX_EXTRA_KEYS:
        raise InvalidManifest(f"{path}: 'extra' must be an object of at most {MAX_EXTRA_KEYS} keys")
    for key, value in extra.items():
        short = isinstance(value, str) and len(value) <= MAX_EXTRA_TEXT
        if not (isinstance(key, str) and len(key) <= 64) or not (
            short or value is None or _is_int(value, -(1 << 63), 1 << 63)
        ):
            raise InvalidManifest(f"{path}: 'extra' holds short strings, integers or null")


def version_digest(entries: Iterable[ManifestEntry]) -> str:
    """The digest of the sorted entry lines: equal content, equal digest, whatever order
    the entries were added in."""
    return derived_digest("version digest", b"".join(sorted(e.digest_line() for e in entries)))


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

    def files(self) -> Iterator[ManifestEntry]:
        """The regular files (stored or referenced): what ``file_count`` counts."""
        return (e for e in self.entries.values() if e.kind == FILE)

    @property
    def digest(self) -> str:
        return version_digest(self.entries.values())

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries.values())

    @property
    def file_count(self) -> int:
        return sum(1 for _ in self.files())

    def chunks(self) -> dict[str, int]:
        """Every distinct chunk the stored entries use, with its size; a digest listed with
        two sizes is refused (a chunk has the one size its bytes have)."""
        sizes: dict[str, int] = {}
        for entry in self.entries.values():
            for chunk in entry.chunks:
                if sizes.setdefault(chunk.digest, chunk.size) != chunk.size:
                    raise InvalidManifest(f"chunk {chunk.digest} is listed with two sizes")
        return sizes

    def check(self) -> Manifest:
        """Check every entry and the tree again (a store never relies on its caller having
        built the manifest through ``add``)."""
        for entry in self.entries.values():
            entry.check()
        if self.size > MAX_VERSION_BYTES:
            raise InvalidManifest(f"a version holds at most {MAX_VERSION_BYTES} bytes")
        self.check_tree()
        return self

    def check_tree(self) -> None:
        """Refuse an entry below a file or a link (``a`` and ``a/b``): only directories
        have children."""
        parents = set()
        for path in self.entries:
            i = path.find("/")
            while i != -1:
                parents.add(path[:i])
                i = path.find("/", i + 1)
        clash = sorted(p for p in parents if p in self.entries and self.entries[p].kind != DIR)
        if clash:
            raise InvalidManifest(f"{clash[0]!r} is a file or link and also a directory")

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
        """Parse a manifest of format 2, or of format 1 (converted to format 2)."""
        if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
            raise InvalidManifest("not an artfs manifest (missing 'format': 'artfs.manifest')")
        version = obj.get("version")
        if version not in (1, FORMAT_VERSION) or isinstance(version, bool):
            raise InvalidManifest(f"unsupported manifest version {version!r}")
        entries = obj.get("entries")
        if not isinstance(entries, dict):
            raise InvalidManifest("manifest 'entries' must be an object")
        manifest = cls(ManifestEntry.from_json(p, e, version) for p, e in entries.items())
        manifest.check_tree()
        return manifest

    @classmethod
    def loads(cls, data: bytes | str) -> Manifest:
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise InvalidManifest(f"manifest is not valid JSON ({exc})") from None
        return cls.from_json(obj)
