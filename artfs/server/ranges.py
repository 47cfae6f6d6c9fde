"""``Range: bytes=...`` requests against a blob of known size (one range; RFC 9110 §14)."""

from __future__ import annotations

import re

_RANGE_RE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*\Z")


class Unsatisfiable(Exception):
    """The range lies past the end of the blob (answered 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(offset, length)`` the header asks for, or None to send everything: no header, or
    one this server ignores (malformed, or several ranges), as RFC 9110 allows."""
    match = _RANGE_RE.match(header or "")
    if not match:
        return None
    first, last = match.groups()
    if first == "":
        if last == "":
            return None
        length = min(int(last), size)  # a suffix: the last N bytes
        if length == 0:
            raise Unsatisfiable
        return size - length, length
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    end = size - 1 if last == "" else min(int(last), size - 1)
    return start, end - start + 1
