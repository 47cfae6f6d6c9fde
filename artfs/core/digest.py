"""BLAKE3 content digests, written ``blake3:<64 hex>``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import blake3

from .errors import DigestMismatch, InvalidManifest

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


def derived_digest(context: str, data: bytes) -> str:
    """A digest of ``data`` in a namespace of its own (BLAKE3's key derivation mode, keyed by
    ``context``): it never equals the plain digest of any bytes, nor one of another context.
    File digests of several chunks, reference identities and version digests are derived, so
    no upload can be crafted to carry one of them as its content digest."""
    return PREFIX + blake3.blake3(data, derive_key_context=f"artfs 2026-12 {context}").hexdigest()


def check_digest(value: object) -> str:
    """Return ``value`` if it is a well-formed digest, else raise ``InvalidManifest``."""
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise InvalidManifest(f"malformed digest {value!r}: expected blake3:<64 hex digits>")
    return value


def hex_of(digest: str) -> str:
    """The hex part of a digest, used to name chunk files."""
    return check_digest(digest)[len(PREFIX) :]


EMPTY_DIGEST = digest_bytes(b"")


MAX_CHUNK_BYTES = 256 << 20  # the largest chunk a store accepts (the default chunk is 16 MiB)
Block = bytes | bytearray | memoryview


def verify_stream(
    digest: str,
    data: Block | Iterable[Block],
    sink: Callable[[Block], object] | None = None,
    limit: int | None = MAX_CHUNK_BYTES,
) -> int:
    """Hash ``data`` (a buffer or an iterable of blocks) while passing each block to ``sink``;
    raise ``DigestMismatch`` unless the bytes hash to ``digest``. Returns the size.

    ``limit`` stops an endless stream early. Callers keep what ``sink`` wrote only if this
    returns: that is how every upload is verified before it is stored.
    """
    hasher, size = Hasher(), 0
    for block in (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data:
        size += len(block)
        if limit is not None and size > limit:
            raise InvalidManifest(f"chunk {digest} is larger than {limit} bytes; not stored")
        hasher.update(block)
        if sink is not None:
            sink(block)
    actual = hasher.digest()
    if actual != digest:
        raise DigestMismatch(f"bytes sent as {digest} have the digest {actual}; not stored")
    return size
