"""BLAKE3 content digests, written ``blake3:<64 hex>``."""

from __future__ import annotations

import re

import blake3

from .errors import InvalidManifest

PREFIX = "blake3:"
_DIGEST_RE = re.compile(r"blake3:[0-9a-f]{64}\Z")


_PARALLEL_FROM = 4 << 20


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    """Digest of an in-memory buffer; large buffers are hashed on several threads."""
    threads = blake3.blake3.AUTO if len(data) >= _PARALLEL_FROM else 1
    return PREFIX + blake3.blake3(data, max_threads=threads).hexdigest()


class Hasher:
    """Incremental digest for streamed content, which arrives in blocks of about a MiB:
    one thread each, since transfers already run several streams in parallel."""

    def __init__(self) -> None:
        self._h = blake3.blake3()

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
