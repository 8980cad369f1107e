"""OpenAI-style error objects: `{"error": {"message", "type", "param", "code"}}` with a 4xx status.

Routes raise `APIError`; the handlers below turn it, backend failures, request-validation failures and
malformed JSON into that shape, each with the status `status_for` gives it. Only unexpected bugs become a
500, and they too keep the shape.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve.types import BackendError, GenerationFailed, UpstreamFailed

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
}


# Exception → HTTP status: the one table for the handlers below and for the errors sent inside a stream
# (vLLM's OpenAI server maps its engine's errors the same way). An exception's own `status` (an APIError's,
# a remote server's 4xx passed on) comes first; then the first class of its MRO found here.
EXCEPTION_STATUS: dict[type[BaseException], int] = {
    UpstreamFailed: 502,  # the remote OpenAI-compatible server refused, failed or cannot be reached
    GenerationFailed: 500,  # the local engine (transformers, vLLM) failed
    BackendError: 502,
}


def status_for(exc: BaseException) -> int:
    """The HTTP status that answers `exc`: its own `status`, else EXCEPTION_STATUS's, else 500 (a bug)."""
    own = getattr(exc, "status", None)
    if isinstance(own, int):
        return own
    return next((EXCEPTION_STATUS[c] for c in type(exc).__mro__ if c in EXCEPTION_STATUS), 500)


class APIError(Exception):
    headers: dict[str, str] | None = None  # sent with the error response (e.g. Retry-After)

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_payload(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_payload(status, message, param, code), status_code=status, headers=headers)


def _describe_validation(errors: list[dict[str, Any]]) -> tuple[str, str | None, str]:
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx", {}).get("error", "")
        return f"the request body is not valid JSON ({ctx}); send a JSON object", None, "invalid_json"
    if first.get("type") == "missing" and not loc:
        return "the request body is missing; send a JSON object", None, "invalid_request"
    msg = first.get("msg", "invalid value")
    where = f"`{param}`" if param else "the request body"
    got = first.get("input")
    shown = json.dumps(got, default=str)[:80] if not isinstance(got, dict) else "an object"
    return f"{where}: {msg} (got {shown}); fix that field and retry", param, "invalid_value"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)  # serve/admission.py's Overloaded too, with its Retry-After
    async def _api_error(request: Request, exc: APIError):
        return error_response(status_for(exc), exc.message, exc.param, exc.code, exc.headers)

    @app.exception_handler(BackendError)
    async def _backend_error(request: Request, exc: BackendError):
        return error_response(status_for(exc), str(exc), code="backend_error")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        message, param, code = _describe_validation(list(exc.errors()))
        return error_response(400, message, param, code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # a bug: keep the shape, log the traceback
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413 (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _send_413(send, limit)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _send_413(send, limit)


class _TooLarge(StarletteHTTPException):
    # An HTTPException so that FastAPI's body parser re-raises it as is (it wraps other errors in a 400).
    def __init__(self, limit: int = 0):
        super().__init__(413, f"request body over the {limit}-byte limit; send a smaller request")


async def _send_413(send, limit: int) -> None:
    body = json.dumps(
        error_payload(
            413, f"request body over the {limit}-byte limit; send a smaller request", code="body_too_large"
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
