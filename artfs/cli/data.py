"""Commands over versions: put, get, ls, show, alias, rm, gc."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import click

from ..core.errors import ArtfsError, ArtfsWarning, InvalidName
from ..core.names import LATEST, check_settable_alias, parse_project_path
from ..core.records import VersionInfo, to_dict
from .context import command_client
from .output import parse_duration, size, table, when

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _echo_json(**fields: object) -> None:
    click.echo(json.dumps(fields, indent=2, sort_keys=True))


def _metadata(pairs: tuple[str, ...], blob: str | None) -> dict[str, object]:
    meta: dict[str, object] = {}
    if blob:
        try:
            loaded = json.loads(blob)
        except ValueError as exc:
            raise ArtfsError(f"--metadata is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ArtfsError("--metadata must be a JSON object")
        meta.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ArtfsError(f"-m {pair!r}: expected KEY=VALUE")
        meta[key] = value
    return meta


@click.command()
@click.argument("local", type=click.Path(exists=True, path_type=Path))
@click.option("-n", "--name", help="[entity/]project/artifact (default: PROJECT/<basename>)")
@click.option("-t", "--type", "type_", default="dataset", show_default=True)
@click.option("-d", "--description")
@click.option("-a", "--alias", "aliases", multiple=True, help="Alias to point at the version.")
@click.option("--tag", "tags", multiple=True)
@click.option("-m", "--meta", "meta_pairs", multiple=True, help="Metadata KEY=VALUE.")
@click.option("--metadata", "meta_json", help="Metadata as a JSON object.")
@click.option("--run", help="Run (entity/project/id) that logs the version.")
@JSON_OPTION
@click.pass_context
def put(
    ctx: click.Context,
    local: Path,
    name: str | None,
    type_: str,
    description: str | None,
    aliases: tuple[str, ...],
    tags: tuple[str, ...],
    meta_pairs: tuple[str, ...],
    meta_json: str | None,
    run: str | None,
    as_json: bool,
) -> None:
    """Log a file or directory as the next version of an artifact."""
    from ..client.artifact import Artifact

    client = command_client(ctx)
    path = client.path(name or local.resolve().name)
    art = Artifact(path.artifact, type_, description, _metadata(meta_pairs, meta_json))
    with warnings.catch_warnings(record=True) as told:
        warnings.simplefilter("always", ArtfsWarning)
        if local.is_dir():
            art.add_dir(local)
        else:
            art.add_file(local)
    for warning in told:
        if issubclass(warning.category, ArtfsWarning):
            click.echo(f"artfs: warning: {warning.message}", err=True)
    result, stats = client.put(
        path,
        art.type,
        art._sources,
        art._entries.values(),
        progress=None,
        description=description,
        metadata=art.metadata,
        aliases=list(aliases),
        tags=list(tags),
        run=run,
    )
    if as_json:
        _echo_json(version=to_dict(result.version), created=result.created, stats=asdict(stats))
        return
    verb = "created" if result.created else "unchanged, same content as"
    click.echo(
        f"{verb} {result.version.path} ({stats.files} files, {size(stats.bytes)}; "
        f"hashed {stats.hashed_files} files, sent {stats.chunks_sent} chunks, "
        f"{size(stats.bytes_sent)})"
    )


@click.command()
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path), help="Target directory.")
@click.option("--prefix", "path_prefix", help="Only files under this path.")
@click.option(
    "--link",
    type=click.Choice(["copy", "reflink", "hardlink"]),
    default="copy",
    show_default=True,
    help="Copy the bytes, share their blocks (reflink, where the filesystem can), or "
    "hard-link files of one chunk to the stored copy (made read-only: never edit them).",
)
@JSON_OPTION
@click.pass_context
def get(
    ctx: click.Context,
    name: str,
    root: Path | None,
    path_prefix: str | None,
    link: str,
    as_json: bool,
) -> None:
    """Materialize a version's files under --root (default ./artifacts/NAME:vN)."""
    from ..client.artifact import Artifact

    client = command_client(ctx)
    info, manifest = client.backend.manifest(client.path(name))
    art = Artifact._logged(client, info, manifest)
    target = root or art.default_root()
    stats = client.download(info, manifest, target, path_prefix, progress=None, link=link)
    for note in stats.notes:
        click.echo(f"note: {note}", err=True)
    if stats.unchecked:
        shown = ", ".join(stats.unchecked[:3]) + (", ..." if len(stats.unchecked) > 3 else "")
        click.echo(
            f"warning: {len(stats.unchecked)} reference(s) logged without a checksum were "
            f"written unverified: {shown}",
            err=True,
        )
    if as_json:
        _echo_json(version=to_dict(info), root=str(target), stats=asdict(stats))
        return
    click.echo(
        f"{info.path} -> {target} ({stats.files} files, {size(stats.bytes)}; "
        f"fetched {stats.chunks_fetched} chunks, {size(stats.bytes_fetched)}; "
        f"wrote {stats.files_written} files, {stats.files_unchanged} already there)"
    )


