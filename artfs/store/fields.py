"""Checks of the free-form fields callers send (descriptions, metadata, label lists, times):
wrong types get a one-line error, never a database failure or a silent misreading."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..core.errors import InvalidName

T = TypeVar("T")
MAX_TEXT = 64 << 10


def check_text(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidName(f"{field} must be a string of at most {MAX_TEXT} characters")
    return value


def check_metadata(value: object, field: str = "metadata") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidName(f"{field} must be a JSON object")
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidName(f"{field} is not JSON-serializable: {exc}") from None


def check_list(field: str, values: object, check: Callable[[Any], T]) -> list[T]:
    """A list of names (a single string is refused rather than read as its characters)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, set, frozenset)):
        raise InvalidName(f"{field} must be a list")
    return [check(v) for v in values]


def check_seconds(field: str, value: object, positive: bool = False) -> float | None:
    """A time (epoch seconds) or a duration; None clears it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidName(f"{field} must be a number of seconds")
    if positive and value <= 0:
        raise InvalidName(f"{field} must be positive")
    return float(value)
