"""``artfs login``, ``artfs whoami`` and ``artfs admin ...`` (users, keys, teams, members,
projects), which talk to a server through the HTTP backend."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..core.config import config_file_path, load_config
from ..core.errors import ArtfsError
from ..core.names import parse_project_path
from ..core.records import KeyInfo
from .context import command_client
from .output import table, when
from .storeadmin import encryption_key, migrate, reencrypt

if TYPE_CHECKING:
    from ..client.http import HttpBackend

# Roles and visibilities are checked by the store; the CLI only passes them on.
ROLE_HELP = "admin or member"
VISIBILITY_HELP = "private, public or open"


def _key_lines(key: KeyInfo) -> None:
    """The secret alone on the last line, so scripts can take it with ``tail -n1``."""
    click.echo(f"API key {key.key_id} for {key.user} (shown only now):")
    click.echo(key.key)


@click.command()
@click.argument("url")
@click.option("--key", help="API key (default: $ARTFS_API_KEY, else asked for).")
def login(url: str, key: str | None) -> None:
    """Check an API key against the server at URL and save both in the config file."""
    from ..client.login import save_login

    key = key or os.environ.get("ARTFS_API_KEY") or click.prompt("API key", hide_input=True)
    user = save_login(url, key, verify=True)
    click.echo(f"logged in to {url.rstrip('/')} as {user} (saved in {config_file_path()})")


@click.command()
@click.pass_context
def whoami(ctx: click.Context) -> None:
    """Show who the configured store takes you for."""
    client = command_client(ctx)
    me = client.backend.whoami()
    where = me.get("url") or f"the embedded store in {client.config.home}"
    click.echo(f"{me['user']} at {where}" + (" (server admin)" if me.get("admin") else ""))
    for team in me.get("teams", []):
        click.echo(f"  team {team['name']} ({team['role']})")


@click.group()
def admin() -> None:
    """Manage users, keys, teams and projects of a server (needs ARTFS_URL or artfs login);
    upgrade and encrypt a store (migrate, encryption-key, reencrypt: on its files)."""


for _command in (migrate, encryption_key, reencrypt):
    admin.add_command(_command)


def pass_backend(command: Callable[..., None]) -> Callable[..., None]:
    """Call ``command`` with an HTTP backend for the configured server, closed afterwards."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from ..client.http import HttpBackend

        config = load_config()
        if not config.url:
            raise ArtfsError("admin commands talk to a server: set ARTFS_URL or 'artfs login URL'")
        backend = HttpBackend(config.url, config.api_key)
        try:
            command(backend, *args, **kwargs)
        finally:
            backend.close()

    return wrapper


@admin.group()
def user() -> None:
    """Users (server admins only)."""


@user.command("create")
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="Make the user a server admin.")
@pass_backend
def user_create(backend: HttpBackend, name: str, is_admin: bool) -> None:
    """Create a user; its first API key is printed alone on the last line."""
    created, key = backend.create_user(name, is_admin)
    click.echo(f"created user {created.name}" + (" (server admin)" if created.admin else ""))
    _key_lines(key)


@user.command("list")
@pass_backend
def user_list(backend: HttpBackend) -> None:
    users = backend.list_users()
    table(
        [(u.name, "yes" if u.admin else "", when(u.created_at)) for u in users],
        ("USER", "ADMIN", "CREATED"),
    )


@admin.group()
def key() -> None:
    """API keys: your own, or any user's for a server admin."""


@key.command("create")
@click.option("--user", help="Whose key (default: yours).")
@pass_backend
def key_create(backend: HttpBackend, user: str | None) -> None:
    """Create an API key; it is printed alone on the last line."""
    _key_lines(backend.create_key(user))


@key.command("list")
@click.option("--user", help="Whose keys (default: yours).")
@pass_backend
def key_list(backend: HttpBackend, user: str | None) -> None:
    keys = backend.list_keys(user)
    table(
        [(k.key_id, k.user, when(k.created_at), when(k.revoked_at)) for k in keys],
        ("KEY ID", "USER", "CREATED", "REVOKED"),
    )


@key.command("revoke")
@click.argument("key_id")
@pass_backend
def key_revoke(backend: HttpBackend, key_id: str) -> None:
    """Revoke a key, named by its id or given whole."""
    if key_id.startswith("artfs_"):
        key_id = key_id.split("_")[1]
    revoked = backend.revoke_key(key_id)
    click.echo(f"revoked API key {revoked.key_id} of {revoked.user}")


@admin.group()
def team() -> None:
    """Teams (created by server admins)."""


@team.command("create")
@click.argument("name")
@pass_backend
def team_create(backend: HttpBackend, name: str) -> None:
    click.echo(f"created team {backend.create_team(name).name}")


@admin.group()
def member() -> None:
    """Team members (server admins and the team's admins)."""


@member.command("add")
@click.argument("team")
@click.argument("user")
@click.option("--role", default="member", show_default=True, help=ROLE_HELP)
@pass_backend
def member_add(backend: HttpBackend, team: str, user: str, role: str) -> None:
    """Add USER to TEAM, or change its role."""
    added = backend.set_member(team, user, role)
    click.echo(f"{added.user} is {added.role} of {added.team}")


@member.command("rm")
@click.argument("team")
@click.argument("user")
@pass_backend
def member_rm(backend: HttpBackend, team: str, user: str) -> None:
    removed = backend.remove_member(team, user)
    click.echo(f"removed {removed.user} from {removed.team}")


@member.command("list")
@click.argument("team")
@pass_backend
def member_list(backend: HttpBackend, team: str) -> None:
    table([(m.user, m.role) for m in backend.list_members(team)], ("USER", "ROLE"))


@admin.group()
def project() -> None:
    """Projects and their visibility (the entity's admins)."""


@project.command("create")
@click.argument("name", metavar="ENTITY/PROJECT")
@click.option("--visibility", default="private", show_default=True, help=VISIBILITY_HELP)
@pass_backend
def project_create(backend: HttpBackend, name: str, visibility: str) -> None:
    entity, proj = parse_project_path(name, None)
    created = backend.create_project(entity, proj, visibility)
    click.echo(f"created project {created.entity}/{created.name} ({created.visibility})")


@project.command("set-visibility")
@click.argument("name", metavar="ENTITY/PROJECT")
@click.argument("visibility", metavar="VISIBILITY")
@pass_backend
def project_set_visibility(backend: HttpBackend, name: str, visibility: str) -> None:
    """Make ENTITY/PROJECT private, public or open."""
    entity, proj = parse_project_path(name, None)
    changed = backend.set_visibility(entity, proj, visibility)
    click.echo(f"project {changed.entity}/{changed.name} is now {changed.visibility}")