@click.command("ls")
@click.argument("path", required=False)
@click.option("--entity", help="Entity to list (default: yours).")
@click.option("--deleted", is_flag=True, help="Include deleted versions.")
@click.pass_context
def ls(ctx: click.Context, path: str | None, entity: str | None, deleted: bool) -> None:
    """List projects, a project's artifacts, or an artifact's versions."""
    client = command_client(ctx)
    parts = path.split("/") if path else []
    if not parts:
        projects = client.backend.list_projects(entity)
        table(
            [(f"{p.entity}/{p.name}", p.visibility, when(p.created_at)) for p in projects],
            ("PROJECT", "VISIBILITY", "CREATED"),
        )
    elif len(parts) == 1:
        ent, proj = parse_project_path(parts[0], entity or client.entity)
        rows = client.backend.list_collections(ent, proj)
        table(
            [
                (
                    c.name,
                    c.type,
                    c.version_count,
                    "-" if c.latest is None else f"v{c.latest}",
                    when(c.created_at),
                )
                for c in rows
            ],
            ("ARTIFACT", "TYPE", "VERSIONS", "LATEST", "CREATED"),
        )
    elif len(parts) in (2, 3):
        assert path is not None
        if ":" in path:
            raise InvalidName("ls takes an artifact without ':alias'; use 'artfs show'")
        full = path if len(parts) == 3 or entity is None else f"{entity}/{path}"
        versions = client.backend.list_versions(client.path(full), include_deleted=deleted)
        table(
            [
                (
                    v.label,
                    ",".join(v.aliases),
                    v.state,
                    v.file_count,
                    size(v.size),
                    when(v.created_at),
                    v.description or "",
                )
                for v in versions
            ],
            ("VERSION", "ALIASES", "STATE", "FILES", "SIZE", "CREATED", "DESCRIPTION"),
        )
    else:
        raise InvalidName(f"invalid path {path!r}: expected [project[/artifact]]")


def _describe(info: VersionInfo) -> list[tuple[str, object]]:
    return [
        ("name", info.path),
        ("type", info.type),
        ("state", info.state),
        ("aliases", ", ".join(info.aliases) or "-"),
        ("tags", ", ".join(info.tags) or "-"),
        ("digest", info.digest),
        ("files", info.file_count),
        ("size", f"{size(info.size)} ({info.size} bytes)"),
        ("created", when(info.created_at)),
        ("logged by", info.run or "-"),
        ("expires", when(info.expires_at)),
        ("description", info.description or "-"),
        ("metadata", json.dumps(info.metadata, sort_keys=True)),
    ]


@click.command()
@click.argument("name")
@click.option("--files", is_flag=True, help="Also list the files.")
@JSON_OPTION
@click.pass_context
def show(ctx: click.Context, name: str, files: bool, as_json: bool) -> None:
    """Describe one version."""
    client = command_client(ctx)
    path = client.path(name)
    if files:
        info, manifest = client.backend.manifest(path)
    else:
        info, manifest = client.backend.resolve(path), None
    if as_json:
        extra = {"manifest": manifest.to_json()} if manifest is not None else {}
        _echo_json(**to_dict(info), **extra)
        return
    for key, value in _describe(info):
        click.echo(f"{key + ':':<13}{value}")
    if manifest is not None:
        click.echo("")
        what = {e.path: e.digest or (f"-> {e.link}" if e.link else "(directory)") for e in manifest}
        table([(e.path, e.size, what[e.path]) for e in manifest], ("PATH", "SIZE", "DIGEST"))


