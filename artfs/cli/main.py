"""The ``artfs`` entry point: the command group, and errors turned into one line."""

from __future__ import annotations

import errno
import sys

import click

from .. import __version__
from ..core.errors import ArtfsError
from . import admin, cache, data, mount, server, staging, ui
from .output import fail


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="artfs")
def cli() -> None:
    """artfs: versioned, deduplicated artifacts, also as files through a mount."""


for command in (data.put, data.get, data.ls, data.show, data.alias, data.rm, data.gc, data.lineage):
    cli.add_command(command)
cli.add_command(cache.cache_group)
for command in (server.server, ui.ui, admin.login, admin.whoami, admin.admin):
    cli.add_command(command)
for command in (mount.mount, mount.umount, mount.warm, staging.commit, staging.status):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    argv = mount.fstab_argv(argv, set(cli.commands)) or argv  # as run by mount.fuse3
    try:
        cli.main(args=argv, prog_name="artfs", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except ArtfsError as exc:
        fail(str(exc))
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            sys.exit(1)
        fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    except KeyboardInterrupt:
        fail("interrupted", 130)


if __name__ == "__main__":
    main()
