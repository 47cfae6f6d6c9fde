"""The pure rules every layer shares: paths, names, digests, chunking, manifests, sizes."""

from __future__ import annotations

import json
import os

import blake3
import pytest

from artfs.core.chunking import ChunkRef, FileContent, file_digest, hash_path
from artfs.core.digest import EMPTY_DIGEST, digest_bytes
from artfs.core.errors import InvalidManifest, InvalidName, InvalidPath
from artfs.core.manifest import Manifest, ManifestEntry, version_digest
from artfs.core.names import check_alias, check_settable_alias, parse_artifact_path
from artfs.core.paths import check_link, check_path, local_target
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
        "lone\ud800surrogate",  # no bytes on disk have this name
        "\udcc3\udcbf",  # escaped bytes that are UTF-8: the same name on disk as "ÿ"
        5,
        None,
    ],
)
def test_bad_paths_are_rejected(bad):
    with pytest.raises(InvalidPath):
        check_path(bad)


@pytest.mark.parametrize(
    "good", ["a", "a/b/c.png", "spaces ok.txt", "ünï/cödé", "..a", "a..b", "latin1-\udce9.txt"]
)
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
    assert content.digest == digest_bytes(data)  # one chunk: the file digest is its digest
    assert content.chunks == (ChunkRef(content.digest, len(data)),)

    content = hash_path(small, chunk_size=128 << 10)
    assert [c.size for c in content.chunks] == [131072, 131072, 300_000 - 262144]
    assert content.chunks[1].digest == digest_bytes(data[131072:262144])
    # several chunks: derived from the chunk list, in a namespace no plain digest shares
    lines = "".join(f"{c.digest} {c.size}\n" for c in content.chunks).encode()
    assert content.digest == file_digest(content.chunks) != digest_bytes(lines)
    assert content.digest != digest_bytes(data)

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_path(empty).chunks == ()
    assert hash_path(empty).digest == EMPTY_DIGEST


def _entry(path: str, data: bytes, mode: int = 0o644) -> ManifestEntry:
    chunks = (ChunkRef(digest_bytes(data), len(data)),) if data else ()
    return ManifestEntry.of_file(path, FileContent(len(data), chunks), mode, 1_700_000_000 << 30)


def test_version_digest_ignores_order_and_mtimes_not_modes():
    a, b = _entry("a", b"1"), _entry("d/b", b"2")
    assert Manifest([a, b]).digest == Manifest([b, a]).digest == version_digest([b, a])
    assert Manifest([a]).digest != Manifest([a, b]).digest
    touched = ManifestEntry.of_file("a", a.content, 0o644, 5)
    assert Manifest([touched, b]).digest == Manifest([a, b]).digest
    assert Manifest([_entry("a", b"1", 0o755), b]).digest != Manifest([a, b]).digest
    link, folder = ManifestEntry.symlink("l", "d/b"), ManifestEntry.directory("e")
    assert Manifest([a, b, link]).digest != Manifest([a, b]).digest
    assert Manifest([a, b, folder]).digest != Manifest([a, b]).digest


def test_a_reference_never_shares_a_digest_with_content():
    data = b"the victim's file"
    stored = _entry("data.csv", data)
    claimed = ManifestEntry.reference(
        "data.csv",
        "http://attacker/x",
        len(data),
        {"checksum": "content", "content": stored.digest},
    )
    assert claimed.digest != stored.digest
    assert Manifest([claimed]).digest != Manifest([stored]).digest
    unchecked = ManifestEntry.reference(
        "data.csv", "http://attacker/x", len(data), {"checksum": "none"}
    )
    assert unchecked.digest not in (stored.digest, claimed.digest)


def test_manifest_json_round_trip():
    chunks = (ChunkRef(digest_bytes(b"01234"), 5), ChunkRef(digest_bytes(b"56789"), 5))
    big = ManifestEntry.of_file("big.bin", FileContent(10, chunks), 0o755)
    manifest = Manifest(
        [
            _entry("x/y.txt", b"hello"),
            _entry("empty", b""),
            big,
            ManifestEntry.symlink("x/latest", "y.txt", 7),
            ManifestEntry.directory("refs/heads"),
        ]
    )
    text = manifest.dumps()
    again = Manifest.loads(text)
    assert again.to_json() == manifest.to_json()
    assert again.digest == manifest.digest
    obj = json.loads(text)
    assert obj["version"] == 2
    assert obj["entries"]["big.bin"]["chunks"][1][1] == 5
    assert obj["entries"]["big.bin"]["mode"] == 0o755
    assert obj["entries"]["x/latest"] == {"kind": "link", "link": "y.txt", "mtime": 7}
    assert again.file_count == 3


