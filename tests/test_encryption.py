"""Encryption at rest. Local chunk files sealed with a key file (AES-256-GCM per chunk): no
plaintext on disk, put/get/mount round-trip on the embedded store and a server, a file moved
to another chunk's name fails in one line, rotation by adding a key and reencrypting, a store
that was encrypted refuses to open without its key. S3: server-side encryption requested on
every object written, as moto's head_object reports."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from artfs.store.encryption import MAGIC

from .conftest import StoreEnv, _base_env
from .mountutil import mounted
from .serverutil import start_server
from .util import run_artfs, tree_digests, write_tree

MARKER = b"PLAINTEXT-MARKER-" * 64  # bytes no sealed file may contain


def _files(tmp: Path) -> Path:
    return write_tree(
        tmp / "src",
        {
            "notes.txt": MARKER,
            "big.bin": MARKER * 200 + os.urandom(300_000),  # several chunks of 64 KiB
            "sub/small.txt": b"small " + MARKER,
        },
    )


def _chunk_files(root: Path) -> list[Path]:
    return [p for p in (root / "chunks").glob("*/*") if p.is_file()]


@pytest.fixture(params=["embedded", "server"])
def sealed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreEnv]:
    """A store whose chunk files are sealed with the key file ``tmp/keys``."""
    keys = tmp_path / "keys"
    run_artfs("admin", "encryption-key", keys)
    env = {**_base_env(tmp_path), "ARTFS_CHUNK_SIZE": "64KiB"}
    if request.param == "embedded":
        env["ARTFS_ENCRYPTION_KEY_FILE"] = str(keys)
        yield StoreEnv("embedded", tmp_path, env, tmp_path / "home")
        return
    server = start_server(tmp_path / "server", "--encryption-key", str(keys))
    env.update(server.client_env())
    yield StoreEnv("server", tmp_path, env, server.data)
    server.stop()


def test_sealed_store_round_trips_and_holds_no_plaintext(sealed, tmp_path):
    src = _files(tmp_path)
    sealed.cli("put", src, "-n", "proj/secret", "-t", "dataset")
    sealed.cli("get", "proj/secret", "--root", tmp_path / "out")
    assert tree_digests(tmp_path / "out") == tree_digests(src)
    files = _chunk_files(sealed.store_dir)
    assert len(files) >= 6
    for path in files:
        raw = path.read_bytes()
        assert raw.startswith(MAGIC) and b"PLAINTEXT-MARKER" not in raw, path
    with mounted(sealed) as m:
        assert (m / "proj/secret/latest/big.bin").read_bytes() == (src / "big.bin").read_bytes()


def test_a_chunk_file_moved_to_another_name_fails_in_one_line(sealed, tmp_path):
    src = write_tree(tmp_path / "src", {"a": b"first " + MARKER, "b": b"second " + MARKER})
    sealed.cli("put", src, "-n", "proj/moved", "-t", "dataset")
    first, second = sorted(_chunk_files(sealed.store_dir), key=lambda p: p.stat().st_mtime_ns)
    shutil.copy(first, second)  # a valid sealed chunk, under the other chunk's name
    shutil.rmtree(sealed.cache, ignore_errors=True)
    proc = sealed.cli("get", "proj/moved", "--root", tmp_path / "out", check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "fails decryption" in proc.stderr
    out = tmp_path / "out"
    for path in out.rglob("*") if out.exists() else ():  # nothing unverified was written out
        assert path.is_dir() or path.read_bytes() in (b"first " + MARKER, b"second " + MARKER)


def test_rotation_and_reencrypt(embedded, tmp_path):
    keys = tmp_path / "keys"
    run_artfs("admin", "encryption-key", keys)
    env = {"ARTFS_ENCRYPTION_KEY_FILE": str(keys)}
    old = write_tree(tmp_path / "old", {"f": b"old " + MARKER})
    embedded.cli("put", old, "-n", "proj/rot", "-t", "dataset", extra_env=env)
    assert "added key 2" in run_artfs("admin", "encryption-key", keys).stdout
    new = write_tree(tmp_path / "new", {"g": b"new " + MARKER})
    embedded.cli("put", new, "-n", "proj/rot2", "-t", "dataset", extra_env=env)
    ids = sorted(p.read_bytes()[4:8] for p in _chunk_files(embedded.store_dir))
    assert ids == [(1).to_bytes(4, "big"), (2).to_bytes(4, "big")]  # the newest key seals

    without_1 = keys.read_text().splitlines()
    (tmp_path / "keys2").write_text("\n".join(x for x in without_1 if not x.startswith("1 ")))
    (tmp_path / "keys2").chmod(0o600)
    env2 = {"ARTFS_ENCRYPTION_KEY_FILE": str(tmp_path / "keys2")}
    proc = embedded.cli("get", "proj/rot", "--root", tmp_path / "o0", check=False, extra_env=env2)
    assert proc.returncode != 0 and "which the key file lacks" in proc.stderr

    done = embedded.cli("admin", "reencrypt", extra_env=env).stdout
    assert "sealed 1 chunk files with key 2; 1 already were" in done
    assert {p.read_bytes()[4:8] for p in _chunk_files(embedded.store_dir)} == {
        (2).to_bytes(4, "big")
    }
    shutil.rmtree(embedded.cache)
    embedded.cli("get", "proj/rot", "--root", tmp_path / "o1", extra_env=env2)  # key 1 gone
    assert (tmp_path / "o1" / "f").read_bytes() == b"old " + MARKER


def test_turning_encryption_on_keeps_old_chunks_and_then_requires_the_key(embedded, tmp_path):
    plain = write_tree(tmp_path / "p", {"f": b"before " + MARKER})
    embedded.cli("put", plain, "-n", "proj/on", "-t", "dataset")
    keys = tmp_path / "keys"
    run_artfs("admin", "encryption-key", keys)
    env = {"ARTFS_ENCRYPTION_KEY_FILE": str(keys)}
    later = write_tree(tmp_path / "l", {"g": b"after " + MARKER})
    embedded.cli("put", later, "-n", "proj/on2", "-t", "dataset", extra_env=env)
    shutil.rmtree(embedded.cache)
    embedded.cli("get", "proj/on", "--root", tmp_path / "o", extra_env=env)  # plaintext chunk
    assert (tmp_path / "o" / "f").read_bytes() == b"before " + MARKER
    proc = embedded.cli("ls", check=False)  # the store is marked: no silent plaintext writes
    assert proc.returncode == 1 and "encrypted" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "sealed 1 chunk files" in embedded.cli("admin", "reencrypt", extra_env=env).stdout
    assert all(b"MARKER" not in p.read_bytes() for p in _chunk_files(embedded.store_dir))


def test_key_file_open_to_others_is_refused(embedded, tmp_path):
    keys = tmp_path / "keys"
    run_artfs("admin", "encryption-key", keys)
    keys.chmod(0o644)
    proc = embedded.cli("ls", check=False, extra_env={"ARTFS_ENCRYPTION_KEY_FILE": str(keys)})
    assert proc.returncode == 1 and "chmod 600" in proc.stderr


@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
def test_s3_objects_are_written_with_server_side_encryption(sse, s3, tmp_path):
    s3.create_bucket(Bucket="sealed")
    args = ["--blobs", "s3://sealed/p", "--s3-sse", sse]
    key_id = None
    if sse == "aws:kms":
        kms = boto3.client("kms", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        args += ["--s3-kms-key-id", key_id]
    server = start_server(tmp_path / "server", *args)
    try:
        env = {**_base_env(tmp_path), **server.client_env(), "ARTFS_CHUNK_SIZE": "64KiB"}
        src = _files(tmp_path)
        run_artfs("put", src, "-n", "proj/s3", "-t", "dataset", env=env)
        run_artfs("get", "proj/s3", "--root", tmp_path / "out", env=env)
        assert tree_digests(tmp_path / "out") == tree_digests(src)
    finally:
        server.stop()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sealed")["Contents"]]
    assert len(keys) >= 6
    for key in keys:
        head = s3.head_object(Bucket="sealed", Key=key)
        assert head["ServerSideEncryption"] == sse
        if key_id:
            assert key_id in head["SSEKMSKeyId"]
