"""Every failure becomes a JSON error with the right status; internals only reach the log."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from domain.errors import (
    DomainError,
    FileNotFound,
    InvalidInput,
    NoActiveRun,
    ShuttingDown,
    TaskBusy,
    TaskExists,
    TaskNotFound,
    UnknownEventId,
)
from entrypoints.forms import FormError

log = logging.getLogger("agent.http")

_STATUS: list[tuple[type[DomainError], int, str]] = [
    (InvalidInput, 400, "invalid_input"),
    (TaskNotFound, 404, "task_not_found"),
    (FileNotFound, 404, "file_not_found"),
    (TaskExists, 409, "task_exists"),
    (TaskBusy, 409, "task_busy"),
    (NoActiveRun, 409, "no_active_run"),
    (UnknownEventId, 409, "unknown_event_id"),
    (ShuttingDown, 503, "shutting_down"),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def error_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if field is not None:
        body["field"] = field
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> JSONResponse:
        for kind, status, code in _STATUS:
            if isinstance(error, kind):
                field = error.field if isinstance(error, InvalidInput) else None
                headers = {"Retry-After": "5"} if status == 503 else None
                return error_response(request, status, code, str(error), field, headers)
        log.error("unmapped domain error %r", error)
        return error_response(request, 500, "internal_error", "internal server error")

    @app.exception_handler(FormError)
    async def form_error(request: Request, error: FormError) -> JSONResponse:
        code = _HTTP_CODES.get(error.status, "invalid_input")
        return error_response(request, error.status, code, error.message, error.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        if first.get("type") == "json_invalid":
            return error_response(request, 400, "invalid_input", "the body is not valid JSON")
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
        field = ".".join(loc) or None
        message = str(first.get("msg", "invalid input"))
        detail = f"{field}: {message}" if field else message
        return error_response(request, 400, "invalid_input", detail, field)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "error")
        return error_response(request, error.status_code, code, str(error.detail), headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception(
            "unhandled error on %s %s (request %s)",
            request.method,
            request.url.path,
            getattr(request.state, "request_id", "-"),
        )
        return error_response(request, 500, "internal_error", "internal server error")
