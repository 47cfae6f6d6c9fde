"""``artfs server``: serve one store to a team over HTTP (uvicorn, in the foreground)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ..store.s3blobs import SSE_ALGORITHMS, ServerSideEncryption
from .storeadmin import KEY_FILE_OPTION


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
    allow_anonymous_read: bool,
    log_level: str,
) -> None:
    """Serve the store in DATA over HTTP(S) until interrupted; logs go to stderr."""
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if s3_kms_key_id and s3_sse != "aws:kms":
        raise click.UsageError("--s3-kms-key-id goes with --s3-sse aws:kms")
    sse = ServerSideEncryption(s3_sse, s3_kms_key_id) if s3_sse else None
    from ..store.settings import StoreSettings

    settings = StoreSettings(upgrade=migrate, encryption_key_file=key_file, s3_sse=sse)
    try:
        import uvicorn

        from ..server.app import create_app
        from ..server.bootstrap import open_data_dir
        from ..server.observe import LogfmtFormatter
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs the 'server' extra (pip install 'artfs[server]'): {exc}"
        ) from None
    handler = logging.StreamHandler()  # stderr, one line per event (uvicorn's included)
    handler.setFormatter(LogfmtFormatter())
    logging.basicConfig(level=log_level.upper(), handlers=[handler])
    store = open_data_dir(
        data,
        db_url=db_url,
        blobs_url=blobs_url,
        settings=settings,
        anonymous_read=allow_anonymous_read,
    )
    uvicorn.run(
        create_app(store),
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level=log_level,
        log_config=None,  # uvicorn's loggers go to the handler above
        access_log=False,  # the app logs each request, with its request id
    )
