"""Presigned URLs: short-lived permissions for one client to read one chunk from, or write one
upload into, the bucket, so chunk bytes travel between clients and the bucket directly.

Signing is offline (no request to the bucket) and always SigV4, which SSE-KMS requires and
which boto3 would not choose by itself in ``us-east-1``. URLs are made for the endpoint
clients reach: ``public_endpoint`` when the servers talk to the bucket by another address
(``AWS_ENDPOINT_URL``) than clients do; the host is part of the signature, so it cannot be
rewritten afterwards. A PUT signs its length and the bucket's encryption headers; the client
must send exactly the headers it is given.
"""

from __future__ import annotations

import functools
from typing import Any

from ..core.errors import InvalidArgument
from .s3blobs import S3BlobStore, s3_client

DEFAULT_TTL_S = 900
MAX_TTL_S = 7 * 24 * 3600  # SigV4's limit; temporary credentials end sooner (and their URLs)


def check_ttl(seconds: int) -> int:
    if not 0 < seconds <= MAX_TTL_S:
        raise InvalidArgument(f"presigned URL lifetime {seconds}s: 1 s to {MAX_TTL_S} s")
    return seconds


class Presigner:
    def __init__(
        self, blobs: S3BlobStore, ttl: int = DEFAULT_TTL_S, public_endpoint: str | None = None
    ):
        self.blobs = blobs
        self.ttl = check_ttl(ttl)
        self.public_endpoint = public_endpoint

    @functools.cached_property
    def _signer(self) -> Any:
        return s3_client(self.public_endpoint, signature_version="s3v4")

    def _sign(self, operation: str, method: str, **params: Any) -> str:
        url: str = self._signer.generate_presigned_url(
            operation,
            Params={"Bucket": self.blobs.bucket, **params},
            ExpiresIn=self.ttl,
            HttpMethod=method,
        )
        return url

    def get(self, digest: str) -> str:
        """A URL reading the chunk (``Range`` requests allowed)."""
        return self._sign("get_object", "GET", Key=self.blobs.key(digest))

    def put(self, key: str, size: int) -> tuple[str, dict[str, str]]:
        """A URL writing ``size`` bytes to ``key``, and the headers its request must carry."""
        url = self._sign("put_object", "PUT", Key=key, ContentLength=size, **self.blobs.write_args)
        return url, dict(self.blobs.write_headers)
