"""Every error the API answers, as one JSON shape.

Whatever goes wrong, the client gets an :class:`~.models.ErrorBody`:
``{"error": {"code", "message", "hint", "extra"}}`` with a status that says
whose fault it was: 4xx the request's (what to change is in the message and
the hint), 503 the server's state (try again), 500 a bug of ours (logged with
its traceback on the server; never sent to the client).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bridge.store.errors import NotFound, StoreError

from ..errors import ApiError

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger("bridge.http")

SEE_DOCS = "see /openapi.json for the routes"
_LOGS = "the server's log has the details; please report it"


def error_response(
    status: int,
    code: str,
    message: str,
    hint: str = "",
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "hint": hint, "extra": extra or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


def _problem(error: Any) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
    return f"{loc}: {error.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.hint, exc.extra, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_problem(e) for e in exc.errors()]
        return error_response(
            422,
            "invalid_request",
            "the request is not valid: " + "; ".join(problems),
            "see /openapi.json for the fields each route takes",
            {"problems": problems},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "not_found", f"no such route: {request.url.path}", SEE_DOCS)
        if exc.status_code == 405:
            return error_response(
                405, "method_not_allowed", f"{request.method} is not allowed here", SEE_DOCS
            )
        return error_response(exc.status_code, "http_error", str(exc.detail), SEE_DOCS)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFound):  # gone between the check and the write
            return error_response(404, "not_found", exc.message, exc.hint)
        if isinstance(exc, StoreError):
            request.app.state.store_errors = getattr(request.app.state, "store_errors", 0) + 1
            log.error("store error on %s %s: %s", request.method, request.url.path, exc)
            return error_response(
                503, "store_unavailable", f"the store failed: {exc}", "try again in a moment"
            )
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "the bridge failed to handle this request", _LOGS)
