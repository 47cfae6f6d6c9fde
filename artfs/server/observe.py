"""What the server tells its operator: one log line per event, ``key=value`` pairs (logfmt),
every line of a request with its request id; and the request metrics.

``Observe`` wraps the application (plain ASGI, so streamed bodies stay streamed): it takes the
client's ``X-Request-Id`` when it is a sane token (else makes one), returns it in the
response, counts the request and its body bytes under its route template (never the raw
path, which would make a series per chunk), and logs the access line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from typing import Any

from . import metrics

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_BARE = re.compile(r"[^\s\"=\\]+")
access_log = logging.getLogger("artfs.access")

Scope = dict[str, Any]
Message = dict[str, Any]


def logfmt_value(value: object) -> str:
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=... logger=... request_id=... msg=...``, plus the ``fields`` a record
    carries, on one line (a traceback goes, escaped, into ``exc=``)."""

    def format(self, record: logging.LogRecord) -> str:
        pairs: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": REQUEST_ID.get(),
        }
        pairs.update(getattr(record, "fields", {}))
        message = record.getMessage()
        if message:
            pairs["msg"] = message
        if record.exc_info:
            pairs["exc"] = self.formatException(record.exc_info)
        return " ".join(f"{k}={logfmt_value(v)}" for k, v in pairs.items())


class Observe:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"")
        request_id = given.decode() if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        # Each request runs in its own task, so the id is seen by this request's code only
        # (also by the error handlers outside this middleware, which is why it is not reset).
        REQUEST_ID.set(request_id)
        counts = {"in": 0, "out": 0, "status": 500}
        started = time.perf_counter()

        async def receive_counted() -> Message:
            message = await receive()
            counts["in"] += len(message.get("body", b""))
            return message

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                counts["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_counted, send_counted)
        finally:
            seconds = time.perf_counter() - started
            found: Any = scope.get("route")  # the FastAPI route matched, if any
            route = getattr(found, "path", None) or "unmatched"
            if route.startswith("/api/"):
                endpoint, batch = found.name, headers.get(b"artfs-chunks", b"").decode("latin-1")
                metrics.count_endpoint(endpoint, counts["status"], seconds, counts["in"], batch)
            metrics.REQUESTS.labels(scope["method"], route, str(counts["status"])).inc()
            metrics.REQUEST_SECONDS.labels(route).observe(seconds)
            metrics.RECEIVED_BYTES.labels(route).inc(counts["in"])
            metrics.SENT_BYTES.labels(route).inc(counts["out"])
            host, port = scope.get("client") or ("-", 0)
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": counts["status"],
                "bytes_in": counts["in"],
                "bytes_out": counts["out"],
                "ms": round(seconds * 1000, 1),
                "client": f"{host}:{port}",  # the port tells connections apart
            }
            access_log.info("", extra={"fields": fields})
