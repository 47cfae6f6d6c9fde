"""The embedded backend: the store service in-process, acting as one caller.

``artfs`` on the embedded store acts as the local user (an admin of its own store); the
server's web pages act as the principal an API key stands for, through the same class.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..core.config import Config, local_user
from ..store.access import Principal
from ..store.service import Store
from ..store.settings import StoreSettings
from .backend import SERVICE_CALLS


class LocalBackend:
    """Calls ``Store`` methods with ``caller`` bound as the caller."""

    def __init__(self, store: Store, caller: Principal, default_entity: str | None = None):
        self.store = store
        self.caller = caller
        self.default_entity = default_entity or caller.name

    @classmethod
    def for_user(cls, store: Store, user: str) -> LocalBackend:
        """The local user of an embedded store: created on first use, an admin."""
        return cls(store, store.ensure_user(user, is_admin=True))

    @classmethod
    def from_config(cls, config: Config) -> LocalBackend:
        """The embedded store of ``config``. Its user is its operator, so an older schema is
        upgraded on open (after a copy of the database is kept; see docs/OPERATIONS.md)."""
        settings = StoreSettings(upgrade=True, encryption_key_file=config.encryption_key_file)
        store = Store.open(config.home, settings=settings)
        return cls.for_user(store, config.entity or local_user())

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in SERVICE_CALLS:
            raise AttributeError(name)
        return functools.partial(getattr(self.store, name), self.caller)

    def whoami(self) -> dict[str, Any]:
        return {**self.store.whoami(self.caller), "url": None}

    def close(self) -> None:
        self.store.close()
