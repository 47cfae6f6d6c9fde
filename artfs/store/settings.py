"""How a store's parts are opened: what to do with an older schema, how chunks are
protected at rest (a key file for local chunk files, server-side encryption for S3), and how
presigned URLs for chunks in a bucket are made."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ArtfsError
from .blobs import BlobStore, LocalBlobStore
from .db import Database
from .encryption import EncryptedBlobStore, Keyring, check_mark
from .presign import DEFAULT_TTL_S, Presigner
from .s3blobs import S3BlobStore, ServerSideEncryption
from .upgrades import prepare

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreSettings:
    upgrade: bool = False  # upgrade an older schema when opening (else: SchemaOutdated)
    encryption_key_file: Path | None = None  # seal local chunk files with these keys
    s3_sse: ServerSideEncryption | None = None  # ask S3 to encrypt every object written
    presign_ttl: int = DEFAULT_TTL_S  # lifetime of presigned URLs, in seconds
    s3_public_endpoint: str | None = None  # the bucket's address as clients reach it

    def prepare(self, db: Database) -> None:
        upgraded = prepare(db, upgrade=self.upgrade)
        if upgraded is not None:
            log.log(logging.WARNING if upgraded.changed else logging.INFO, upgraded.describe())

    def blob_store(self, home: Path, blobs_url: str | None, db: Database) -> BlobStore:
        if blobs_url:
            if self.encryption_key_file:
                raise ArtfsError(
                    "an encryption key file seals local chunk files; chunks in S3 are "
                    "encrypted by the bucket (--s3-sse)"
                )
            return S3BlobStore(blobs_url, home / "tmp", sse=self.s3_sse)
        if self.s3_sse:
            raise ArtfsError("S3 server-side encryption needs chunks in S3 (--blobs s3://...)")
        keyring = Keyring.load(self.encryption_key_file) if self.encryption_key_file else None
        check_mark(db, keyring)
        return LocalBlobStore(home) if keyring is None else EncryptedBlobStore(home, keyring)

    def presigner(self, blobs: BlobStore) -> Presigner | None:
        """Presigned URLs for chunks in a bucket; none for local chunk files (the server
        streams those)."""
        if not isinstance(blobs, S3BlobStore):
            return None
        return Presigner(blobs, self.presign_ttl, self.s3_public_endpoint)


DEFAULT_SETTINGS = StoreSettings()
