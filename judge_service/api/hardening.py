"""Edge hardening: error answers that never fail, security headers, and a bound on request bodies.

* Error handlers: FastAPI's 422 echoes the input, and a lone surrogate in it made the handler itself
  fail with UnicodeEncodeError (a 500). Every error body here passes through `json_safe` first:
  strings are escaped where they cannot be UTF-8 encoded and long echoes are cut.
* Security headers on every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy:
  no-referrer`, and a Content-Security-Policy chosen by content type: HTML pages (the dashboard,
  /label) may run their own scripts and Plotly's inline styles, everything else nothing; the
  interactive docs keep none, they load Swagger UI.
* Bodies larger than `JUDGE_MAX_REQUEST_BYTES` (by Content-Length) are answered 413 before they are read.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("judge_service")

MAX_ECHO_CHARS: Final = 200
PAGE_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
API_CSP: Final = "default-src 'none'; frame-ancestors 'none'"
DOCS_PATHS: Final = ("/docs", "/redoc")


def safe_str(value: str, limit: int | None = None) -> str:
    """A string that encodes as UTF-8: lone surrogates become `\\udXXX` escapes; optionally cut to `limit`."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(value) > limit:
        value = value[:limit] + f"... ({len(value)} characters)"
    return value


def json_safe(value: Any, limit: int | None = None, depth: int = 0) -> Any:
    """`value` made JSON-encodable and UTF-8 safe (exceptions and other objects become strings)."""
    if depth > 40:
        return "..."
    if isinstance(value, str):
        return safe_str(value, limit)
    if isinstance(value, bool | int | None):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, bytes):
        return safe_str(value.decode("utf-8", "backslashreplace"), limit)
    if isinstance(value, dict):
        return {safe_str(str(k), MAX_ECHO_CHARS): json_safe(v, limit, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple):
        return [json_safe(v, limit, depth + 1) for v in list(value)[:50]]
    return safe_str(str(value), limit)


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI/pydantic error list with the echoed `input` cut short and every string UTF-8 safe."""
    out = []
    for error in errors:
        entry = {k: v for k, v in dict(error).items() if k != "url"}
        if "input" in entry:
            entry["input"] = json_safe(entry["input"], MAX_ECHO_CHARS)
        out.append(json_safe(entry))
    return out


def install(app: FastAPI, max_request_bytes: int) -> None:
    """Register the error handlers and the header/body-size middleware on `app`."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, RecursionError | ValueError):
            # FastAPI's body parser answers JSON nested past Python's recursion limit, bytes that are
            # not UTF-8 and integers past Python's 4,300 digits with a bare 400; answer them like
            # every other invalid body: a 422 in the documented list shape.
            if isinstance(cause, RecursionError):
                msg = "the JSON body is nested too deeply to parse (metadata allows 32 levels)"
            elif isinstance(cause, UnicodeDecodeError):
                msg = f"the body is not UTF-8 ({cause.reason} at byte {cause.start})"
            else:
                msg = f"the JSON body cannot be read: {safe_str(str(cause), 200)}"
            return JSONResponse({"detail": [{"loc": ["body"], "msg": msg, "type": "json_invalid"}]}, status_code=422)
        return JSONResponse(
            {"detail": json_safe(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # A safety net: every value is validated at the edge, so reaching this is a validation gap. It
        # is still the caller's data the database refused, so a 422, logged loudly to be closed.
        log.error("database refused request data on %s %s: %s", request.method, request.url.path, exc.orig)
        detail = [{"loc": ["body"], "msg": "a value cannot be stored by the database", "type": "data_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_middleware(EdgeMiddleware, max_request_bytes=max_request_bytes)


class EdgeMiddleware:
    """Pure ASGI middleware: security headers on every response, 413 for oversized declared bodies."""

    def __init__(self, app: ASGIApp, max_request_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        # Swagger/ReDoc load their scripts from a CDN: they keep FastAPI's defaults.
        csp = not path.startswith(DOCS_PATHS)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_request_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    msg = f"request body over {self.max_request_bytes} bytes (JUDGE_MAX_REQUEST_BYTES)"
                    response = JSONResponse(
                        {"detail": [{"loc": ["body"], "msg": msg, "type": "too_large"}]}, status_code=413
                    )
                    await response(scope, receive, self._with_headers(send, csp))
                    return
        await self.app(scope, receive, self._with_headers(send, csp))

    @staticmethod
    def _with_headers(send: Send, csp: bool) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if csp:
                    # By what the response is, not where it lives: every HTML page (dashboard, /label, any
                    # page added later) may run its own scripts; everything else may run nothing.
                    html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                    extra.append((b"content-security-policy", (PAGE_CSP if html else API_CSP).encode()))
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        return wrapped
