"""The pure rules every layer shares: paths, names, digests, chunking, manifests, sizes."""

from __future__ import annotations

import json
import os

import blake3
import pytest

from artfs.core.chunking import ChunkRef, hash_path
from artfs.core.digest import EMPTY_DIGEST, digest_bytes
from artfs.core.errors import InvalidManifest, InvalidName, InvalidPath
from artfs.core.manifest import Manifest, ManifestEntry, version_digest
from artfs.core.names import check_alias, check_settable_alias, parse_artifact_path
from artfs.core.paths import check_path, local_target
from artfs.core.sizes import parse_size


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../../b",
        "a//b",
        "a/",
        "./a",
        "a/./b",
        "a\x00b",
        "a\nb",
        "a\x7fb",
        "x" * 256,
        5,
        None,
    ],
)
def test_bad_paths_are_rejected(bad):
    with pytest.raises(InvalidPath):
        check_path(bad)


@pytest.mark.parametrize("good", ["a", "a/b/c.png", "spaces ok.txt", "ünï/cödé", "..a", "a..b"])
def test_good_paths_are_accepted(good, tmp_path):
    assert check_path(good) == good
    assert local_target(tmp_path, good).is_relative_to(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proj/art", ("me", "proj", "art", "latest")),
        ("proj/art:v3", ("me", "proj", "art", "v3")),
        ("team/proj/art:best", ("team", "proj", "art", "best")),
        ("art:prod", ("me", "dp", "art", "prod")),
    ],
)
def test_artifact_names_parse(text, expected):
    path = parse_artifact_path(text, "me", "dp")
    assert (path.entity, path.project, path.artifact, path.alias) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a/b/c/d",
        "proj/art:",
        "proj/bad name",
        "proj/art:a@b",
        "p/../x",
        "-p/art",
        "proj/art:with/slash",
    ],
)
def test_malformed_names_are_rejected(bad):
    with pytest.raises(InvalidName):
        parse_artifact_path(bad, "me", None)


def test_alias_rules():
    with pytest.raises(InvalidName, match="reserved"):
        check_alias("v12")
    with pytest.raises(InvalidName, match="managed"):
        check_settable_alias("latest")
    with pytest.raises(InvalidName):
        check_alias("@staging")
    assert check_alias("best") == "best"


def test_digest_format_and_chunking(tmp_path):
    assert "blake3:" + blake3.blake3(b"").hexdigest() == EMPTY_DIGEST
    data = os.urandom(300_000)
    small = tmp_path / "small"
    small.write_bytes(data)
    content = hash_path(small, chunk_size=1 << 20)
    assert content.digest == digest_bytes(data)
    assert content.chunks == (ChunkRef(content.digest, len(data)),)

    content = hash_path(small, chunk_size=128 << 10)
    assert content.digest == digest_bytes(data)
    assert [c.size for c in content.chunks] == [131072, 131072, 300_000 - 262144]
    assert content.chunks[1].digest == digest_bytes(data[131072:262144])

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_path(empty).chunks == ()
    assert hash_path(empty).digest == EMPTY_DIGEST


def _entry(path: str, data: bytes) -> ManifestEntry:
    digest = digest_bytes(data)
    return ManifestEntry(path, len(data), digest, (ChunkRef(digest, len(data)),) if data else ())


def test_version_digest_ignores_order():
    a, b = _entry("a", b"1"), _entry("d/b", b"2")
    assert Manifest([a, b]).digest == Manifest([b, a]).digest == version_digest([b, a])
    lines = sorted([f"a:{a.digest}\n", f"d/b:{b.digest}\n"])
    assert Manifest([a, b]).digest == digest_bytes("".join(lines).encode())
    assert Manifest([a]).digest != Manifest([a, b]).digest


def test_manifest_json_round_trip():
    big = ManifestEntry(
        "big.bin",
        10,
        digest_bytes(b"0123456789"),
        (ChunkRef(digest_bytes(b"01234"), 5), ChunkRef(digest_bytes(b"56789"), 5)),
    )
    manifest = Manifest([_entry("x/y.txt", b"hello"), _entry("empty", b""), big])
    text = manifest.dumps()
    again = Manifest.loads(text)
    assert again.to_json() == manifest.to_json()
    assert again.digest == manifest.digest
    assert json.loads(text)["entries"]["big.bin"]["chunks"][1][1] == 5


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ({"../etc/passwd": {"size": 1, "digest": digest_bytes(b"x")}}, InvalidPath),
        ({"/abs": {"size": 1, "digest": digest_bytes(b"x")}}, InvalidPath),
        ({"a": {"size": 1, "digest": "md5:abc"}}, InvalidManifest),
        ({"a": {"size": -1, "digest": digest_bytes(b"x")}}, InvalidManifest),
        (
            {"a": {"size": 2, "digest": digest_bytes(b"x"), "chunks": [[digest_bytes(b"x"), 1]]}},
            InvalidManifest,
        ),
        (
            {
                "a": {"size": 1, "digest": digest_bytes(b"x")},
                "a/b": {"size": 1, "digest": digest_bytes(b"x")},
            },
            InvalidManifest,
        ),
        ({"a": "not an object"}, InvalidManifest),
    ],
)
def test_bad_manifests_are_rejected(entries, error):
    with pytest.raises(error):
        Manifest.from_json({"format": "artfs.manifest", "version": 1, "entries": entries})


def test_manifest_version_must_be_known():
    with pytest.raises(InvalidManifest, match="version"):
        Manifest.from_json({"format": "artfs.manifest", "version": 99, "entries": {}})


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("1GB", 10**9), ("500MiB", 500 * 2**20), ("1.5 KiB", 1536), ("10", 10)],
)
def test_sizes(text, value):
    assert parse_size(text) == value
