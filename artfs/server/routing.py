"""How the API's routes answer: the endpoint's value goes straight to ``JSONResponse``.

FastAPI's response validation and encoder walk a value recursively and fail (500) on nesting
an older release let be stored; a read must never fail because of what an earlier write
stored. The return annotation still describes the answer in the OpenAPI schema. Every API
router is made with ``route_class=JSONRoute``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.responses import Response

from .responses import JSONResponse


class JSONRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _answering_json(endpoint), **kwargs)


def _answering_json(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def answer_async(*args: Any, **kwargs: Any) -> Response:
            return _response(await endpoint(*args, **kwargs))

        return answer_async

    @functools.wraps(endpoint)
    def answer(*args: Any, **kwargs: Any) -> Response:
        return _response(endpoint(*args, **kwargs))

    return answer


def _response(value: Any) -> Response:
    return value if isinstance(value, Response) else JSONResponse(value)
