"""``artfs.Table`` and ``artfs.PartitionedTable``: tabular data stored as plain JSON files
inside an artifact, readable without artfs (``<name>.table.json``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..core.errors import ArtfsError
from ..core.paths import is_under

if TYPE_CHECKING:
    from .artifact import Artifact


class Table:
    """Named columns and rows."""

    SUFFIX = ".table.json"
    TYPE = "table"

    def __init__(self, columns: list[str], data: list[list[Any]] | None = None):
        self.columns = list(columns)
        self.data: list[list[Any]] = []
        for row in data or []:
            self.add_data(*row)

    def add_data(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ArtfsError(f"a row needs {len(self.columns)} values, got {len(values)}")
        self.data.append(list(values))

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        yield from enumerate(self.data)

    def to_json(self) -> dict[str, Any]:
        return {"_type": self.TYPE, "columns": self.columns, "data": self.data}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Table:
        return cls(obj["columns"], obj["data"])


class PartitionedTable:
    """A folder of ``Table`` parts inside the artifact, read as one table, a part at a time."""

    SUFFIX = ".partitioned-table.json"
    TYPE = "partitioned-table"

    def __init__(self, parts_path: str):
        self.parts_path = parts_path.strip("/")
        self._artifact: Artifact | None = None

    def to_json(self) -> dict[str, Any]:
        return {"_type": self.TYPE, "parts_path": self.parts_path}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PartitionedTable:
        return cls(obj["parts_path"])

    def parts(self) -> list[str]:
        if self._artifact is None:
            raise ArtfsError("a PartitionedTable is read from an artifact: use artifact.get()")
        return self.select_parts(e.path for e in self._artifact.files())

    def select_parts(self, paths: Iterable[str]) -> list[str]:
        """The paths of this table's parts among an artifact's file paths, in order."""
        return sorted(p for p in paths if is_under(p, self.parts_path) and p.endswith(Table.SUFFIX))

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        index = 0
        for part in self.parts():
            table = self._artifact.get(part)  # type: ignore[union-attr]
            for _, row in table.iterrows():
                yield index, row
                index += 1


MEDIA = {cls.TYPE: cls for cls in (Table, PartitionedTable)}
