"""Client configuration: flag, then environment, then the login file, then defaults (DESIGN §5)."""

from __future__ import annotations

import getpass
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .chunking import DEFAULT_CHUNK_SIZE
from .digest import MAX_CHUNK_BYTES
from .errors import ArtfsError
from .sizes import parse_size


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

    def with_overrides(self, **values: Any) -> Config:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


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


def write_config_file(path: Path, values: dict[str, str]) -> None:
    """Write the login file readable by its owner only (it holds an API key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f, indent=2)
    os.replace(tmp, path)


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
    )
    return config.with_overrides(**overrides)
