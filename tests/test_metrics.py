"""Metrics and logs: the server's /metrics and the mount daemon's --metrics-port move with real
traffic; several server processes sharing PROMETHEUS_MULTIPROC_DIR report their sum; every
request gets a request id, returned in X-Request-Id and on its one-line log entry."""

from __future__ import annotations

import os
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from .conftest import StoreEnv, _base_env
from .mountutil import mounted, wait_until
from .serverutil import ServerProcess, free_port, start_server
from .util import run_artfs, write_tree

CHUNK = 64 << 10


class Scrape:
    """One scrape of a /metrics endpoint: ``scrape("name", label=value)`` sums the samples."""

    def __init__(self, url: str):
        answer = requests.get(url, timeout=10)
        answer.raise_for_status()
        self.samples = [
            s for family in text_string_to_metric_families(answer.text) for s in family.samples
        ]

    def __call__(self, name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


def _env(tmp: Path, server: ServerProcess) -> dict[str, str]:
    return {**_base_env(tmp), **server.client_env(), "ARTFS_CHUNK_SIZE": "64KiB"}


def test_server_metrics_move_with_traffic(tmp_path):
    server = start_server(tmp_path / "server", "--log-level", "info")
    try:
        env = _env(tmp_path, server)
        before = Scrape(server.url + "/metrics")
        data = write_tree(tmp_path / "d", {"a": os.urandom(5 * CHUNK), "b": b"small"})
        run_artfs("put", data, "-n", "proj/m", "-t", "dataset", env=env)
        run_artfs("get", "proj/m", "--root", tmp_path / "out", env=env)
        run_artfs("gc", "--grace", "0", env=env)
        missing = run_artfs("show", "proj/m:v9", env=env, check=False)
        assert missing.returncode != 0
        after = Scrape(server.url + "/metrics")

        def moved(name: str, **labels: str) -> float:
            return after(name, **labels) - before(name, **labels)

        assert moved("artfs_chunks_uploaded_total") == 6
        assert moved("artfs_chunk_uploaded_bytes_total") == 5 * CHUNK + 5
        assert moved("artfs_chunks_downloaded_total") == 6
        chunk_route = "/api/v1/chunks/{digest}"
        assert moved("artfs_http_requests_total", route=chunk_route, status="200") == 6
        assert moved("artfs_http_sent_bytes_total", route=chunk_route) == 5 * CHUNK + 5
        assert moved("artfs_http_received_bytes_total") >= 5 * CHUNK + 5
        assert moved("artfs_commit_duration_seconds_count") == 1
        assert moved("artfs_gc_duration_seconds_count") == 1
        assert moved("artfs_errors_total", code="not_found") >= 1
        assert moved("artfs_http_requests_total", status="404") >= 1

        answer = requests.get(server.url + "/healthz", headers={"X-Request-Id": "trace-42"})
        assert answer.headers["X-Request-Id"] == "trace-42"
        made = requests.get(server.url + "/healthz", headers={"X-Request-Id": "a b"})
        assert len(made.headers["X-Request-Id"]) == 32  # not an id to trust: a new one
    finally:
        server.stop()
    lines = [line for line in server.log.read_text().splitlines() if "request_id=trace-42" in line]
    assert len(lines) == 1 and "route=/healthz" in lines[0] and "status=200" in lines[0]
    assert all(line.startswith("ts=") for line in server.log.read_text().splitlines())


def test_server_processes_share_metrics(tmp_path, monkeypatch):
    """Two processes on one store and one PROMETHEUS_MULTIPROC_DIR: either one's /metrics
    counts the requests both answered (how several workers are scraped)."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    first = start_server(tmp_path / "server")
    second = ServerProcess(first.data).start()
    try:
        for server, count in ((first, 3), (second, 4)):
            for _ in range(count):
                requests.get(server.url + "/healthz", timeout=10).raise_for_status()
        for server in (first, second):
            seen = Scrape(server.url + "/metrics")
            assert seen("artfs_http_requests_total", route="/healthz") >= 7 + 2  # + start-up
    finally:
        first.stop()
        second.stop()


def test_mount_metrics_move_with_traffic(tmp_path, artfs_server):
    env = StoreEnv("server", tmp_path, _env(tmp_path, artfs_server), artfs_server.data)
    data = write_tree(
        tmp_path / "d", {"warm": os.urandom(4 * CHUNK), "cold": os.urandom(8 * CHUNK)}
    )
    env.cli("put", data, "-n", "proj/mm", "-t", "dataset")
    env.cli("warm", "proj/mm:latest", "--prefix", "warm")
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with mounted(env, "--metrics-port", port) as m:
        before = Scrape(url)
        assert (m / "proj/mm/latest/warm").read_bytes() == (data / "warm").read_bytes()
        hits = Scrape(url)
        assert hits("artfs_mount_cache_hits_total") - before("artfs_mount_cache_hits_total") == 4
        assert hits("artfs_mount_chunk_fetches_total") == before("artfs_mount_chunk_fetches_total")
        assert (m / "proj/mm/latest/cold").read_bytes() == (data / "cold").read_bytes()
        (m / "proj/mm/@staging/new.txt").write_text("new")
        env.cli("commit", m / "proj/mm/@staging")
        after = Scrape(url)
        assert (
            after("artfs_mount_chunk_fetches_total") - hits("artfs_mount_chunk_fetches_total") == 8
        )
        assert after("artfs_mount_read_bytes_total") >= 12 * CHUNK
        assert after("artfs_mount_commit_duration_seconds_count") == 1
        assert after("artfs_mount_commit_failures_total") == 0
        assert after("artfs_mount_resident_bytes") > 0
    with mounted(env, "--metrics-port", port, "--cache-size", f"{4 * CHUNK}", name="m2") as m:
        (m / "proj/mm/latest/cold").read_bytes()
        assert wait_until(lambda: Scrape(url)("artfs_mount_cache_evictions_total") > 0, 15)
