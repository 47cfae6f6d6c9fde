"""How the CLI talks: one-line errors, sizes, tables, durations."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import datetime

import click

from ..core.errors import ArtfsError
from ..core.sizes import format_size

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)\Z")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def fail(message: str, code: int = 1) -> None:
    click.echo(f"artfs: error: {message}", err=True)
    sys.exit(code)


def parse_duration(text: str) -> float:
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ArtfsError(f"invalid duration {text!r}: use e.g. 0, 90s, 30m, 12h, 7d")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


size = format_size
