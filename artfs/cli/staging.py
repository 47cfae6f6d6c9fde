"""Commands for the mount's ``@staging`` areas: commit one now, and show what each would
commit (``status``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..core.config import load_config
from ..core.errors import ArtfsError
from .data import JSON_OPTION


def print_reports(reports: list[dict[str, Any]], as_json: bool) -> None:
    """Commit reports, one line each (or JSON); a failed commit makes the command fail."""
    if as_json:
        click.echo(json.dumps(reports, indent=2, sort_keys=True))
    else:
        for report in reports:
            click.echo(report["text"], err=not report.get("ok"))
    failed = sum(1 for r in reports if not r.get("ok"))
    if failed:
        raise ArtfsError(f"{failed} commit(s) failed; the staged changes are kept")


@click.command("commit")
@click.argument("staging", type=click.Path())
@click.option("-m", "--message", "description", help="Description of the new version.")
@click.option("-a", "--alias", "aliases", multiple=True, help="Alias to point at it.")
@JSON_OPTION
def commit(staging: str, description: str | None, aliases: tuple[str, ...], as_json: bool) -> None:
    """Commit MOUNT/PROJECT/ARTIFACT/@staging as the artifact's next version, now.

    Waits for the commit; prints the new version (or that nothing changed). The mount keeps
    running, and the staging area starts again from the new version.
    """
    from ..fuse.control import request_commit

    print_reports([request_commit(staging, description, list(aliases))], as_json)


@click.command("status")
@click.argument("mountpoint", type=click.Path())
@JSON_OPTION
def status(mountpoint: str, as_json: bool) -> None:
    """Show each staging area's added, modified and deleted files (like `git status`).

    Works on a running mount, and on one that is not mounted (the staging areas are on disk).
    """
    from ..fuse.changes import Changes
    from ..fuse.control import STATE_XATTR, read_record, record_path, root_xattr, staging_status

    mnt = os.path.abspath(mountpoint)
    record = root_xattr(mnt, STATE_XATTR) if os.path.ismount(mnt) else None
    path = Path(record) if record else record_path(load_config(), mnt)
    found = read_record(path)
    if "staging" not in found:
        raise ArtfsError(f"{mnt} has never been mounted (no {path})")
    areas = staging_status(Path(found["staging"]))
    if as_json:
        click.echo(json.dumps(areas, indent=2, sort_keys=True))
        return
    if not areas:
        click.echo("no staged changes")
    for area in areas:
        if "error" in area:
            click.echo(f"{area['staging']}: cannot read: {area['error']}", err=True)
            continue
        changes = Changes(area["added"], area["modified"], area["deleted"])
        base = f"v{area['base']}" if area["base"] is not None else "a new artifact"
        pending = "; its commit is pending" if area["pending"] else ""
        click.echo(f"{area['staging']}: {changes.summary()} (based on {base}{pending})")
        for line in changes.lines():
            click.echo(line)
