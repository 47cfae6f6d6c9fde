"""Checks of the free-form fields callers send (descriptions, metadata, configs, label lists,
times): wrong types get a one-line error, never a database failure or a silent misreading.

JSON values are bounded in size and nesting depth on the way in (docs/OPERATIONS.md,
"Limits"), so nothing stored can make a later read fail: the depth is measured without
recursion, before anything walks the value recursively.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..core.errors import InvalidArgument

T = TypeVar("T")
MAX_TEXT = 64 << 10  # characters of a description or a name-like text field
MAX_JSON_BYTES = 1 << 20  # bytes of one JSON field (metadata, config, summary)
MAX_JSON_DEPTH = 32  # nesting of objects and lists in one JSON field


def check_text(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidArgument(f"{field} must be a string of at most {MAX_TEXT} characters")
    return value


def check_json(field: str, value: object) -> Any:
    """A JSON value within the depth and size bounds, as plain JSON types."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > MAX_JSON_DEPTH:
                raise InvalidArgument(f"{field} is nested deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{field} is not JSON-serializable: {exc}") from None
    if len(text) > MAX_JSON_BYTES:
        raise InvalidArgument(f"{field} is larger than {MAX_JSON_BYTES} bytes as JSON")
    return json.loads(text)


def check_metadata(value: object, field: str = "metadata") -> dict[str, Any]:
    """A JSON object within the bounds (metadata, a run's config or summary)."""
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{field} must be a JSON object")
    checked: dict[str, Any] = check_json(field, dict(value))
    return checked


def merged_metadata(field: str, stored: Mapping[str, Any], changes: object) -> dict[str, Any]:
    """``changes`` merged key by key over a stored object, the result within the bounds too
    (a value merged one piece at a time cannot outgrow them)."""
    return check_metadata({**stored, **check_metadata(changes, field)}, field)


def check_list(field: str, values: object, check: Callable[[Any], T]) -> list[T]:
    """A list of names (a single string is refused rather than read as its characters)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, set, frozenset)):
        raise InvalidArgument(f"{field} must be a list")
    if len(values) > 1000:
        raise InvalidArgument(f"{field} has more than 1000 items")
    return [check(v) for v in values]


def check_seconds(field: str, value: object, positive: bool = False) -> float | None:
    """A time (epoch seconds) or a duration; None clears it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{field} must be a number of seconds")
    if positive and value <= 0:
        raise InvalidArgument(f"{field} must be positive")
    return float(value)
