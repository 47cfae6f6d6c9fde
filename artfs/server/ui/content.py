"""A version's file bytes for the browser: read through the backend, one chunk at a time,
each verified against its digest before any byte of it is passed on."""

from __future__ import annotations

from collections.abc import Iterator

from ...client.backend import Backend
from ...core.digest import verify_stream
from ...core.errors import ArtfsError, NotFound
from ...core.manifest import Manifest, ManifestEntry


def file_kind(entry: ManifestEntry) -> str:
    """``file``, ``link`` or ``dir`` (manifests before format 2 hold only files)."""
    return str(getattr(entry, "kind", "file"))


def stored_entry(manifest: Manifest, path: str) -> ManifestEntry:
    """The entry of a regular file whose bytes the store holds, or a one-line refusal."""
    entry = manifest.get(path)
    if entry is None:
        raise NotFound(f"no file {path!r} in this version")
    if entry.ref is not None:
        raise ArtfsError(f"{path} is stored elsewhere ({entry.ref}); fetch it from there")
    if file_kind(entry) != "file":
        raise ArtfsError(f"{path} is a {file_kind(entry)}, not a file")
    return entry


def chunks(backend: Backend, entry: ManifestEntry) -> Iterator[bytes]:
    """The file's bytes, a verified chunk at a time (``DigestMismatch`` stops the stream)."""
    for ref in entry.chunks:
        data = bytearray()
        verify_stream(ref.digest, backend.read_chunk(ref.digest), sink=data.extend)
        yield bytes(data)


def head(backend: Backend, entry: ManifestEntry, limit: int) -> bytes:
    """The first ``limit`` bytes (whole chunks are read, to verify them)."""
    data = bytearray()
    for block in chunks(backend, entry):
        data += block
        if len(data) >= limit:
            break
    return bytes(data[:limit])
