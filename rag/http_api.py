"""The HTTP API: a thin FastAPI shell over ``Assistant`` (JSON, SSE streaming, uploads, keys).

Every route calls the same Python API as the chat and the CLI, so answers are the same
everywhere. Errors are always one plain sentence in ``{"detail": ...}`` (OpenAI's error shape
under ``/v1``), never a traceback.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.answerers import available_generators
from rag.assistant import Assistant
from rag.errors import InvalidInput, ModelUnavailable, RagError, StoreLocked, StoreUnavailable
from rag.memory import limit_malloc_arenas
from rag.models import MAX_QUESTION_CHARS, Answer, Filters, IngestReport, Strict, Turn
from rag.settings import Settings

log = logging.getLogger(__name__)

CHAT_PATH = "/chat"
_MULTIPART_SLACK = 64 * 1024  # boundaries and part headers on top of the files themselves
_DRAIN_FACTOR = 8  # read (and drop) up to this many times the limit before answering 413
_UPLOAD_CHUNK = 256 * 1024


# -- request and response bodies ---------------------------------------------------------------
class AskRequest(Strict):
    """A question, with the conversation so far and optional retrieval filters."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS,
                          examples=["What did Putin offer instead of the Czech radar?"])
    history: list[Turn] = Field(default_factory=list, max_length=50,
                                description="Earlier turns, oldest first, for follow-ups.")
    filters: Filters | None = None
    top_k: int | None = Field(default=None, ge=1, le=20, description="Passages to answer from.")
    generator: str | None = Field(default=None,
                                  description="An answerer listed by GET /health; default: the "
                                              "server's configured one.")


class ErrorBody(BaseModel):
    """What every error response carries: one plain sentence."""

    detail: str


class Health(BaseModel):
    """Whether the store answers, and how much is indexed."""

    status: Literal["ok", "unavailable"]
    articles: int | None = None
    chunks: int | None = None
    store: Literal["embedded", "http"]
    generator: str = Field(description="The default answerer.")
    generators: list[str] = Field(description="Answerers a request may choose.")
    detail: str | None = None


class ApiError(Exception):
    """An HTTP error whose message is a plain sentence for the caller."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers


# -- errors as one sentence ----------------------------------------------------------------------
_RAG_STATUS: list[tuple[type[RagError], int]] = [
    (InvalidInput, 422), (StoreLocked, 409), (StoreUnavailable, 503), (ModelUnavailable, 503),
]


def rag_status(exc: RagError) -> int:
    """The HTTP status for a RagError: bad input 422, busy store 409, missing parts 503."""
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


def _install_error_handlers(app: FastAPI) -> None:
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


CRASHED = "Something went wrong on the server; the error was logged."


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


# -- body size limits ------------------------------------------------------------------------------
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


# -- API keys --------------------------------------------------------------------------------------
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


# -- uploads -------------------------------------------------------------------------------------
def safe_name(filename: str | None) -> str:
    """A plain file name for an upload: no folders, no hidden files, no odd characters."""
    name = Path((filename or "").replace("\\", "/")).name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("._")[-120:]
    return name or "upload.txt"


def _save_upload(upload: UploadFile, folder: Path, budget: int) -> tuple[Path, int]:
    """Copy one upload into ``folder`` (atomically), refusing it when it exceeds ``budget``."""
    target = folder / safe_name(upload.filename)
    partial = folder / f".{target.name}.{secrets.token_hex(4)}.partial"
    written = 0
    try:
        with partial.open("wb") as out:
            while chunk := upload.file.read(_UPLOAD_CHUNK):
                written += len(chunk)
                if written > budget:
                    raise ApiError(413, "The uploaded files are larger than the limit of "
                                        f"{budget} bytes.")
                out.write(chunk)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target, written


def _rename_paths(report: IngestReport, names: dict[str, str]) -> IngestReport:
    """Show uploads under the names they were sent with, not the server's paths."""
    reasons: dict[str, str] = {}
    for where, reason in report.skipped_reasons.items():
        for path, name in names.items():
            where = where.replace(path, name)
        reasons[where] = reason
    return report.model_copy(update={"skipped_reasons": reasons})


