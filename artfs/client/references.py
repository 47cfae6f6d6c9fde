"""Reference entries: files whose bytes stay where they are (``file://``, ``http(s)://``,
``s3://``), recorded with size and what a later read checks them against
(``extra["checksum"]``):

- ``content``: the BLAKE3 of the bytes (``extra["content"]``); reads hash the bytes again
  and refuse a mismatch.
- ``etag``: the object's ETag (and S3 version id) in ``extra``; reads compare the ETag
  (S3 reads the recorded version when there is one), as W&B does for S3.
- ``none`` (checksum=False): nothing; reads are not checked, and say so.

An entry's digest is the reference's identity (``core.manifest.reference_digest``), never a
content digest it was not checked against. A version logged by someone else must not make
this client read this machine's own files: ``file://`` references are read only below the
roots the reader allows (``ARTFS_FILE_REFERENCE_ROOTS``, plus the roots this user's own
``add_reference`` calls named, remembered in the state directory), and only with a
content checksum. Nor read the cloud's instance metadata (a link-local address) for it:
``http(s)://`` references to such hosts are refused, redirects included.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlparse

from ..core.config import Config
from ..core.digest import Hasher, verify_stream
from ..core.errors import (
    ArtfsError,
    DigestMismatch,
    InvalidManifest,
    InvalidPath,
    NotFound,
    PermissionDenied,
)
from ..core.manifest import ManifestEntry
from ..core.paths import check_path

if TYPE_CHECKING:  # requests and boto3 load only when a reference is read or listed
    import requests

ROOTS_FILE = "file-reference-roots.json"
DEFAULT_MAX_OBJECTS = 10_000_000
BLOCK = 1 << 20
TIMEOUT_S = 60
MAX_REDIRECTS = 5


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


def _entry(path: str, uri: str, size: int, **extra: Any) -> ManifestEntry:
    return ManifestEntry.reference(check_path(path), uri, size, extra).check()


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
            out.append(_entry(path, target, size, checksum="content", content=digest))
        else:
            out.append(_entry(path, target, local.stat().st_size, checksum="none"))
    return out


def _http_entry(uri: str, name: str | None, checksum: bool) -> ManifestEntry:
    import requests

    path = name or Path(urlparse(uri).path).name or "index"
    if checksum:
        with requests.get(uri, stream=True, timeout=TIMEOUT_S) as response:
            _check_http(uri, response)
            digest, size = _hash_stream(response.iter_content(BLOCK))
        return _entry(path, uri, size, checksum="content", content=digest)
    response = requests.head(uri, allow_redirects=True, timeout=TIMEOUT_S)
    _check_http(uri, response)
    size = int(response.headers.get("Content-Length", 0))
    return _entry(path, uri, size, checksum="none")


def _s3_entries(uri: str, name: str | None, checksum: bool, limit: int) -> list[ManifestEntry]:
    from ..store.s3blobs import s3_call, s3_client

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
        facts = {"checksum": "etag", "etag": etag, "version_id": version} if checksum else {}
        out.append(_entry(path, target, head["ContentLength"], **{"checksum": "none", **facts}))
    return out


def remember_root(config: Config, uri: str) -> None:
    """Note a ``file://`` root this user referenced, so this user's reads may follow it."""
    root = os.path.realpath(unquote(urlparse(uri).path))
    path = config.state_dir / ROOTS_FILE
    roots = _remembered(path)
    if root in roots:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{ROOTS_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(sorted({*roots, root})))
    os.replace(tmp, path)


def _remembered(path: Path) -> set[str]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return {r for r in found if isinstance(r, str)} if isinstance(found, list) else set()


