"""Logging in to a server: check the URL (and, when asked, the API key), then save both in
the config file, readable by its owner only. ``artfs login`` and ``artfs.login`` share it."""

from __future__ import annotations

import getpass
import os
import sys

from ..core.config import config_file_path, load_config, read_config_file, write_config_file
from ..core.errors import ArtfsError


def save_login(url: str, key: str, *, verify: bool) -> str | None:
    """Save ``url`` and ``key``; with ``verify`` the server must first say whose key it is.
    Returns that user (None unverified)."""
    if not url.startswith(("http://", "https://")):
        raise ArtfsError(f"invalid server URL {url!r}: expected http(s)://host[:port]")
    url, key = url.rstrip("/"), key.strip()
    user = None
    if verify:
        from .http import HttpBackend

        backend = HttpBackend(url, key)
        try:
            user = str(backend.whoami()["user"])
        finally:
            backend.close()
    path = config_file_path()
    values = read_config_file(path)
    values.update(url=url, api_key=key)
    write_config_file(path, values)
    return user


def login(key: str | None = None, host: str | None = None, *, verify: bool = False) -> bool:
    """Save a server and API key for later calls, as ``artfs login`` does (W&B's
    ``wandb.login``). ``host`` defaults to the configured server, ``key`` to
    ``$ARTFS_API_KEY``, else it is asked for on a terminal; ``verify=True`` has the server
    check the key first. Returns True."""
    url = host or load_config().url
    if not url:
        raise ArtfsError("artfs.login needs host= (a server URL): the embedded store needs none")
    key = key or os.environ.get("ARTFS_API_KEY") or _ask_key()
    save_login(url, key, verify=verify)
    return True


def _ask_key() -> str:
    if not sys.stdin.isatty():
        raise ArtfsError("artfs.login needs key= (or ARTFS_API_KEY)")
    return getpass.getpass("API key: ")
