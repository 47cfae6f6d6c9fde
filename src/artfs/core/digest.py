"""BLAKE3 content digests, written ``blake3:<64 hex>``."""

from __future__ import annotations

import re

import blake3

from .errors import InvalidManifest

PREFIX = "blake3:"
_DIGEST_RE = re.compile(r"blake3:[0-9a-f]{64}\Z")


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    """Digest of an in-memory buffer; large buffers are hashed on several threads."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO) if len(data) > 1 << 20 else None
    if hasher is None:
        return PREFIX + blake3.blake3(data).hexdigest()
    hasher.update(data)
    return PREFIX + hasher.hexdigest()


class Hasher:
    """Incremental digest for streamed content."""

    def __init__(self) -> None:
        self._h = blake3.blake3(max_threads=blake3.blake3.AUTO)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def digest(self) -> str:
        return PREFIX + self._h.hexdigest()


def check_digest(value: object) -> str:
    """Return ``value`` if it is a well-formed digest, else raise ``InvalidManifest``."""
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise InvalidManifest(f"malformed digest {value!r}: expected blake3:<64 hex digits>")
    return value


def hex_of(digest: str) -> str:
    """The hex part of a digest, used to name chunk files."""
    return check_digest(digest)[len(PREFIX) :]


EMPTY_DIGEST = digest_bytes(b"")
