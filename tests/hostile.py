"""A malicious artfs server: speaks the part of the HTTP API that ``artfs get`` uses, and
answers what a scenario file says, lies included. Run as a script (standard library only):

    python tests/hostile.py PORT SCENARIO.json

The scenario is a JSON object:
- ``whoami``: the answer to ``GET /api/v1/whoami``;
- ``manifest``: the answer to every ``GET .../versions/<alias>/manifest``;
- ``chunks``: ``{digest: answer}`` for ``GET /api/v1/chunks/<digest>``.

An answer is ``{"status": 200, "json": value}`` or ``{"status": 200, "hex": bytes}`` (sent
with a ``Content-Length`` unless ``"length": null``), or ``{"endless": true}``: bytes
without end, until the client hangs up. Every request is appended to ``SCENARIO.log``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse


class Handler(BaseHTTPRequestHandler):
    scenario: ClassVar[dict[str, Any]] = {}
    log_path: ClassVar[Path] = Path("/dev/null")

    def do_GET(self) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"GET {self.path}\n")
        path = unquote(urlparse(self.path).path)
        if path == "/api/v1/whoami":
            return self.answer({"status": 200, "json": self.scenario["whoami"]})
        if path.endswith("/manifest"):
            return self.answer(self.scenario["manifest"])
        if path.startswith("/api/v1/chunks/"):
            digest = path.removeprefix("/api/v1/chunks/")
            chunks = self.scenario.get("chunks", {})
            return self.answer(chunks.get(digest, {"status": 404, "json": {}}))
        return self.answer({"status": 404, "json": {"detail": "Not Found"}})

    def do_POST(self) -> None:
        """Nothing but GETs is spoken: a POST (a request for presigned URLs) gets a 404, as
        from a server that streams every chunk itself."""
        with open(self.log_path, "a") as log:
            log.write(f"POST {self.path}\n")
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer({"status": 404, "json": {"detail": "Not Found"}})

    def answer(self, spec: dict[str, Any]) -> None:
        self.send_response(spec.get("status", 200))
        if spec.get("endless"):
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            block = b"\x00" * (1 << 16)
            try:
                while True:
                    self.wfile.write(block)
            except OSError:  # the client hung up: what a client must do
                return
        if "json" in spec:
            body = json.dumps(spec["json"]).encode()
            self.send_header("Content-Type", "application/json")
        else:
            body = bytes.fromhex(spec["hex"])
            self.send_header("Content-Type", "application/octet-stream")
        length = spec.get("length", len(body))
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client hung up
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    port, scenario = int(sys.argv[1]), Path(sys.argv[2])
    Handler.scenario = json.loads(scenario.read_text())
    Handler.log_path = scenario.with_suffix(".log")
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
