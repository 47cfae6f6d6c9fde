"""The error hierarchy every layer raises.

Each error carries a stable ``code`` so the HTTP layer can send it over the wire and the
client can raise the same class again; the CLI prints ``str(error)`` as one line.
"""

from __future__ import annotations


class ArtfsError(Exception):
    """Base class: the message is one line meant for the user."""

    code = "error"
    http_status = 400


class InvalidName(ArtfsError):
    code = "invalid_name"


class InvalidPath(ArtfsError):
    code = "invalid_path"


class InvalidManifest(ArtfsError):
    code = "invalid_manifest"


class DigestMismatch(ArtfsError):
    code = "digest_mismatch"


class NotFound(ArtfsError):
    code = "not_found"
    http_status = 404


class Conflict(ArtfsError):
    code = "conflict"
    http_status = 409


class MissingChunks(Conflict):
    """A commit names chunks the store does not hold (or the caller may not use)."""

    code = "missing_chunks"

    def __init__(self, digests: list[str]):
        self.digests = digests
        super().__init__(f"{len(digests)} chunk(s) of the manifest are not in the store")


class Unauthenticated(ArtfsError):
    code = "unauthenticated"
    http_status = 401


class PermissionDenied(ArtfsError):
    code = "permission_denied"
    http_status = 403


class Unavailable(ArtfsError):
    """The store could not be reached or failed; retrying later may help."""

    code = "unavailable"
    http_status = 503


ERRORS_BY_CODE: dict[str, type[ArtfsError]] = {
    cls.code: cls
    for cls in (
        ArtfsError,
        InvalidName,
        InvalidPath,
        InvalidManifest,
        DigestMismatch,
        NotFound,
        Conflict,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
    )
}
