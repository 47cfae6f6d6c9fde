"""Encryption at rest of local chunk files: AES-256-GCM per chunk, keys in a file the
operator owns (docs/FORMAT.md, "Encrypted chunk files"; docs/OPERATIONS.md, "Encryption").

A sealed chunk file is ``MAGIC, key id (4 bytes, big-endian), nonce (12 random bytes)``,
then the ciphertext and GCM's 16-byte tag. The additional authenticated data is the header
and the chunk's digest, so a file renamed to another digest, or a header edited, fails to
open. File names stay content addresses (the digest of the plaintext).

The key file holds one key per line, ``<id> <64 hex digits>`` (``#`` starts a comment); the
key with the highest id seals new chunks and every key opens the chunks it sealed, so a key
is rotated by adding one (``artfs admin encryption-key FILE``) and, optionally, rewriting old
chunks (``artfs admin reencrypt``). A store that was once opened with a key is marked in its
``meta`` table and refuses to open without one, so a forgotten setting never mixes
plaintext chunks in silently.
"""

from __future__ import annotations

import os
import re
import secrets
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..core.digest import Block, digest_bytes, verify_stream
from ..core.errors import ArtfsError, NotFound, Unavailable
from .blobs import READ_BLOCK, Data, LocalBlobStore, unique_name, write_atomically
from .db import Database
from .lookup import insert_missing
from .schema import meta

MAGIC = b"AFC1"
HEADER = struct.Struct(">4sI12s")  # magic, key id, nonce
TAG_BYTES = 16
KEY_BYTES = 32
MAX_KEY_ID = 2**32 - 1
MARK = "blob_encryption"  # the meta row of a store whose chunk files are sealed
SCHEME = "aes-256-gcm"
KEY_FILE_HEADER = "# artfs encryption keys, '<id> <key>' per line: the highest id encrypts\n"
_KEY_LINE = re.compile(r"(\d{1,10})\s+([0-9a-fA-F]{64})")


