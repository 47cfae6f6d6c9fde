"""The server's Prometheus metrics, served at ``GET /metrics`` (docs/OPERATIONS.md, "Metrics").

Only counters and histograms, so that several server processes on one machine can share
them: when ``PROMETHEUS_MULTIPROC_DIR`` names an empty directory before the processes start,
prometheus_client keeps each process's values in files there (it reads the variable when it
is first imported) and ``/metrics`` of any process adds them all up.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("artfs_http_requests", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "artfs_http_request_duration_seconds", "Time to answer a request, body included", ["route"]
)
RECEIVED_BYTES = Counter("artfs_http_received_bytes", "Request body bytes received", ["route"])
SENT_BYTES = Counter("artfs_http_sent_bytes", "Response body bytes sent", ["route"])
CHUNKS_UPLOADED = Counter("artfs_chunks_uploaded", "Chunks uploaded and verified")
CHUNK_BYTES_UPLOADED = Counter("artfs_chunk_uploaded_bytes", "Bytes of chunks uploaded")
CHUNKS_DOWNLOADED = Counter("artfs_chunks_downloaded", "Chunk reads served (whole or a range)")
PRESIGNED_URLS = Counter(
    "artfs_presigned_urls", "Presigned URLs issued (GET: reads, PUT: uploads)", ["method"]
)
DIRECT_UPLOADS = Counter("artfs_direct_uploads", "Chunks uploaded straight to the bucket")
DIRECT_UPLOAD_BYTES = Counter(
    "artfs_direct_upload_bytes", "Bytes of chunks uploaded straight to the bucket"
)
COMMIT_SECONDS = Histogram(
    "artfs_commit_duration_seconds",
    "Time to commit a version (or add to a pending one)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
GC_SECONDS = Histogram(
    "artfs_gc_duration_seconds",
    "Time of a garbage collection",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
ERRORS = Counter(
    "artfs_errors", "Errors answered, by code ('internal': a bug, see the log)", ["code"]
)


def count_endpoint(endpoint: str, status: int, seconds: float, received: int, batch: str) -> None:
    """The metrics of what an API endpoint did, known from its name (the function's, stable
    when paths change), its status, its time and its body (``batch``: the ``Artfs-Chunks``
    header of a batch upload). Uploads are all-or-nothing: a 200 stored every chunk sent."""
    if endpoint in ("commit", "upsert_version"):
        COMMIT_SECONDS.observe(seconds)
    elif endpoint == "gc":
        GC_SECONDS.observe(seconds)
    elif endpoint == "get_chunk" and status in (200, 206):
        CHUNKS_DOWNLOADED.inc()
    elif endpoint in ("put_chunk", "put_chunks") and status == 200:
        CHUNKS_UPLOADED.inc(batch.count(",") + 1 if endpoint == "put_chunks" else 1)
        CHUNK_BYTES_UPLOADED.inc(received)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()  # this process's own values come from the files too
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
