"""``artfs cache``: inspect and bound the local chunk cache."""

from __future__ import annotations

import click

from ..core.config import load_config
from ..core.sizes import parse_size
from .output import size


@click.group("cache")
def cache_group() -> None:
    """The local chunk cache shared by get, the mount and the Python API."""


@cache_group.command("info")
def cache_info() -> None:
    """Where the cache is and what it holds."""
    from ..client.cache import ChunkCache

    info = ChunkCache(load_config().cache_dir).info()
    click.echo(f"path:   {info.path}")
    click.echo(f"chunks: {info.chunks}")
    click.echo(f"size:   {size(info.bytes)} ({info.bytes} bytes)")


@cache_group.command("cleanup")
@click.argument("target")
def cache_cleanup(target: str) -> None:
    """Evict least-recently-used chunks until the cache holds at most TARGET (e.g. 1GB, 0)."""
    from ..client.cache import ChunkCache

    removed, freed = ChunkCache(load_config().cache_dir).cleanup(parse_size(target))
    click.echo(f"removed {removed} chunks ({size(freed)})")