class Keyring:
    """The keys of a key file; the highest id seals."""

    def __init__(self, keys: dict[int, bytes]):
        if not keys:
            raise ArtfsError("the encryption key file holds no key")
        self.keys = keys
        self.current = max(keys)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        return cls(read_key_file(path))

    def seal(self, digest: str, data: Data, write: Callable[[Block], object]) -> int:
        """Write ``data`` sealed with the current key, verifying it is ``digest`` on the way
        (the caller keeps what was written only if this returns); returns the plain size."""
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        header = HEADER.pack(MAGIC, self.current, os.urandom(12))
        encryptor = Cipher(
            algorithms.AES(self.keys[self.current]), modes.GCM(header[8:])
        ).encryptor()
        encryptor.authenticate_additional_data(header + digest.encode())
        write(header)
        size = verify_stream(digest, data, lambda block: write(encryptor.update(block)))
        write(encryptor.finalize() + encryptor.tag)
        return size

    def open(self, digest: str, blob: bytes) -> bytes:
        """The plaintext of a sealed chunk file, authenticated; else one-line ``Unavailable``."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(blob) < HEADER.size + TAG_BYTES:
            raise Unavailable(f"chunk {digest}: the encrypted file is truncated")
        _, key_id, nonce = HEADER.unpack_from(blob)
        key = self.keys.get(key_id)
        if key is None:
            raise Unavailable(
                f"chunk {digest} is encrypted with key {key_id}, which the key file lacks"
            )
        header = blob[: HEADER.size]
        try:
            return AESGCM(key).decrypt(nonce, blob[HEADER.size :], header + digest.encode())
        except InvalidTag:
            raise Unavailable(
                f"chunk {digest} fails decryption with key {key_id}: "
                "the file was damaged, replaced or moved"
            ) from None


def read_key_file(path: Path) -> dict[int, bytes]:
    """The keys of a key file, which only its owner may read."""
    try:
        st = path.stat()
        text = path.read_text()
    except OSError as exc:
        raise ArtfsError(f"cannot read the encryption key file {path}: {exc.strerror}") from None
    if st.st_mode & 0o077:
        raise ArtfsError(
            f"the encryption key file {path} is open to other users "
            f"(mode {st.st_mode & 0o777:o}): chmod 600 {path}"
        )
    keys: dict[int, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _KEY_LINE.fullmatch(line)
        key_id = int(match.group(1)) if match else 0
        if not match or not 0 < key_id <= MAX_KEY_ID or key_id in keys:
            raise ArtfsError(
                f"{path}, line {number}: expected '<id> <64 hex digits>' with a new id "
                f"from 1 to {MAX_KEY_ID}"
            )
        keys[key_id] = bytes.fromhex(match.group(2))
    return keys


def add_key(path: Path) -> int:
    """Add a new random key to a key file (created, mode 0600, if missing); returns its id.
    The file is replaced atomically, so a crash never leaves it without its old keys."""
    keys = read_key_file(path) if path.exists() else {}
    key_id = max(keys, default=0) + 1
    if key_id > MAX_KEY_ID:
        raise ArtfsError(f"{path} has used every key id")
    old = path.read_text() if keys else KEY_FILE_HEADER
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(old + ("" if old.endswith("\n") else "\n"))
        f.write(f"{key_id} {secrets.token_hex(KEY_BYTES)}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key_id


def check_mark(db: Database, keyring: Keyring | None) -> None:
    """Mark the store as encrypted the first time it is opened with a key; refuse to open a
    marked store without one (new chunks would be written in the clear)."""
    with db.read() as conn:
        marked = conn.execute(sa.select(meta.c.value).where(meta.c.key == MARK)).scalar()
    if marked is not None and keyring is None:
        raise ArtfsError(
            "the store's chunk files are encrypted: give its key file "
            "(artfs server --encryption-key FILE, or ARTFS_ENCRYPTION_KEY_FILE)"
        )
    if marked is None and keyring is not None:
        with db.write() as conn:
            insert_missing(conn, meta, [{"key": MARK, "value": SCHEME}])


@dataclass
class Reencrypted:
    rewritten: int = 0
    current: int = 0  # already sealed with the current key
    failed: int = 0


class EncryptedBlobStore(LocalBlobStore):
    """Local chunk files sealed with a ``Keyring``. Files written before encryption was
    turned on stay readable (their bytes are checked against their digest first)."""

    def __init__(self, root: Path, keyring: Keyring):
        super().__init__(root)
        self.keyring = keyring

    def put(self, digest: str, data: Data) -> int:
        tmp = self.tmp_dir / unique_name(digest)
        return write_atomically(
            tmp, self.path(digest), lambda f: self.keyring.seal(digest, data, f.write)
        )

    def iter_read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The whole file is authenticated before any byte is handed out (GCM's tag is at
        its end), so a range costs the chunk's decryption."""
        plain = self._plaintext(digest)
        end = len(plain) if length is None else min(len(plain), offset + length)
        return (plain[i : min(i + READ_BLOCK, end)] for i in range(offset, end, READ_BLOCK))

    def local_path(self, digest: str) -> Path | None:
        """None: the files hold ciphertext, so readers must go through ``iter_read``."""
        return None

    def key_id(self, digest: str) -> int | None:
        """The id of the key that sealed a chunk file (None: a plaintext file)."""
        with open(self.path(digest), "rb") as f:
            head = f.read(8)
        return struct.unpack(">I", head[4:])[0] if head[:4] == MAGIC and len(head) == 8 else None

    def reencrypt(self, report: Callable[[str, Exception], None]) -> Reencrypted:
        """Seal every chunk file with the current key (plaintext files and those of older
        keys); failures are reported and skipped. Each file is replaced atomically."""
        done = Reencrypted()
        for digest, _, _ in self.list():
            try:
                if self.key_id(digest) == self.keyring.current:
                    done.current += 1
                    continue
                self.put(digest, self._plaintext(digest))
                done.rewritten += 1
            except (NotFound, FileNotFoundError):
                continue  # collected meanwhile
            except (ArtfsError, OSError) as exc:
                done.failed += 1
                report(digest, exc)
        return done

    def _plaintext(self, digest: str) -> bytes:
        try:
            blob = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"chunk {digest} is missing from the blob store") from None
        failure: ArtfsError | None = None
        if blob[:4] == MAGIC:
            try:
                return self.keyring.open(digest, blob)
            except ArtfsError as exc:
                failure = exc
        if digest_bytes(blob) == digest:  # written in the clear, before encryption was on
            return blob
        raise failure or Unavailable(f"chunk {digest} is damaged: its bytes fail verification")