@click.group()
def alias() -> None:
    """Move or remove aliases (latest is managed: it always names the newest version)."""


@alias.command("set")
@click.argument("name")
@click.argument("aliases", nargs=-1, required=True)
@click.pass_context
def alias_set(ctx: click.Context, name: str, aliases: tuple[str, ...]) -> None:
    """Point ALIASES at version NAME:vN (moving them from other versions)."""
    client = command_client(ctx)
    for label in aliases:
        check_settable_alias(label)
    info = client.backend.resolve(client.path(name))
    info = client.backend.update_version(info.path, {"aliases": [*info.aliases, *aliases]})
    click.echo(f"{info.path}: {', '.join(info.aliases)}")


@alias.command("rm")
@click.argument("name")
@click.argument("aliases", nargs=-1, required=True)
@click.pass_context
def alias_rm(ctx: click.Context, name: str, aliases: tuple[str, ...]) -> None:
    """Remove ALIASES from artifact NAME."""
    client = command_client(ctx)
    base = client.path(name.partition(":")[0])
    for label in aliases:
        if label == LATEST:
            raise InvalidName("alias 'latest' is managed and cannot be removed")
        info = client.backend.resolve(base.with_alias(label))
        remaining = [a for a in info.aliases if a != label]
        info = client.backend.update_version(info.path, {"aliases": remaining})
        click.echo(f"{info.path}: {', '.join(info.aliases) or '-'}")


@click.command()
@click.argument("name")
@click.option("--delete-aliases", is_flag=True, help="Also drop the version's aliases.")
@click.option("--unaliased", is_flag=True, help="Delete every version of NAME without aliases.")
@click.pass_context
def rm(ctx: click.Context, name: str, delete_aliases: bool, unaliased: bool) -> None:
    """Delete a version (NAME:vN), or with --unaliased all unaliased versions of NAME."""
    client = command_client(ctx)
    path = client.path(name)
    if unaliased:
        if ":" in name:
            raise InvalidName("--unaliased takes an artifact name without ':alias'")
        doomed = [v for v in client.backend.list_versions(path) if not v.aliases]
        for version in doomed:
            client.backend.delete_version(version.path)
            click.echo(f"deleted {version.path}")
        click.echo(f"{len(doomed)} version(s) deleted; run 'artfs gc' to free their chunks")
        return
    if ":" not in name:
        raise InvalidName("rm takes NAME:vN or NAME:alias (use --unaliased for a sweep)")
    info = client.backend.delete_version(path, delete_aliases)
    click.echo(f"deleted {info.path}; run 'artfs gc' to free chunks no other version uses")


@click.command()
@click.argument("name")
@click.option("--depth", default=3, show_default=True, help="Hops to follow from NAME.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "dot"]),
    default="text",
    show_default=True,
    help="dot renders with graphviz: artfs lineage NAME --format dot | dot -Tpng -o g.png",
)
@click.pass_context
def lineage(ctx: click.Context, name: str, depth: int, fmt: str) -> None:
    """Draw the runs and versions around NAME: who logged it, who used it, and onwards."""
    from ..client.lineage import lineage as lineage_graph

    client = command_client(ctx)
    graph = lineage_graph(client.backend, client.path(name), depth)
    click.echo(graph.to_dot() if fmt == "dot" else graph.to_text() or f"{name}: no runs recorded")


@click.command()
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    help="Keep unused chunks touched more recently than this (uploads in flight).",
)
@click.pass_context
def gc(ctx: click.Context, grace: str) -> None:
    """Delete expired versions and chunks no version uses."""
    report = command_client(ctx).backend.gc(parse_duration(grace))
    for line in report.details:
        click.echo(line)
    click.echo(
        f"removed {report.chunks_deleted} chunks ({size(report.bytes_freed)}); "
        f"expired {report.versions_expired} versions"
    )
    if report.chunks_verified or report.chunks_lost or report.unverified_left:
        click.echo(
            f"verified {report.chunks_verified} chunks uploaded straight to the bucket; "
            f"{report.chunks_lost} failed and were deleted; {report.unverified_left} left to check"
        )