# -- the app ---------------------------------------------------------------------------------------
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in {
        401: "Missing or wrong API key.", 409: "Another ingest is writing the store.",
        413: "The request body is too large.", 422: "The request is not valid.",
        503: "The store or a model is unavailable.", 500: "Unexpected server error.",
    }.items()
}
_SSE_DOC = {"text/event-stream": {"schema": {"type": "string"}, "example":
            'event: delta\ndata: {"text": "Putin offered ..."}\n\n'
            'event: answer\ndata: {"question": "...", "text": "...", "citations": [...]}\n\n'}}


def generator_names(settings: Settings) -> list[str]:
    """The answerers a request may choose: what runs here, plus the configured default."""
    names = list(available_generators(settings))
    if settings.generator not in names:
        names.insert(0, settings.generator)
    return names


def _events(first: str | Answer, rest: Iterator[str | Answer]) -> Iterator[ServerSentEvent]:
    """Text deltas, then one ``answer`` event with the whole Answer (or one ``error`` event)."""
    def event(item: str | Answer) -> ServerSentEvent:
        if isinstance(item, Answer):
            return ServerSentEvent(event="answer", data=item.model_dump_json())
        return ServerSentEvent(event="delta", data=json.dumps({"text": item}))

    yield event(first)
    try:
        for item in rest:
            yield event(item)
    except RagError as exc:
        yield ServerSentEvent(event="error", data=json.dumps({"detail": str(exc)}))
    except Exception:
        log.exception("answer stream failed")
        yield ServerSentEvent(event="error", data=json.dumps({"detail": CRASHED}))


