"""Commands around the mount: mount, umount, warm; and the fstab form
``artfs SRC MOUNTPOINT -o opt,opt`` that ``mount.fuse3`` runs for a ``fuse.artfs`` line."""

from __future__ import annotations

import click

from ..core.sizes import parse_size
from .context import command_client
from .data import JSON_OPTION
from .output import parse_duration, size
from .staging import print_reports

# fstab option -> `artfs mount` flag
FSTAB_FLAGS = {
    "cache_size": "--cache-size",
    "open_chunks": "--open-chunks",
    "metadata_ttl": "--metadata-ttl",
    "entity": "--entity",
    "run": "--run",
    "log": "--log",
    "metrics_port": "--metrics-port",
    "metrics_host": "--metrics-host",
}
# options for mount(8), systemd or the fstab line itself, with no meaning to the daemon
FSTAB_IGNORED = {
    "defaults",
    "auto",
    "noauto",
    "user",
    "users",
    "nouser",
    "owner",
    "_netdev",
    "nofail",
    "rw",
}


def fstab_argv(argv: list[str], commands: set[str]) -> list[str] | None:
    """``SRC MOUNTPOINT [-o opts]`` as ``mount MOUNTPOINT --source SRC [flags] [-o fuse-opts]``;
    None when ``argv`` is an ordinary command line.

    SRC is ``artfs`` or ``artfs:ENTITY`` (mount.fuse3 turns ``artfs#SRC`` into the same, and
    leaves it out when called as ``mount.fuse3 artfs MOUNTPOINT``).
    """
    if len(argv) < 2 or argv[0] in commands or argv[0].startswith("-"):
        return None
    if argv[0].startswith("/") and argv[1].startswith("-o"):  # `mount.fuse3 artfs MNT -o ..`
        argv = ["artfs", *argv]
    source, mountpoint, rest = argv[0], argv[1], argv[2:]
    if not (source == "artfs" or source.startswith("artfs:") or "-o" in rest):
        return None
    out = ["mount", mountpoint, "--source", source]
    _, _, entity = source.partition(":")
    if entity:
        out += ["--entity", entity]
    fuse: list[str] = []
    while rest:
        arg = rest.pop(0)
        if arg == "-o" and rest:
            options = rest.pop(0).split(",")
        elif arg.startswith("-o") and len(arg) > 2:
            options = arg[2:].split(",")
        else:
            out.append(arg)
            continue
        for option in filter(None, options):
            key, sep, value = option.partition("=")
            if key in FSTAB_FLAGS and sep:
                out += [FSTAB_FLAGS[key], value]
            elif key in ("foreground", "debug") and not sep:
                out.append(f"--{key}")
            elif key in FSTAB_IGNORED or key.startswith(("x-", "comment=")):
                continue
            else:
                fuse.append(option)
    if fuse:
        out += ["-o", ",".join(fuse)]
    return out


@click.command("mount")
@click.argument("mountpoint", type=click.Path())
@click.option(
    "-f", "--foreground", is_flag=True, help="Serve in front (logs to stderr; systemd Type=notify)."
)
@click.option("--entity", help="Entity whose projects the mount shows (default: yours).")
@click.option(
    "--metadata-ttl",
    default="5s",
    show_default=True,
    help="How long listings and aliases are cached (0 = always ask).",
)
@click.option("--cache-size", help="Bound the chunk cache (e.g. 10GB); evicts LRU chunks.")
@click.option(
    "--open-chunks",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Verified chunk files the daemon keeps open for fast reads.",
)
@click.option(
    "--run", help="Record every version read as used by this run ([entity/][project/]run_id)."
)
@click.option(
    "-o",
    "options",
    multiple=True,
    help="FUSE mount options, comma-separated (allow_other, ro, ...).",
)
@click.option(
    "--log",
    "log_file",
    help="Log file (default: under $ARTFS_STATE_DIR/logs; stderr with --foreground).",
)
@click.option("--source", default=None, help="Name shown as the mount's source.")
@click.option("--debug", is_flag=True, help="Log every store call and chunk opened.")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics at http://HOST:PORT/metrics.",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Address of --metrics-port."
)
def mount(
    mountpoint: str,
    foreground: bool,
    entity: str | None,
    metadata_ttl: str,
    cache_size: str | None,
    open_chunks: int,
    run: str | None,
    options: tuple[str, ...],
    log_file: str | None,
    source: str | None,
    debug: bool,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Mount the store at MOUNTPOINT: projects, artifacts, versions as read-only files, and
    a writable @staging/ in each artifact that becomes its next version on unmount.

    Returns once the mount is live (the daemon keeps serving it), or with --foreground
    serves until unmounted (SIGTERM, 'artfs umount', 'fusermount3 -u').
    """
    from ..fuse.daemon import MountOptions
    from ..fuse.daemon import mount as do_mount

    fuse_options = [o for group in options for o in group.split(",") if o]
    do_mount(
        MountOptions(
            mountpoint=mountpoint,
            source=source or (f"artfs:{entity}" if entity else "artfs"),
            entity=entity,
            metadata_ttl=parse_duration(metadata_ttl),
            cache_size=parse_size(cache_size) if cache_size else None,
            open_chunks=open_chunks,
            run=_run_path(run, entity),
            foreground=foreground,
            fuse_options=fuse_options,
            log_file=log_file,
            debug=debug,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
        )
    )


def _run_path(run: str | None, entity: str | None) -> str | None:
    """``entity/project/id``, filling in the configured entity and project."""
    if run is None or run.count("/") == 2:
        return run
    from ..client.api import Api

    api = Api({"entity": entity} if entity else None)
    try:
        return api.run(run).path
    finally:
        api.client.close()


@click.command("umount")
@click.argument("mountpoint", type=click.Path())
@click.option("-z", "--lazy", is_flag=True, help="Detach now even if files are open.")
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    help="Seconds to wait for the daemon (besides its commits).",
)
@JSON_OPTION
def umount(mountpoint: str, lazy: bool, timeout: float, as_json: bool) -> None:
    """Unmount an artfs mount: its daemon commits every @staging area with changes and
    exits; wait for that and print each new version (or the error)."""
    from ..fuse.daemon import umount as do_umount

    print_reports(do_umount(mountpoint, lazy=lazy, timeout=timeout), as_json)


@click.command("warm")
@click.argument("name")
@click.option("--prefix", "path_prefix", help="Only files under this path.")
@click.pass_context
def warm(ctx: click.Context, name: str, path_prefix: str | None) -> None:
    """Fetch a version's chunks into the local cache, so reads through a mount are local."""
    client = command_client(ctx)
    info, manifest = client.backend.manifest(client.path(name))
    stats = client.prefetch(info, manifest, path_prefix, progress=None)
    click.echo(
        f"{info.path}: {stats.files} files, {size(stats.bytes)}; fetched "
        f"{stats.chunks_fetched} chunks ({size(stats.bytes_fetched)}), the rest already cached"
    )
