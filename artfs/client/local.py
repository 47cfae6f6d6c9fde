"""The embedded backend: the store service in-process, acting as the local user (an admin)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..core.config import Config, local_user
from ..store.service import Store
from .backend import SERVICE_CALLS


class LocalBackend:
    """Calls ``Store`` methods with the local user bound as the caller."""

    def __init__(self, store: Store, user: str):
        self.store = store
        self.caller = store.ensure_user(user, is_admin=True)
        self.default_entity = user

    @classmethod
    def from_config(cls, config: Config) -> LocalBackend:
        return cls(Store.open(config.home), config.entity or local_user())

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in SERVICE_CALLS:
            raise AttributeError(name)
        return functools.partial(getattr(self.store, name), self.caller)

    def whoami(self) -> dict[str, Any]:
        return {"user": self.caller.name, "admin": True, "url": None, "teams": []}

    def close(self) -> None:
        self.store.close()