def create_app(settings: Settings | None = None, assistant: Assistant | None = None, *,
               with_chat: bool = False) -> FastAPI:
    """The FastAPI app over ``assistant`` (built from ``settings`` when not given)."""
    assistant = assistant or Assistant(settings)
    settings = assistant.settings
    generators = generator_names(settings)
    ingest_lock = threading.Lock()
    uploads = settings.data_dir / "uploads"

    def limit_for(path: str) -> int:
        return settings.max_upload_bytes + _MULTIPART_SLACK if path == "/ingest" \
            else settings.max_body_bytes

    app = FastAPI(
        title="News assistant API",
        version="1",
        description="Ask questions of the indexed news articles; answers cite their sources "
                    "with [n] markers. Errors are `{\"detail\": sentence}`.",
    )
    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(CatchAll)
    _install_error_handlers(app)
    guarded = [Depends(key_checker(settings))]

    def check_generator(name: str | None) -> None:
        if name is not None and name not in generators:
            raise ApiError(422, f"The generator '{name[:60]}' is not available here; choose "
                                f"one of: {', '.join(generators)}.")

    @app.get("/health", response_model=Health, tags=["service"],
             responses={503: {"model": Health, "description": "The store is unreachable."}})
    async def health() -> Health | JSONResponse:
        """Whether the store can be reached, with counts of indexed articles and chunks."""
        base = Health(status="ok", store=settings.chroma_mode, generator=settings.generator,
                      generators=generators)
        try:
            stats = await run_in_threadpool(assistant.stats)
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            down = base.model_copy(update={"status": "unavailable",
                                           "detail": "The article store cannot be reached."})
            return JSONResponse(down.model_dump(), status_code=503)
        return base.model_copy(update={"articles": stats["articles"], "chunks": stats["chunks"]})

    @app.post("/ask", response_model=Answer, dependencies=guarded, tags=["ask"],
              responses={**_ERRORS, 200: {"content": _SSE_DOC,
                                          "description": "The Answer (SSE with stream=true)."}})
    async def ask(body: AskRequest,
                  stream: bool = Query(False, description="Stream the answer as SSE.")) -> Any:
        """Answer a question from the articles, with [n] citations, or refuse plainly."""
        if stream:
            return await ask_stream(body)
        check_generator(body.generator)
        return await run_in_threadpool(assistant.ask, body.question, body.history,
                                       body.filters, top_k=body.top_k,
                                       generator=body.generator)

    @app.post("/ask/stream", dependencies=guarded, tags=["ask"], response_class=EventSourceResponse,
              responses={**_ERRORS, 200: {"content": _SSE_DOC, "description":
                                          "Server-Sent Events: `delta` events with "
                                          "{\"text\"}, then one `answer` event with the whole "
                                          "Answer (or one `error` event)."}})
    async def ask_stream(body: AskRequest) -> EventSourceResponse:
        """Stream the answer over Server-Sent Events; the last event is the whole Answer."""
        check_generator(body.generator)
        stream = assistant.ask_stream(body.question, body.history, body.filters,
                                      top_k=body.top_k, generator=body.generator)
        # The first step validates the question, so bad input is still a plain 4xx.
        first = await run_in_threadpool(next, stream)
        return EventSourceResponse(_events(first, stream))

    @app.post("/ingest", response_model=IngestReport, dependencies=guarded, tags=["ingest"],
              responses=_ERRORS)
    def ingest(files: Annotated[list[UploadFile], File(
            description="Article files: .txt .md .html .json .jsonl .rss .atom .xml")]
               ) -> IngestReport:
        """Add or update articles from uploaded files; a file with a known name replaces it."""
        if not ingest_lock.acquire(timeout=300):
            raise StoreLocked("Another ingest is still running; try again shortly.")
        staging = uploads / f".staging-{secrets.token_hex(6)}"
        try:
            staging.mkdir(parents=True)
            budget = settings.max_upload_bytes
            names: dict[str, str] = {}
            for upload in files:  # all or nothing: stage every file before replacing any
                path, size = _save_upload(upload, staging, budget)
                budget -= size
                names[path.name] = upload.filename or path.name
            saved: dict[str, str] = {}
            for name, sent in names.items():
                os.replace(staging / name, uploads / name)
                saved[str((uploads / name).resolve())] = sent
            report = assistant.ingest(list(saved))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            ingest_lock.release()
        return _rename_paths(report, saved)

    from rag.openai_compat import router

    app.include_router(router(assistant, generators), dependencies=guarded)
    home = CHAT_PATH + "/" if with_chat and mount_chat(app, assistant) else "/docs"

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(home)

    return app


def mount_chat(app: FastAPI, assistant: Assistant) -> bool:
    """Mount the Gradio chat at /chat when ``rag.chat_ui`` exists; API keys become passwords."""
    if importlib.util.find_spec("rag.chat_ui") is None:
        log.warning("rag.chat_ui is not available; serving the API without the chat page")
        return False
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from rag import chat_ui

    keys = assistant.settings.api_key_set()

    def login(_user: str, password: str) -> bool:
        return any(secrets.compare_digest(password.encode(), key.encode()) for key in keys)

    options: dict[str, Any] = getattr(chat_ui, "serve_options", lambda _s: {})(assistant.settings)
    gr.mount_gradio_app(app, chat_ui.build_demo(assistant), path=CHAT_PATH,
                        auth=login if keys else None, **options)
    return True


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
          with_chat: bool = True) -> None:
    """Run the API (and the chat page at /chat) with uvicorn until interrupted."""
    import uvicorn

    if not _is_loopback(host) and not settings.api_key_set():
        log.warning("serving on %s without API keys: anyone who can reach it can ask and "
                    "ingest (set RAG_API_KEYS)", host)
    from rag.store import claim_store

    limit_malloc_arenas()
    claim_store(settings)
    app = create_app(settings, with_chat=with_chat)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
