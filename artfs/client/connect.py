"""Choose the backend the configuration asks for: a server URL, or the embedded store."""

from __future__ import annotations

from ..core.config import Config
from .backend import Backend


def connect(config: Config) -> Backend:
    if config.url:
        from .http import HttpBackend  # the server extra is optional for embedded users

        return HttpBackend(config.url, config.api_key, config.transfer)
    from .local import LocalBackend

    return LocalBackend.from_config(config)
