"""Reference entries: files whose bytes stay where they are (``file://``, ``http(s)://``,
``s3://``), recorded with size and a checksum so a later read notices a changed target.

``extra["checksum"]`` says what the entry's digest stands for:

- ``content``: the BLAKE3 of the bytes (``file://`` and ``http(s)://`` with checksum=True);
  reads hash the bytes again and refuse a mismatch.
- ``etag``: the object's ETag (and S3 version id) recorded in ``extra``; the digest is the
  BLAKE3 of ``"<uri>\\n<etag>\\n<version>"``. Reads compare the ETag (S3 reads the recorded
  version when there is one), as W&B does for S3.
- ``none`` (checksum=False): the digest is the BLAKE3 of the URI; reads are not checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

import requests

from ..core.digest import Hasher, digest_bytes, verify_stream
from ..core.errors import ArtfsError, DigestMismatch, InvalidPath, NotFound
from ..core.manifest import ManifestEntry
from ..core.paths import check_path
from ..store.s3blobs import s3_call, s3_client

DEFAULT_MAX_OBJECTS = 10_000_000
BLOCK = 1 << 20
TIMEOUT_S = 60


class ReferenceChanged(ArtfsError):
    code = "reference_changed"


def reference_entries(
    uri: str, name: str | None = None, checksum: bool = True, max_objects: int | None = None
) -> list[ManifestEntry]:
    """Manifest entries for everything ``uri`` names (a file, a directory, a prefix)."""
    scheme = urlparse(uri).scheme
    limit = max_objects or DEFAULT_MAX_OBJECTS
    if scheme == "file":
        return _file_entries(uri, name, checksum, limit)
    if scheme in ("http", "https"):
        return [_http_entry(uri, name, checksum)]
    if scheme == "s3":
        return _s3_entries(uri, name, checksum, limit)
    raise InvalidPath(f"unsupported reference {uri!r}: use file://, http(s):// or s3://")


def _entry(path: str, uri: str, size: int, digest: str, **extra: Any) -> ManifestEntry:
    return ManifestEntry(check_path(path), size, digest, (), uri, extra).check()


def _identity(uri: str, *parts: object) -> str:
    return digest_bytes("\n".join([uri, *map(str, parts)]).encode())


def _file_entries(uri: str, name: str | None, checksum: bool, limit: int) -> list[ManifestEntry]:
    root = Path(unquote(urlparse(uri).path))
    if not root.is_absolute() or not root.exists():
        raise InvalidPath(f"reference {uri!r}: no such file or directory")
    if root.is_file():
        files = [(name or root.name, root)]
    else:
        prefix = name if name is not None else root.name
        found = sorted(p for p in root.rglob("*") if p.is_file())[:limit]
        files = [
            ("/".join(filter(None, [prefix, p.relative_to(root).as_posix()])), p) for p in found
        ]
    out = []
    for path, local in files:
        target = local.resolve().as_uri()
        if checksum:
            digest, size = _hash_stream(_read_file(local))
            out.append(_entry(path, target, size, digest, checksum="content"))
        else:
            out.append(
                _entry(path, target, local.stat().st_size, _identity(target), checksum="none")
            )
    return out


def _http_entry(uri: str, name: str | None, checksum: bool) -> ManifestEntry:
    path = name or Path(urlparse(uri).path).name or "index"
    if checksum:
        with requests.get(uri, stream=True, timeout=TIMEOUT_S) as response:
            _check_http(uri, response)
            digest, size = _hash_stream(response.iter_content(BLOCK))
            etag = response.headers.get("ETag")
        return _entry(path, uri, size, digest, checksum="content", etag=etag)
    response = requests.head(uri, allow_redirects=True, timeout=TIMEOUT_S)
    _check_http(uri, response)
    size = int(response.headers.get("Content-Length", 0))
    return _entry(path, uri, size, _identity(uri), checksum="none")


def _s3_entries(uri: str, name: str | None, checksum: bool, limit: int) -> list[ManifestEntry]:
    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    s3 = s3_client()
    what = f"reference {uri}"
    try:
        objects = [(key, s3_call(what, s3.head_object, Bucket=bucket, Key=key))] if key else []
    except NotFound:
        objects = []
    if objects:
        entries_for = [(name or Path(key).name, key, objects[0][1])]
    else:
        prefix = key.rstrip("/") + "/" if key else ""
        base = name if name is not None else Path(key.rstrip("/")).name
        entries_for = []
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in s3_call(what, list, pages):
            for obj in page.get("Contents", []):
                if obj["Size"] == 0 and obj["Key"].endswith("/"):
                    continue
                rel = obj["Key"][len(prefix) :]
                head = s3_call(what, s3.head_object, Bucket=bucket, Key=obj["Key"])  # version id
                entries_for.append(("/".join(filter(None, [base, rel])), obj["Key"], head))
                if len(entries_for) >= limit:
                    break
        if not entries_for:
            raise InvalidPath(f"reference {uri!r}: no such object or prefix")
    out = []
    for path, obj_key, head in entries_for:
        target = f"s3://{bucket}/{obj_key}"
        etag, version = head["ETag"].strip('"'), head.get("VersionId")
        if checksum:
            digest = _identity(target, etag, version or "")
            out.append(
                _entry(
                    path,
                    target,
                    head["ContentLength"],
                    digest,
                    checksum="etag",
                    etag=etag,
                    version_id=version,
                )
            )
        else:
            out.append(
                _entry(path, target, head["ContentLength"], _identity(target), checksum="none")
            )
    return out


def fetch_reference(entry: ManifestEntry, out: IO[bytes]) -> None:
    """Write a reference entry's bytes to ``out``, refusing them if the target changed."""
    assert entry.ref is not None
    scheme = urlparse(entry.ref).scheme
    with contextlib.ExitStack() as stack:
        if scheme == "file":
            local = Path(unquote(urlparse(entry.ref).path))
            if not local.is_file():
                raise ReferenceChanged(f"{entry.path}: referenced file {local} is missing")
            blocks = _read_file(local)
        elif scheme in ("http", "https"):
            response = stack.enter_context(requests.get(entry.ref, stream=True, timeout=TIMEOUT_S))
            _check_http(entry.ref, response)
            blocks = response.iter_content(BLOCK)
        else:
            blocks = _s3_blocks(entry)
        if entry.extra.get("checksum") != "content":
            for block in blocks:
                out.write(block)
            return
        try:
            verify_stream(entry.digest, blocks, out.write, limit=None)
        except DigestMismatch:
            raise ReferenceChanged(
                f"{entry.path}: referenced {entry.ref} changed since it was logged "
                f"(its content no longer matches {entry.digest})"
            ) from None


def _s3_blocks(entry: ManifestEntry) -> Iterator[bytes]:
    assert entry.ref is not None
    parsed = urlparse(entry.ref)
    args = {"Bucket": parsed.netloc, "Key": parsed.path.lstrip("/")}
    if entry.extra.get("version_id"):
        args["VersionId"] = entry.extra["version_id"]
    what = f"{entry.path}: reference {entry.ref}"
    obj = s3_call(what, s3_client().get_object, **args)
    if entry.extra.get("checksum") == "etag" and obj["ETag"].strip('"') != entry.extra.get("etag"):
        raise ReferenceChanged(f"{entry.path}: {entry.ref} changed since it was logged")
    with contextlib.closing(obj["Body"]) as body:
        yield from body.iter_chunks(BLOCK)


def _read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            yield block


def _hash_stream(blocks: Iterator[bytes]) -> tuple[str, int]:
    hasher, size = Hasher(), 0
    for block in blocks:
        hasher.update(block)
        size += len(block)
    return hasher.digest(), size


def _check_http(uri: str, response: requests.Response) -> None:
    if response.status_code >= 400:
        raise ArtfsError(f"reference {uri}: HTTP {response.status_code}")
