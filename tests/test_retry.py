"""The one retry policy (artfs/client/retry.py), counted against fake peers: a server that
answers 503, one that drops every connection, and a bucket that answers 503 to presigned
PUTs. Each call is sent at most ``TRANSIENT.tries`` times, never once per nested layer."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from artfs.client.http import HttpBackend
from artfs.client.retry import TRANSIENT
from artfs.core.digest import digest_bytes
from artfs.core.errors import Unavailable

from .util import run_artfs, write_tree

Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def fake_http(answer: Handler) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server answering every request with ``answer``; (its URL, "METHOD path" of
    every request it got)."""
    seen: list[str] = []

    class Handle(BaseHTTPRequestHandler):
        def _any(self) -> None:
            seen.append(f"{self.command} {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            answer(self)

        do_GET = do_POST = do_PUT = _any

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def unavailable(handler: BaseHTTPRequestHandler) -> None:
    reply(handler, 503, {"error": {"code": "unavailable", "message": "busy"}})


@contextmanager
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """A server that reads each request and closes the connection without an answer;
    (its URL, a list with the number of requests it dropped)."""
    listener = socket.create_server(("127.0.0.1", 0))
    dropped = [0]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                dropped[0] += 1

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", dropped
    finally:
        listener.close()


def test_a_503_on_upload_is_sent_at_most_tries_times(tmp_path):
    """Through the CLI: a put against a server answering 503 asks TRANSIENT.tries times in
    all, then fails in one line."""
    src = write_tree(tmp_path / "src", {"a.bin": b"a" * 1000})
    with fake_http(unavailable) as (url, seen):
        env = {
            "ARTFS_URL": url,
            "ARTFS_API_KEY": "artfs_x_y",
            "ARTFS_HOME": str(tmp_path / "home"),
            "ARTFS_CACHE_DIR": str(tmp_path / "cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "PATH": "/usr/bin:/bin",
        }
        done = run_artfs("put", src, "-n", "e/p/a", env=env, check=False)
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert len(seen) == TRANSIENT.tries, seen


@pytest.mark.parametrize("transfer", ["auto", "stream"])
def test_chunk_uploads_are_retried_once_per_layer(transfer):
    """``put_chunks`` alone (the call the old code wrapped three times over): at most
    TRANSIENT.tries requests, whichever way the chunks would go."""
    with fake_http(unavailable) as (url, seen):
        backend = HttpBackend(url, "artfs_x_y", transfer)
        with pytest.raises(Unavailable):
            backend.put_chunks("e", "p", [(digest_bytes(b"x"), b"x")])
        backend.close()
    assert len(seen) == TRANSIENT.tries
    assert {s.split("?")[0] for s in seen} == {
        "POST /api/v1/projects/e/p/chunks" + ("/uploads" if transfer == "auto" else "")
    }


def test_dropped_connections_are_retried_tries_times():
    with dropping_server() as (url, dropped):
        backend = HttpBackend(url, "artfs_x_y")
        with pytest.raises(Unavailable, match="cannot reach"):
            backend.missing_chunks([digest_bytes(b"x")])
        backend.close()
    assert dropped[0] == TRANSIENT.tries


def test_presigned_puts_follow_the_same_policy():
    """A fake server hands out an upload URL of a fake bucket that answers 503: the PUT is
    sent TRANSIENT.tries times, and ``complete`` is never called."""
    digest = digest_bytes(b"payload")

    def serve(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.endswith("/uploads"):
            base = f"http://{handler.headers['Host']}"
            upload = {
                "digest": digest,
                "upload": "0" * 32,
                "url": f"{base}/bucket/k",
                "headers": {},
            }
            reply(handler, 200, {"direct": True, "expires_in": 900, "uploads": [upload]})
        else:
            handler.send_response(503)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

    with fake_http(serve) as (url, seen):
        backend = HttpBackend(url, "artfs_x_y")
        with pytest.raises(Unavailable, match="the bucket answered 503"):
            backend.put_chunks("e", "p", [(digest, b"payload")])
        backend.close()
    assert seen.count("PUT /bucket/k") == TRANSIENT.tries
    assert seen.count("POST /api/v1/projects/e/p/chunks/uploads") == 1
    assert not [s for s in seen if s.endswith("/complete")]
