"""Manifest path rules: relative POSIX paths that can never leave the version root."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InvalidPath

MAX_PATH_BYTES = 4096
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f]")
# The common case in one match: ASCII segments of 1-255 characters, none of them . or ..
_SEGMENT = r"[^/\x00-\x1f\x7f]{1,255}"
_PLAIN = re.compile(rf"(?:(?!\.\.?/){_SEGMENT}/)*(?!\.\.?\Z){_SEGMENT}\Z")
MAX_SEGMENT_BYTES = 255
_DIRECTORY_BELOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def check_path(path: object) -> str:
    """Return ``path`` if it is a valid manifest path, else raise ``InvalidPath``.

    Rejected: non-strings, empty paths, absolute paths, empty segments (``a//b``, a trailing
    ``/``), ``.`` and ``..`` segments, NUL and other control characters, over-long names.
    """
    if (
        isinstance(path, str)
        and path.isascii()
        and len(path) <= MAX_PATH_BYTES
        and _PLAIN.match(path)
    ):
        return path
    if not isinstance(path, str) or not path:
        raise InvalidPath(f"invalid path {path!r}: must be a non-empty string")
    if path.startswith("/"):
        raise InvalidPath(f"invalid path {path!r}: absolute paths are not allowed")
    if CONTROL_CHARS.search(path):
        raise InvalidPath(f"invalid path {path!r}: control characters are not allowed")
    if not _one_name_on_disk(path):
        raise InvalidPath(f"invalid path {path!r}: not the name of a file (bad surrogates)")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPath(f"invalid path {path[:40]!r}...: longer than {MAX_PATH_BYTES} bytes")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath(f"invalid path {path!r}: empty, '.' or '..' segment")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise InvalidPath(f"invalid path {path!r}: a name is longer than {MAX_SEGMENT_BYTES}")
    return path


def _one_name_on_disk(path: str) -> bool:
    """Whether ``path`` is one file name's bytes, as Python gives undecodable names
    (``surrogateescape``), and no other path gives those bytes: a lone surrogate has none,
    and escaped bytes that decode as UTF-8 are another path's."""
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return raw.decode("utf-8", "surrogateescape") == path


def local_target(root: Path, path: str) -> Path:
    """Where manifest ``path`` lands under ``root``, after checking the path rules."""
    return root.joinpath(*check_path(path).split("/"))


def is_under(path: str, prefix: str | None) -> bool:
    """Whether manifest ``path`` lies at or below ``prefix`` (``None`` or ``""`` means all)."""
    if not prefix:
        return True
    prefix = prefix.strip("/")
    return path == prefix or path.startswith(prefix + "/")


def check_link(path: str, target: object) -> str:
    """Return ``target`` if a symlink at manifest ``path`` pointing to it stays inside the
    version, else raise ``InvalidPath``: a relative target without control characters whose
    ``..`` segments all come first and climb no higher than the root (``a/b/l -> ../c`` is
    fine; ``a -> ../x``, ``a -> /etc`` and ``a -> x/../y`` are not).

    A ``..`` after a name is refused because that name may itself be a link: with ``y -> .``,
    ``x -> y/..`` would climb above the root although it looks as if it stays. With the
    climbing first, a target climbs only through real directories (the link's parents) and
    then descends, so every link, followed through any other links, stays inside."""
    if (
        not isinstance(target, str)
        or not target
        or len(target.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES
    ):
        raise InvalidPath(
            f"{path}: a link target must be a non-empty string of at most {MAX_PATH_BYTES} bytes"
        )
    if target.startswith("/") or CONTROL_CHARS.search(target):
        raise InvalidPath(f"{path}: link target {target!r} is absolute or has control characters")
    depth = path.count("/")
    descended = False
    for segment in target.split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0 or descended:
                raise InvalidPath(f"{path}: link target {target!r} leaves the version")
        elif segment not in ("", "."):
            descended = True
    return target
