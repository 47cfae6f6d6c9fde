"""Chunks in an S3-compatible bucket (AWS, MinIO, Ceph, moto): ``s3://bucket/prefix``.

Keys follow the local layout, ``<prefix>chunks/<hex[:2]>/<hex[2:]>``. An upload through the
server is spooled to a local temporary file while it is hashed and only sent to the bucket
once its digest matches (S3 PUTs are atomic: readers see the whole object or none). Uploads
that clients send straight to the bucket land under ``<prefix>staging/<owner>/<hex>/<token>``
and are copied into place inside the bucket (``adopt``); chunks in place whose bytes the
server has not read yet are "unverified" (docs/FORMAT.md, "Chunk states").
``AWS_ENDPOINT_URL`` points boto3 at a non-AWS store. With ``ServerSideEncryption`` set, every
object written asks the bucket to encrypt it (SSE-S3 or SSE-KMS): ``write_args`` are those
request parameters and ``headers`` the same as request headers, for every writer of objects.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..core.digest import PREFIX, hex_of, verify_stream
from ..core.errors import InvalidArgument, NotFound, Unavailable
from .blobs import READ_BLOCK, Data

CONNECTIONS = 64  # a server's request threads (40 by default) each read or write at once


def s3_client(endpoint: str | None = None, **options: Any) -> Any:
    """A boto3 client for ``endpoint`` (default: ``AWS_ENDPOINT_URL``, else AWS), with
    ``options`` for its ``Config``."""
    import boto3
    from botocore.config import Config

    endpoint = (
        endpoint or os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_S3_ENDPOINT_URL")
    )
    config = Config(max_pool_connections=CONNECTIONS, **options)
    return boto3.client("s3", endpoint_url=endpoint, config=config)


SSE_ALGORITHMS = ("AES256", "aws:kms")


@dataclass(frozen=True)
class ServerSideEncryption:
    """S3 server-side encryption requested on every object written."""

    algorithm: str  # "AES256" (SSE-S3) or "aws:kms" (SSE-KMS)
    kms_key_id: str | None = None  # SSE-KMS: the key (default: the account's aws/s3 key)

    def __post_init__(self) -> None:
        if self.algorithm not in SSE_ALGORITHMS:
            raise InvalidArgument(f"unknown S3 encryption {self.algorithm!r}: AES256 or aws:kms")
        if self.kms_key_id and self.algorithm != "aws:kms":
            raise InvalidArgument("a KMS key id goes with S3 encryption aws:kms")

    def write_args(self) -> dict[str, str]:
        args = {"ServerSideEncryption": self.algorithm}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def headers(self) -> dict[str, str]:
        """The request headers of ``write_args``: a presigned PUT signs them, so its sender
        must send exactly these."""
        headers = {"x-amz-server-side-encryption": self.algorithm}
        if self.kms_key_id:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = self.kms_key_id
        return headers


class S3BlobStore:
    def __init__(
        self,
        url: str,
        spool_dir: Path,
        client: Any = None,
        sse: ServerSideEncryption | None = None,
    ):
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise InvalidArgument(f"invalid blob store {url!r}: expected s3://bucket[/prefix]")
        self.bucket = parsed.netloc
        root = parsed.path.strip("/")
        root = f"{root}/" if root else ""
        self.prefix = f"{root}chunks/"
        self.staging_prefix = f"{root}staging/"
        self.spool_dir = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.s3 = client or s3_client()
        self.write_args = sse.write_args() if sse else {}
        self.write_headers = sse.headers() if sse else {}

    def key(self, digest: str) -> str:
        hex_ = hex_of(digest)
        return f"{self.prefix}{hex_[:2]}/{hex_[2:]}"

    def staging_key(self, owner: int, digest: str, token: str) -> str:
        """Where a client's direct upload of ``digest`` lands: one key per upload, under its
        owner's id, so an upload can only be completed by whoever it was issued to."""
        return f"{self.staging_prefix}{owner}/{hex_of(digest)}/{token}"

    def put(self, digest: str, data: Data) -> int:
        with tempfile.TemporaryFile(dir=self.spool_dir) as spool:
            size = verify_stream(digest, data, spool.write)
            spool.seek(0)
            self._call(
                self.s3.upload_fileobj,
                spool,
                self.bucket,
                self.key(digest),
                ExtraArgs=self.write_args or None,
            )
        return size

    def sync(self) -> None:
        """An object is durable once its PUT returns."""

    def iter_read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        if length == 0:
            return iter(())
        try:
            return self.read_object(self.key(digest), offset, length)[1]
        except NotFound:
            raise NotFound(f"chunk {digest} is missing from the blob store") from None

    def read_object(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> tuple[str, Iterator[bytes]]:
        """(ETag, blocks) of (a range of) any object of the store; ``NotFound`` at once."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            args["Range"] = f"bytes={offset}-{end}"
        answer = self._call(self.s3.get_object, **args)
        return answer["ETag"], _closing_chunks(answer["Body"])

    def head(self, key: str) -> tuple[int, str] | None:
        """(size, ETag) of an object, or None if there is none."""
        try:
            answer = self._call(self.s3.head_object, Bucket=self.bucket, Key=key)
        except NotFound:
            return None
        return answer["ContentLength"], answer["ETag"]

    def exists(self, digest: str) -> bool:
        return self.head(self.key(digest)) is not None

    def adopt(self, key: str, digest: str) -> None:
        """Copy an uploaded object to the chunk's key inside the bucket (no bytes through
        this process), encrypted as every object written."""
        source = {"Bucket": self.bucket, "Key": key}
        self._call(
            self.s3.copy_object,
            Bucket=self.bucket,
            Key=self.key(digest),
            CopySource=source,
            **self.write_args,
        )

    def delete_object(self, key: str) -> None:
        self._call(self.s3.delete_object, Bucket=self.bucket, Key=key)

    def local_path(self, digest: str) -> Path | None:
        return None

    def delete(self, digest: str) -> None:
        self.delete_object(self.key(digest))

    def list(self) -> Iterator[tuple[str, float, int]]:
        for key, mtime, size in self._objects(self.prefix):
            yield PREFIX + key[len(self.prefix) :].replace("/", ""), mtime, size

    def _objects(self, prefix: str) -> Iterator[tuple[str, float, int]]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["LastModified"].timestamp(), obj["Size"]

    def clean_tmp(self, older_than: float) -> int:
        """Remove direct uploads never completed (nothing partial is ever visible in the
        bucket, and spool files vanish on close)."""
        stale = [key for key, mtime, _ in self._objects(self.staging_prefix) if mtime < older_than]
        for key in stale:
            self.delete_object(key)
        return len(stale)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return s3_call(f"blob store s3://{self.bucket}", fn, *args, **kwargs)


def _closing_chunks(body: Any) -> Iterator[bytes]:
    with contextlib.closing(body):
        yield from body.iter_chunks(READ_BLOCK)


def s3_call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call boto3, turning its errors into one-line ``NotFound`` or ``Unavailable``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(*args, **kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
            raise NotFound(f"{what}: no such object") from None
        raise Unavailable(f"{what}: {code or exc}") from None
    except BotoCoreError as exc:
        raise Unavailable(f"{what}: {exc}") from None
