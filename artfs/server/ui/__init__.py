"""The web UI (docs/OPERATIONS.md, "The web UI"): server-rendered pages over the Backend
protocol, at ``/ui/``.

Every page reads and edits through a ``LocalBackend`` bound to the person looking (the owner
of the API key in the session cookie, or the local user under ``artfs ui``), so the store's
access rules are the UI's access rules.
"""

from .app import create_ui, mount_ui

__all__ = ["create_ui", "mount_ui"]
