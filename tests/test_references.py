"""Reference entries: bytes that stay in a file, on a web server or in S3 (moto)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import artfs
from artfs.core.errors import ArtfsError

from .mountutil import mounted, sh
from .serverutil import free_port
from .util import start_service, write_tree


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    port = free_port()
    proc = start_service(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            str(port),
            "--directory",
            str(root),
        ],
        f"http://127.0.0.1:{port}/",
    )
    yield root, f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


def test_file_reference_detects_an_edited_target(api_env, tmp_path):
    data = write_tree(tmp_path / "outside", {"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n"})
    art = artfs.Artifact("refs", type="dataset")
    art.add_reference(data.as_uri(), name="tables")
    art.save(project="proj")
    logged = artfs.Api().artifact("proj/refs")
    assert sorted(e.path for e in logged.files()) == ["tables/a.csv", "tables/sub/b.csv"]
    assert all(e.ref and e.ref.startswith("file://") for e in logged.files())
    assert not list((api_env.store_dir / "chunks").rglob("*/*"))  # no bytes stored
    logged.download(tmp_path / "ok")
    assert (tmp_path / "ok" / "tables/sub/b.csv").read_bytes() == b"3,4\n"

    (data / "sub" / "b.csv").write_bytes(b"3,5\n")
    with pytest.raises(ArtfsError, match=r"tables/sub/b\.csv.*changed"):
        logged.download(tmp_path / "bad")
    proc = api_env.cli("get", "proj/refs", "--root", tmp_path / "cli", check=False)
    assert proc.returncode == 1 and "b.csv" in proc.stderr and proc.stderr.count("\n") == 1


def test_http_reference_round_trips(api_env, tmp_path, web_root):
    root, url = web_root
    (root / "weights.bin").write_bytes(os.urandom(300_000))
    art = artfs.Artifact("web", type="model")
    art.add_reference(f"{url}/weights.bin")
    art.save(project="proj")
    logged = artfs.Api().artifact("proj/web")
    assert logged.get_entry("weights.bin").size == 300_000
    logged.download(tmp_path / "got")
    assert (tmp_path / "got/weights.bin").read_bytes() == (root / "weights.bin").read_bytes()
    (root / "weights.bin").write_bytes(os.urandom(300_000))
    with pytest.raises(ArtfsError, match=r"weights\.bin.*changed"):
        logged.download(tmp_path / "again")


def test_unchecked_reference_is_recorded_by_uri(api_env, tmp_path, web_root):
    root, url = web_root
    (root / "x.txt").write_bytes(b"hello")
    art = artfs.Artifact("loose", type="dataset")
    entry = art.add_reference(f"{url}/x.txt", checksum=False)[0]
    assert entry.size == 5 and entry.extra["checksum"] == "none"
    art.save(project="proj")
    (root / "x.txt").write_bytes(b"world")
    artfs.Api().artifact("proj/loose").download(tmp_path / "o")
    assert (tmp_path / "o/x.txt").read_bytes() == b"world"


def test_s3_reference_prefix_and_version(api_env, tmp_path, s3):
    s3.create_bucket(Bucket="data")
    s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket="data", Key=f"imgs/{i}.png", Body=f"image {i}".encode())
    art = artfs.Artifact("s3ds", type="dataset")
    entries = art.add_reference("s3://data/imgs", max_objects=2)
    assert [e.path for e in entries] == ["imgs/0.png", "imgs/1.png"]
    art.save(project="proj")
    s3.put_object(Bucket="data", Key="imgs/0.png", Body=b"overwritten")
    artfs.Api().artifact("proj/s3ds").download(tmp_path / "o")
    assert (tmp_path / "o/imgs/0.png").read_bytes() == b"image 0"  # the logged version


def test_mount_reads_references_and_refuses_changed_targets(api_env, tmp_path, web_root):
    root, url = web_root
    (root / "weights.bin").write_bytes(os.urandom(200_000))
    local = write_tree(tmp_path / "outside", {"labels.csv": b"a,1\nb,2\n"})
    art = artfs.Artifact("mixed", type="dataset")
    art.add_reference(f"{url}/weights.bin")
    art.add_reference((local / "labels.csv").as_uri())
    art.save(project="proj")
    (local / "labels.csv").write_bytes(b"a,9\nb,9\n")  # changed after logging
    with mounted(api_env) as m:
        version = m / "proj/mixed/v0"
        same = sh("cmp", version / "weights.bin", root / "weights.bin", check=False)
        assert same.returncode == 0, same.stdout + same.stderr
        assert sh("stat", "-c", "%s", version / "labels.csv").stdout.strip() == "8"
        refused = sh("cat", version / "labels.csv", check=False)
        assert refused.returncode != 0 and "Input/output error" in refused.stderr
        assert "labels.csv" in m.log and "changed since it was logged" in m.log


def test_a_reference_never_reads_instance_metadata(tmp_path):
    """A version must not make its reader fetch the cloud's instance metadata (credentials,
    at a link-local address): refused at once, and through a redirect too."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from artfs.client.references import ReferenceReader
    from artfs.core.errors import PermissionDenied
    from artfs.core.manifest import ManifestEntry

    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/role"

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", metadata)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        redirecting = f"http://127.0.0.1:{server.server_address[1]}/innocent.csv"
        for uri in (metadata, redirecting):
            entry = ManifestEntry.reference("creds.json", uri, 100, {"checksum": "none"})
            with open(tmp_path / "out", "wb") as out, pytest.raises(PermissionDenied):
                ReferenceReader().fetch(entry, out)
            assert (tmp_path / "out").read_bytes() == b""
    finally:
        server.shutdown()
        server.server_close()