def test_format_1_manifests_are_read_as_format_2():
    data = os.urandom(10)
    chunks = [[digest_bytes(data[:5]), 5], [digest_bytes(data[5:]), 5]]
    old = {
        "format": "artfs.manifest",
        "version": 1,
        "entries": {
            "big": {"size": 10, "digest": digest_bytes(data), "chunks": chunks},
            "small": {"size": 1, "digest": digest_bytes(b"x")},
            "ref": {
                "size": 3,
                "digest": digest_bytes(b"abc"),
                "ref": "https://example.org/abc",
                "extra": {"checksum": "content"},
            },
        },
    }
    manifest = Manifest.from_json(old)
    big = manifest.entries["big"]
    assert big.digest == file_digest(big.chunks) != digest_bytes(data)
    assert manifest.entries["small"].digest == digest_bytes(b"x")
    ref = manifest.entries["ref"]
    assert ref.extra["content"] == digest_bytes(b"abc") != ref.digest
    assert Manifest.loads(manifest.dumps()).to_json() == manifest.to_json()


X = digest_bytes(b"x")


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ({"../etc/passwd": {"size": 1, "digest": X}}, InvalidPath),
        ({"/abs": {"size": 1, "digest": X}}, InvalidPath),
        ({"a": {"size": 1, "digest": "md5:abc"}}, InvalidManifest),
        ({"a": {"size": -1, "digest": X}}, InvalidManifest),
        ({"a": {"size": 2**70, "digest": X}}, InvalidManifest),
        ({"a": {"size": 2, "digest": X, "chunks": [[X, 1], [X, 2]]}}, InvalidManifest),
        ({"a": {"size": 1, "digest": X}, "a/b": {"size": 1, "digest": X}}, InvalidManifest),
        ({"a": {"kind": "link", "link": "b"}, "a/b": {"size": 1, "digest": X}}, InvalidManifest),
        ({"a": "not an object"}, InvalidManifest),
        ({"a": {"size": 1, "digest": X, "owner": "root"}}, InvalidManifest),
        ({"a": {"size": 1, "digest": X, "mode": 0o4755}}, InvalidManifest),
        ({"a": {"kind": "device"}}, InvalidManifest),
        ({"a/l": {"kind": "link", "link": "../../etc/passwd"}}, InvalidPath),
        ({"l": {"kind": "link", "link": "/etc/passwd"}}, InvalidPath),
        ({"l": {"kind": "link", "link": "a\nb"}}, InvalidPath),
        ({"d": {"kind": "dir", "size": 3}}, InvalidManifest),
        # a file digest that is not the one its chunks give (taken on a client's word)
        (
            {"a": {"size": 2, "digest": digest_bytes(b"victim"), "chunks": [[X, 1], [X, 1]]}},
            InvalidManifest,
        ),
        # a reference claiming content under the content's digest
        (
            {"r": {"size": 1, "digest": X, "ref": "http://e/x", "extra": {"checksum": "none"}}},
            InvalidManifest,
        ),
        ({"a": {"size": 1, "digest": X, "extra": {"k": "v" * 5000}}}, InvalidManifest),
    ],
)
def test_bad_manifests_are_rejected(entries, error):
    with pytest.raises(error):
        Manifest.from_json({"format": "artfs.manifest", "version": 2, "entries": entries})


def test_references_refuse_control_characters_and_versions_their_size():
    """A reference's texts join its identity's lines: a newline would let two references
    share one identity. A version's size must fit the database (references count)."""
    for ref, extra in (
        ("http://h/a\nb", {"checksum": "etag", "etag": "e"}),
        ("http://h/a", {"checksum": "etag", "etag": "e\nV"}),
    ):
        with pytest.raises(InvalidManifest, match="control characters"):
            ManifestEntry.reference("r", ref, 1, extra).check()
    huge = [
        ManifestEntry.reference(f"r{i}", f"http://h/{i}", (1 << 60) - 1, {"checksum": "none"})
        for i in range(8)
    ]
    with pytest.raises(InvalidManifest, match="at most"):
        Manifest(huge).check()


def test_a_chunk_listed_with_two_sizes_is_refused():
    y = digest_bytes(b"yy")
    one = ManifestEntry.of_file("a", FileContent(2, (ChunkRef(y, 2),)))
    two = ManifestEntry.of_file("b", FileContent(1001, (ChunkRef(y, 1000), ChunkRef(X, 1))))
    with pytest.raises(InvalidManifest, match="two sizes"):
        Manifest([one, two]).chunks()


def test_links_may_climb_but_not_leave():
    assert check_link("a/b/l", "../../c") == "../../c"
    assert check_link("a/b/l", "./../c/./d/") == "./../c/./d/"
    with pytest.raises(InvalidPath):
        check_link("a/l", "../../c")
    # ".." after a name is refused: that name may be a link (y -> ., x -> y/.. is the parent
    # of the root), so only climbing first, through the link's real parents, is safe
    with pytest.raises(InvalidPath, match="leaves the version"):
        check_link("x", "y/..")
    with pytest.raises(InvalidPath, match="leaves the version"):
        check_link("a/b/l", "c/../../d")


def test_manifest_version_must_be_known():
    with pytest.raises(InvalidManifest, match="version"):
        Manifest.from_json({"format": "artfs.manifest", "version": 99, "entries": {}})


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("1GB", 10**9), ("500MiB", 500 * 2**20), ("1.5 KiB", 1536), ("10", 10)],
)
def test_sizes(text, value):
    assert parse_size(text) == value
