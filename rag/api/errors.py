"""Errors as the API's callers see them: one plain sentence, with the right status.

``{"detail": sentence}`` everywhere, and OpenAI's error shape under ``/v1`` so OpenAI clients
raise their usual exceptions.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from rag.errors import (
    InvalidInput,
    ModelUnavailable,
    NotFound,
    RagError,
    StoreLocked,
    StoreUnavailable,
    TooLarge,
)

log = logging.getLogger(__name__)

CRASHED = "Something went wrong on the server; the error was logged."


class ApiError(Exception):
    """An HTTP error whose message is a plain sentence for the caller."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers


_RAG_STATUS: list[tuple[type[RagError], int]] = [  # the first that matches
    (TooLarge, 413), (NotFound, 404), (InvalidInput, 422), (StoreLocked, 409),
    (StoreUnavailable, 503),
    (ModelUnavailable, 503),
]


def rag_status(exc: RagError) -> int:
    """The HTTP status for a RagError: too large 413, bad input 422, busy 409, missing 503."""
    for kind, status in _RAG_STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def validation_sentence(errors: list[Any]) -> tuple[int, str]:
    """Turn pydantic's validation errors into a status and one sentence about the first."""
    if not errors:
        return 422, "The request is not valid."
    first = errors[0]
    kind = str(first.get("type", ""))
    where = [str(p) for p in first.get("loc", ())]
    place = where[0] if where else "body"
    field = ".".join(where[1:])
    if kind == "json_invalid":
        return 400, "The request body is not valid JSON."
    if place == "body" and not field:
        if kind == "missing":
            return 422, "The request needs a JSON body."
        return 422, "The request body must be a JSON object (Content-Type: application/json)."
    label = f"The field '{field}'" if place == "body" else f"The {place} parameter '{field}'"
    if kind == "missing":
        return 422, f"{label} is required."
    if kind == "extra_forbidden":
        return 422, f"{label} is not allowed."
    message = str(first.get("msg", "is not valid")).rstrip(".")
    return 422, f"{label} is not valid: {message[:1].lower()}{message[1:]}."


def openai_error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error body, so OpenAI clients raise their usual exceptions."""
    kind = {401: "authentication_error", 404: "invalid_request_error",
            429: "rate_limit_error"}.get(status, "server_error" if status >= 500
                                         else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_response(request: Request | Scope, status: int, message: str, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error; OpenAI's shape under /v1, ``{"detail": ...}`` elsewhere."""
    path = request.url.path if isinstance(request, Request) else str(request["path"])
    body = (openai_error(status, message, code) if path.startswith("/v1")
            else {"detail": message})
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error raised by a route with one sentence and its status."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(request, exc.status, exc.message, exc.code, exc.headers)

    async def on_rag_error(request: Request, exc: Exception) -> JSONResponse:
        log.info("request refused: %s", exc)
        return error_response(request, rag_status(exc), str(exc))  # type: ignore[arg-type]

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, message = validation_sentence(list(exc.errors()))
        return error_response(request, status, message)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        messages = {404: f"There is nothing at {request.url.path}.",
                    405: f"{request.url.path} does not accept {request.method} requests."}
        message = messages.get(exc.status_code, str(exc.detail).rstrip(".") + ".")
        return error_response(request, exc.status_code, message,
                              headers=getattr(exc, "headers", None))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RagError, on_rag_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
