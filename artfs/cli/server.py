"""``artfs server``: serve one store to a team over HTTP (uvicorn, in the foreground), in one
process or several (``--workers``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click

from ..store.presign import DEFAULT_TTL_S, MAX_TTL_S
from ..store.s3blobs import SSE_ALGORITHMS
from .storeadmin import KEY_FILE_OPTION

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@click.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory: artfs.db, chunks/ and, on first start, admin.key.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option(
    "--db",
    "db_url",
    envvar="ARTFS_SERVER_DB",
    help="Metadata database URL, e.g. postgresql+psycopg://user@host/artfs "
    "(default: SQLite DATA/artfs.db).",
)
@click.option(
    "--blobs",
    "blobs_url",
    envvar="ARTFS_SERVER_BLOBS",
    help="Chunk store, e.g. s3://bucket/prefix (default: DATA/chunks; AWS_ENDPOINT_URL for "
    "S3-compatible stores).",
)
@click.option(
    "--migrate",
    is_flag=True,
    help="Upgrade an older store schema before serving (else the server refuses to start; "
    "see 'artfs admin migrate').",
)
@KEY_FILE_OPTION
@click.option(
    "--s3-sse",
    type=click.Choice(SSE_ALGORITHMS),
    help="S3 server-side encryption requested on every object written.",
)
@click.option("--s3-kms-key-id", help="The KMS key of --s3-sse aws:kms (default: aws/s3).")
@click.option(
    "--presign-ttl",
    default=DEFAULT_TTL_S,
    show_default=True,
    type=click.IntRange(1, MAX_TTL_S),
    help="Lifetime in seconds of the presigned URLs clients get for chunks in S3.",
)
@click.option(
    "--s3-public-endpoint",
    help="The bucket's URL as clients reach it, when it differs from AWS_ENDPOINT_URL "
    "(presigned URLs are signed for it).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Server processes sharing the port (metrics summed through PROMETHEUS_MULTIPROC_DIR, "
    "a fresh directory unless set).",
)
@click.option(
    "--allow-anonymous-read",
    is_flag=True,
    help="Let clients without an API key read public projects.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def server(
    data: Path,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    db_url: str | None,
    blobs_url: str | None,
    migrate: bool,
    key_file: Path | None,
    s3_sse: str | None,
    s3_kms_key_id: str | None,
    presign_ttl: int,
    s3_public_endpoint: str | None,
    workers: int,
    allow_anonymous_read: bool,
    log_level: str,
) -> None:
    """Serve the store in DATA over HTTP(S) until interrupted; logs go to stderr."""
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if s3_kms_key_id and s3_sse != "aws:kms":
        raise click.UsageError("--s3-kms-key-id goes with --s3-sse aws:kms")
    if s3_public_endpoint and not blobs_url:
        raise click.UsageError("--s3-public-endpoint goes with --blobs s3://...")
    try:
        import uvicorn

        from ..server.bootstrap import open_data_dir
        from ..server.workers import ServerOptions, configure_logging
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs the 'server' extra (pip install 'artfs[server]'): {exc}"
        ) from None
    options = ServerOptions(
        data=str(data.resolve()),
        db_url=db_url,
        blobs_url=blobs_url,
        key_file=str(key_file) if key_file else None,
        s3_sse=s3_sse,
        s3_kms_key_id=s3_kms_key_id,
        presign_ttl=presign_ttl,
        s3_public_endpoint=s3_public_endpoint,
        anonymous_read=allow_anonymous_read,
        log_level=log_level,
    )
    configure_logging(log_level)
    # Once, before any worker starts: schema (upgraded if asked), first admin key.
    open_data_dir(
        data,
        db_url=db_url,
        blobs_url=blobs_url,
        settings=options.settings(migrate),
        anonymous_read=allow_anonymous_read,
    ).close()
    options.export()
    with contextlib.ExitStack() as stack:
        if workers > 1 and not os.environ.get(MULTIPROC_ENV):
            os.environ[MULTIPROC_ENV] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="artfs-metrics-")
            )
        uvicorn.run(
            "artfs.server.workers:app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            log_level=log_level,
            log_config=None,  # uvicorn's loggers go to the handler above
            access_log=False,  # the app logs each request, with its request id
        )
