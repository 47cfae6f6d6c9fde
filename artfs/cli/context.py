"""The one client a command works with: made on first use, so that ``--help`` and the
commands that need no store open none, and closed when the command ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..client.client import Client


def command_client(ctx: click.Context) -> Client:
    from ..client.client import Client

    found = ctx.find_object(Client)
    if found is None:
        root = ctx.find_root()
        found = root.obj = Client()
        root.call_on_close(found.close)
    return found
