"""The HTTP edge shared by every k15ray Serve application: OpenAI-style errors and a body limit.

* Every error answer is OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}``, so
  the official ``openai`` client raises its typed exceptions (``NotFoundError``, ``BadRequestError``).
* A body that is not valid JSON, a missing field or a wrong type gives **400** with a message naming
  the field (FastAPI's default would be 422 with a different shape).
* A body larger than ``app.state.max_body_bytes`` gives **413** before any parsing; the limit is
  set by the deployment's constructor, so it follows the configuration.
* Any other exception gives **500** with ``type = "server_error"``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from k15ray.serve.schemas import ErrorBody, ErrorResponse

DEFAULT_MAX_BODY_BYTES = 1_000_000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ApiError(Exception):
    """Raised by an endpoint to answer ``status`` with OpenAI's error envelope."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(message=message, type=type, param=param, code=code)


def error_response(status: int, body: ErrorBody) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=body).model_dump(), status_code=status)


def describe_validation(errors: list[Any]) -> tuple[str, str | None]:
    """One readable line for pydantic/FastAPI validation errors, and the first offending field."""
    parts = []
    first: str | None = None
    for err in errors[:5]:
        loc = [str(x) for x in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        loc = [x for x in loc if x != "single"]  # the one-item form of the reward requests
        # drop pydantic's union-branch tags like "str" / "list[int]" after the field name
        field = ".".join(x for x in loc if not x.startswith(("list[", "function-")) and x not in
                         ("str", "int", "float", "bool"))
        first = first or (field or None)
        parts.append(f"{field or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts), first


class BodyLimit:
    """Pure ASGI middleware: answer 413 when the request body exceeds ``state.max_body_bytes``.

    Reads the body first (the endpoint would read it all anyway), then replays it downstream; a
    ``content-length`` above the limit is refused without reading."""

    def __init__(self, app: Callable[..., Awaitable[None]], state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = int(getattr(self.state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self._too_large(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        body = ErrorBody(
            message=f"request body exceeds {limit} bytes; send fewer or shorter items",
            code="payload_too_large",
        )
        await error_response(413, body)(scope, receive, send)


def install_edge(app: FastAPI) -> FastAPI:
    """Add the body limit and the OpenAI-style error handlers to ``app`` (returns it)."""
    app.state.max_body_bytes = DEFAULT_MAX_BODY_BYTES
    app.add_middleware(BodyLimit, state=app.state)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe_validation(list(exc.errors()))
        return error_response(400, ErrorBody(message=message, param=param))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.body)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else None
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return error_response(exc.status_code, ErrorBody(message=message, code=code))

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        # a bug or a failing backend: still OpenAI's envelope, and the server keeps serving
        message = f"{type(exc).__name__}: {exc}"[:1000]
        return error_response(500, ErrorBody(message=message, type="server_error"))

    return app
