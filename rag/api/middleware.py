"""The layers around every route: a last-resort 500, request body limits, API keys."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.api.errors import CRASHED, ApiError, error_response
from rag.settings import Settings

log = logging.getLogger(__name__)

CHAT_PATH = "/chat"
_DRAIN_FACTOR = 8  # read (and drop) up to this many times the limit before answering 413


class CatchAll:
    """Turns an unexpected exception into a 500 with one generic sentence; the log gets the rest.

    It sits outside the routes but inside Starlette's ServerErrorMiddleware, so the exception
    is handled here and the server keeps the client's connection alive.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; answer 500 if it fails before its response started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unexpected error on %s", scope["path"])
            if started:
                raise
            await error_response(scope, 500, CRASHED)(scope, receive, send)


class BodyLimit:
    """Reads each request body up front and answers 413 (one sentence) when it is too big.

    The excess is read and dropped (up to a bound) before answering, so clients see the 413
    instead of a reset connection. The mounted chat page keeps its own limits.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer a body within the limit and replay it, or answer 413."""
        if scope["type"] != "http" or scope["path"].startswith(CHAT_PATH) \
                or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size <= limit:
                chunks.append(body)
            more = bool(message.get("more_body", False))
            if size > limit * _DRAIN_FACTOR:
                break
        if size > limit:
            response = error_response(scope, 413, f"The request body is larger than the "
                                                  f"limit of {limit} bytes.")
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as usual

        await self.app(scope, replay, send)


def key_checker(settings: Settings) -> Callable[[Request], None]:
    """A dependency demanding ``Authorization: Bearer KEY`` or ``X-API-Key`` when keys are set."""
    keys = settings.api_key_set()

    def check(request: Request) -> None:
        if not keys:
            return
        supplied = request.headers.get("x-api-key", "")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            supplied = token.strip()
        if not supplied or not any(secrets.compare_digest(supplied.encode(), key.encode())
                                   for key in keys):
            raise ApiError(401, "A valid API key is required (Authorization: Bearer KEY).",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    return check