@dataclass(frozen=True)
class ReferenceReader:
    """Reads reference entries for one user: which ``file://`` roots it follows."""

    file_roots: tuple[str, ...] = ()

    @classmethod
    def for_config(cls, config: Config) -> ReferenceReader:
        roots = {*config.file_reference_roots, *_remembered(config.state_dir / ROOTS_FILE)}
        return cls(tuple(sorted(os.path.realpath(r) for r in roots)))

    def fetch(self, entry: ManifestEntry, out: IO[bytes]) -> None:
        """Write a reference entry's bytes to ``out``: exactly ``entry.size`` bytes that
        match what the entry was checked against, else ``ReferenceChanged``."""
        assert entry.ref is not None
        scheme = urlparse(entry.ref).scheme
        with contextlib.ExitStack() as stack:
            if scheme == "file":
                blocks: Iterable[bytes] = _read_file(self._local(entry))
            elif scheme in ("http", "https"):
                response = stack.enter_context(_get(entry.ref))
                _check_http(entry.ref, response)
                blocks = response.iter_content(BLOCK)
            else:
                blocks = _s3_blocks(entry)
            _copy_checked(entry, blocks, out)

    def _local(self, entry: ManifestEntry) -> Path:
        """The file a ``file://`` entry names, if this reader may read it."""
        assert entry.ref is not None
        local = os.path.realpath(unquote(urlparse(entry.ref).path))
        if entry.extra.get("checksum") != "content":
            raise PermissionDenied(
                f"{entry.path}: a file:// reference without a content checksum is never read"
            )
        if not any(local == r or local.startswith(r.rstrip("/") + "/") for r in self.file_roots):
            raise PermissionDenied(
                f"{entry.path}: {entry.ref} is outside the roots this client reads file:// "
                "references from (ARTFS_FILE_REFERENCE_ROOTS); not read"
            )
        if not os.path.isfile(local):
            raise ReferenceChanged(f"{entry.path}: referenced file {local} is missing")
        return Path(local)


def _copy_checked(entry: ManifestEntry, blocks: Iterable[bytes], out: IO[bytes]) -> None:
    changed = ReferenceChanged(f"{entry.path}: referenced {entry.ref} changed since it was logged")
    if entry.extra.get("checksum") == "content":
        try:
            size = verify_stream(entry.extra["content"], blocks, out.write, limit=entry.size)
        except (DigestMismatch, InvalidManifest):
            raise changed from None
    else:
        size = 0
        for block in blocks:
            size += len(block)
            if size > entry.size:
                raise changed
            out.write(block)
    if size != entry.size:
        raise changed


def is_checked(entry: ManifestEntry) -> bool:
    """Whether reading a reference entry verifies the bytes it gets."""
    return entry.ref is None or entry.extra.get("checksum") != "none"


def _s3_blocks(entry: ManifestEntry) -> Iterator[bytes]:
    from ..store.s3blobs import s3_call, s3_client

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


def _get(uri: str) -> requests.Response:
    """GET ``uri`` (streamed), following redirects one at a time, each target's host checked
    first (``_refuse_link_local``)."""
    import requests

    for _ in range(MAX_REDIRECTS + 1):
        _refuse_link_local(uri)
        response = requests.get(uri, stream=True, timeout=TIMEOUT_S, allow_redirects=False)
        if not response.is_redirect:
            return response
        response.close()
        uri = urljoin(uri, response.headers["Location"])
    raise ArtfsError(f"reference {uri}: more than {MAX_REDIRECTS} redirects")


def _refuse_link_local(uri: str) -> None:
    """Refuse a host with a link-local address: the cloud's instance metadata (credentials)
    lives there, and a version must not make its reader fetch them."""
    host = urlparse(uri).hostname or ""
    try:
        found = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return  # (the request itself then says what is wrong)
    for *_, address in found:
        if ipaddress.ip_address(str(address[0]).split("%")[0]).is_link_local:
            raise PermissionDenied(f"reference {uri}: a link-local address is never read")


def _check_http(uri: str, response: requests.Response) -> None:
    if response.status_code >= 400:
        raise ArtfsError(f"reference {uri}: HTTP {response.status_code}")
