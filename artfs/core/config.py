"""Client configuration: flag, then environment, then the login file, then defaults
(README, "Configuration")."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .chunking import DEFAULT_CHUNK_SIZE
from .digest import MAX_CHUNK_BYTES
from .errors import ArtfsError
from .sizes import parse_size

UNCATEGORIZED = "uncategorized"


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def local_user() -> str:
    """The embedded store's default entity: the login name, made a valid identifier."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", getpass.getuser()).lstrip("._-")
    return name or "local"


@dataclass(frozen=True)
class Config:
    url: str | None
    api_key: str | None
    entity: str | None
    project: str | None
    home: Path
    cache_dir: Path
    state_dir: Path
    config_file: Path
    encryption_key_file: Path | None = None  # the embedded store seals its chunk files
    chunk_size: int = DEFAULT_CHUNK_SIZE
    file_reference_roots: tuple[str, ...] = ()  # where file:// references may be read
    transfer: str = "auto"  # chunk bytes via presigned URLs when offered, or "stream"

    def with_overrides(self, **values: Any) -> Config:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def default_project(config: Config) -> str:
    """The project runs and drafts go to when none is named: the configured one, else
    ``uncategorized``, as in W&B."""
    return config.project or UNCATEGORIZED


def config_file_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "artfs" / "config.json"


def read_config_file(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ArtfsError(f"cannot read config file {path}: {exc}") from None
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file only its owner can read (it holds a secret):
    written under a fresh name made 0600 at creation, whatever files exist beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_config_file(path: Path, values: dict[str, str]) -> None:
    """Write the login file readable by its owner only (it holds an API key)."""
    write_private_file(path, json.dumps(values, indent=2))


def _chunk_size(text: str | None) -> int:
    if not text:
        return DEFAULT_CHUNK_SIZE
    size = parse_size(text)
    if size < 64 << 10 or size % (64 << 10) or size > MAX_CHUNK_BYTES:
        most = MAX_CHUNK_BYTES >> 20
        raise ArtfsError(f"ARTFS_CHUNK_SIZE={text}: a multiple of 64 KiB, at most {most} MiB")
    return size


def _path(text: str | None) -> Path | None:
    return Path(text).expanduser() if text else None


def load_config(**overrides: object) -> Config:
    """Resolve the configuration; keyword arguments are command-line flags (None = unset)."""
    env = os.environ
    path = config_file_path()
    saved = read_config_file(path)
    config = Config(
        url=env.get("ARTFS_URL", saved.get("url")) or None,
        api_key=env.get("ARTFS_API_KEY") or saved.get("api_key"),
        entity=env.get("ARTFS_ENTITY") or saved.get("entity"),
        project=env.get("ARTFS_PROJECT") or saved.get("project"),
        home=Path(env.get("ARTFS_HOME") or _xdg("XDG_DATA_HOME", ".local/share") / "artfs"),
        cache_dir=Path(env.get("ARTFS_CACHE_DIR") or _xdg("XDG_CACHE_HOME", ".cache") / "artfs"),
        state_dir=Path(
            env.get("ARTFS_STATE_DIR") or _xdg("XDG_STATE_HOME", ".local/state") / "artfs"
        ),
        encryption_key_file=_path(
            env.get("ARTFS_ENCRYPTION_KEY_FILE") or saved.get("encryption_key_file")
        ),
        config_file=path,
        chunk_size=_chunk_size(env.get("ARTFS_CHUNK_SIZE")),
        transfer=env.get("ARTFS_TRANSFER") or "auto",
        file_reference_roots=tuple(
            r
            for r in (
                env.get("ARTFS_FILE_REFERENCE_ROOTS") or saved.get("file_reference_roots") or ""
            ).split(os.pathsep)
            if r
        ),
    )
    return config.with_overrides(**overrides)
