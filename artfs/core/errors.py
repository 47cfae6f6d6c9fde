"""The error hierarchy every layer raises.

Each error carries a stable ``code`` so the HTTP layer can send it over the wire and the
client can raise the same class again; the CLI prints ``str(error)`` as one line.
"""

from __future__ import annotations

from typing import Any


class ArtfsError(Exception):
    """Base class: the message is one line meant for the user."""

    code = "error"
    http_status = 400


class ArtfsWarning(UserWarning):
    """Something done as asked, but not quite as the user may think (one line; the CLI
    prints it as ``warning: ...``)."""


class InvalidArgument(ArtfsError):
    """A request the store refuses as malformed (400): the base of the ``Invalid*`` family."""

    code = "invalid_argument"


class InvalidName(InvalidArgument):
    code = "invalid_name"


class InvalidPath(InvalidArgument):
    code = "invalid_path"


class InvalidManifest(InvalidArgument):
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
        InvalidArgument,
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


def error_payload(exc: ArtfsError) -> dict[str, Any]:
    """The JSON body an error travels as: ``{"error": {"code", "message"[, "digests"]}}``."""
    body: dict[str, Any] = {"code": exc.code, "message": str(exc)}
    if isinstance(exc, MissingChunks):
        body["digests"] = exc.digests
    return {"error": body}


MAX_MESSAGE = 1000  # characters of a message from a server


def error_from_payload(payload: Any) -> ArtfsError | None:
    """The error a JSON body describes, as the class the server raised; None if it is none.
    Its message is made one line of printable text (a server is not trusted either)."""
    body = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return None
    digests = body.get("digests")
    if body.get("code") == MissingChunks.code and isinstance(digests, list):
        return MissingChunks([d for d in digests if isinstance(d, str)])
    message = "".join(c if c.isprintable() else " " for c in body["message"][:MAX_MESSAGE])
    return ERRORS_BY_CODE.get(body.get("code"), ArtfsError)(message)  # type: ignore[arg-type]
