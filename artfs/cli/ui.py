"""``artfs ui``: the web pages of ``artfs server`` on the embedded store, for this machine only."""

from __future__ import annotations

import socket

import click

from ..core.config import load_config


@click.command("ui")
@click.option(
    "--port",
    default=8090,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 (0: any free port).",
)
def ui(port: int) -> None:
    """Browse the embedded store in a web browser until interrupted.

    Listens on 127.0.0.1 only, without login: the pages act as the local user, as the CLI
    does. A server's pages are served by 'artfs server' at its URL under /ui/.
    """
    config = load_config()
    if config.url:
        raise click.ClickException(
            f"ARTFS_URL points at a server: its pages are at {config.url.rstrip('/')}/ui/"
        )
    try:
        import uvicorn
        from fastapi import FastAPI

        from ..server.ui import create_ui, mount_ui
    except ImportError as exc:
        raise click.ClickException(
            f"artfs ui needs the 'server' extra (pip install 'artfs[server]'): {exc}"
        ) from None
    from ..client.local import LocalBackend

    backend = LocalBackend.from_config(config)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    mount_ui(app, create_ui(backend.store, backend.caller))
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/ui/"
    click.echo(f"serving {config.home} at {url} (Ctrl-C stops)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[listener])
    finally:
        backend.close()
