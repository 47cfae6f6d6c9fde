"""What a file looks like in the browser: an image, a table (``artfs.Table``, CSV, JSON rows)
or text, always from a bounded number of bytes."""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ...client.backend import Backend
from ...client.tables import MEDIA, PartitionedTable, Table
from ...core.errors import ArtfsError
from ...core.manifest import Manifest, ManifestEntry
from ...core.sizes import format_size
from .content import file_kind, head

TEXT_BYTES = 64 << 10  # text and CSV previews show at most this much
PARSE_BYTES = 4 << 20  # JSON and table files are parsed whole only up to this size
IMAGE_BYTES = 16 << 20
MAX_ROWS = 50
MAX_PARTS = 20  # parts of a PartitionedTable read for its preview
MAX_CELL = 200
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The content type of an image of an allowed kind, from its first bytes (never SVG,
    which can hold scripts); None for anything else."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return "image/webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else None


@dataclass
class Preview:
    kind: str  # "image" | "table" | "text" | "none"
    note: str = ""
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _text(backend: Backend, entry: ManifestEntry) -> str | None:
    """The first ``TEXT_BYTES`` as UTF-8 (a character cut at the end dropped); None if the
    bytes are not text."""
    data = head(backend, entry, TEXT_BYTES)
    if b"\x00" in data:
        return None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return None


def _parsed(backend: Backend, entry: ManifestEntry) -> Any:
    return json.loads(head(backend, entry, entry.size))


def _truncated(entry: ManifestEntry) -> str:
    return f"the first {format_size(TEXT_BYTES)} of {format_size(entry.size)}"


def _table(backend: Backend, manifest: Manifest, entry: ManifestEntry) -> Preview:
    """An ``artfs.Table``, or the parts of a ``PartitionedTable``, as rows."""
    obj = _parsed(backend, entry)
    kind = MEDIA.get(str(obj.get("_type"))) if isinstance(obj, dict) else None
    if kind is None:
        return Preview("none", "not an artfs table")
    table = kind.from_json(obj)
    if isinstance(table, Table):
        rows, count = table.data[:MAX_ROWS], len(table.data)
        return Preview(
            "table",
            f"the first {len(rows)} of {count} rows",
            columns=list(map(_cell, table.columns)),
            rows=[list(map(_cell, r)) for r in rows],
        )
    parts = [manifest.entries[p] for p in table.select_parts(manifest.entries)]
    columns: list[str] = []
    out: list[list[str]] = []
    for part in parts[:MAX_PARTS]:
        if len(out) >= MAX_ROWS or part.size > PARSE_BYTES:
            break
        piece = Table.from_json(_parsed(backend, part))
        columns = columns or list(map(_cell, piece.columns))
        out += [list(map(_cell, r)) for r in piece.data[: MAX_ROWS - len(out)]]
    note = f"the first {len(out)} rows of {len(parts)} part(s) under {table.parts_path}/"
    return Preview("table", note, columns=columns, rows=out)


def _csv(text: str, entry: ManifestEntry) -> Preview:
    if entry.size > TEXT_BYTES:
        text = text.rpartition("\n")[0]  # a row cut at the end is dropped
    delimiter = "\t" if entry.path.lower().endswith(".tsv") else ","
    rows = list(islice(csv.reader(io.StringIO(text), delimiter=delimiter), MAX_ROWS + 1))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    return Preview(
        "table",
        f"the first {len(body)} rows",
        columns=list(map(_cell, header)),
        rows=[list(map(_cell, r)) for r in body],
    )


def _json_rows(obj: Any) -> Preview | None:
    """A JSON list of objects as a table of its first rows."""
    if not isinstance(obj, list) or not obj or not all(isinstance(r, dict) for r in obj):
        return None
    rows = obj[:MAX_ROWS]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return Preview(
        "table",
        f"the first {len(rows)} of {len(obj)} rows",
        columns=list(map(_cell, columns)),
        rows=[[_cell(r[c]) if c in r else "" for c in columns] for r in rows],
    )


def preview(backend: Backend, manifest: Manifest, entry: ManifestEntry) -> Preview:
    """How to show ``entry``: never more than the bounds above are read or parsed."""
    name = entry.path.lower()
    if entry.ref is not None:
        return Preview("none", f"stored elsewhere: {entry.ref}")
    if file_kind(entry) != "file":
        return Preview("none", f"a {file_kind(entry)}, not a file")
    if entry.size == 0:
        return Preview("text", "an empty file")
    if name.endswith(IMAGE_SUFFIXES):
        if entry.size > IMAGE_BYTES:
            return Preview("none", f"an image larger than {format_size(IMAGE_BYTES)}")
        if image_type(head(backend, entry, 16)) is None:
            return Preview("none", "named like an image, but not a PNG, JPEG, GIF or WebP image")
        return Preview("image")
    parse = entry.size <= PARSE_BYTES
    try:
        if parse and name.endswith((Table.SUFFIX, PartitionedTable.SUFFIX)):
            return _table(backend, manifest, entry)
        if parse and name.endswith(".json"):
            obj = _parsed(backend, entry)
            return _json_rows(obj) or Preview(
                "text", text=json.dumps(obj, indent=2, ensure_ascii=False)[:TEXT_BYTES]
            )
    except (ArtfsError, ValueError, KeyError, TypeError) as exc:
        return Preview("none", f"not valid JSON or not a table ({exc})")
    text = _text(backend, entry)
    if text is None:
        return Preview("none", "binary content: download it to look at it")
    if name.endswith((".csv", ".tsv")):
        return _csv(text, entry)
    return Preview("text", _truncated(entry) if entry.size > TEXT_BYTES else "", text=text)
