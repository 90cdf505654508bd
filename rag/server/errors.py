"""Errors as responses: ``{"error": {"message", "type"}}`` with the status that fits.

The message is the library's own one-line message; the type is the exception's kind
in snake case (``invalid_value``, ``index_not_found``...).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from rag.errors import (
    DatabaseUnavailable,
    IndexCorrupt,
    IndexLocked,
    IndexMismatch,
    IndexNotFound,
    InvalidValue,
    ModelError,
    RagError,
    ReadError,
    SourceChanged,
)

log = logging.getLogger(__name__)

# The most specific class first: the first one an error is an instance of decides.
STATUS: tuple[tuple[type[RagError], int], ...] = (
    (InvalidValue, 400),
    (IndexNotFound, 404),
    (IndexMismatch, 409),
    (SourceChanged, 409),
    (ReadError, 409),
    (IndexLocked, 503),
    (ModelError, 503),
    (DatabaseUnavailable, 503),
    (IndexCorrupt, 500),
)
_HTTP_TYPES = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid_request",
    503: "busy",
}


# What each error status means, for the OpenAPI document.
_MEANING = {
    400: "A value the request gave is not allowed, or its body is not valid JSON.",
    401: "The server wants a token and the request carries none or a wrong one.",
    404: "No document has that id.",
    409: "The index or a file does not match what the request needs: another "
    "embedder's index, or a document's file changed or unreadable since it was indexed.",
    413: "The request body is over the server's limit.",
    422: "The request does not have the declared shape.",
    503: "The server is busy, its index is locked or its database or models failed; "
    "try again later.",
}


class ErrorDetail(BaseModel):
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every error's body: ``{"error": {"message", "type"}}``."""

    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that may answer these error statuses."""
    return {s: {"model": ErrorBody, "description": _MEANING[s]} for s in statuses}


class Busy(Exception):
    """Every generation slot is taken; come back after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class NotFound(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


def error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind}}


def error_response(
    status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(message, kind), status_code=status, headers=headers)


def describe(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, body) of an error raised while answering, for an error event of a stream."""
    if isinstance(exc, RagError):
        return status_of(exc), error_body(str(exc), kind_of(exc))
    if isinstance(exc, HTTPException):
        return exc.status_code, error_body(
            str(exc.detail), _HTTP_TYPES.get(exc.status_code, "error")
        )
    return 500, error_body("the server failed to answer; see its log", "internal_error")


def status_of(exc: RagError) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


def kind_of(exc: BaseException) -> str:
    """``InvalidValue`` -> ``invalid_value``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def validation_message(exc: RequestValidationError) -> str:
    """One line naming each bad field: ``query: Field required; k: ...``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "; ".join(parts) or "the request is invalid"


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one shape."""

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status = status_of(exc)
        log.log(logging.ERROR if status >= 500 else logging.INFO, "%s: %s", request.url.path, exc)
        headers = {"Retry-After": "5"} if isinstance(exc, IndexLocked) else None
        return error_response(status, str(exc), kind_of(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return error_response(400, "the request body is not valid JSON", "invalid_json")
        return error_response(422, validation_message(exc), "invalid_request")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = _HTTP_TYPES.get(exc.status_code, "error")
        return error_response(exc.status_code, str(exc.detail), kind, exc.headers)

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)}
        return error_response(503, str(exc), "busy", headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s failed", request.url.path)
        orig = getattr(exc, "orig", None)  # a database driver's error, wrapped by SQLAlchemy
        if orig is not None and "psycopg" in type(orig).__module__:
            reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
            return error_response(503, f"the database failed: {reason}", "database_unavailable")
        return error_response(500, "the server failed to answer; see its log", "internal_error")
