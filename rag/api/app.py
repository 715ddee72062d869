"""The HTTP API: a thin FastAPI shell over ``Assistant`` (JSON, SSE streaming, uploads, keys).

Every route calls the same Python API as the chat and the CLI, so answers are the same
everywhere. Errors are always one plain sentence in ``{"detail": ...}`` (OpenAI's error shape
under ``/v1``), never a traceback.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Query, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from ingest.uploads import Upload
from rag.answering.factory import answerer_choices
from rag.api.chat_mount import mount_chat
from rag.api.errors import CRASHED, ApiError, install_error_handlers
from rag.api.middleware import CHAT_PATH, BodyLimit, CatchAll, key_checker
from rag.api.openai_compat import model_resolver
from rag.api.openai_compat import router as openai_router
from rag.api.openai_responses import router as responses_router
from rag.api.schemas import AskRequest, ErrorBody, Health, UrlIngestRequest
from rag.api.streaming import stopping_on_disconnect
from rag.assistant import Assistant
from rag.errors import RagError
from rag.records import Answer, ArticleInfo, IngestReport, Preview
from rag.settings import Settings

log = logging.getLogger(__name__)

_MULTIPART_SLACK = 64 * 1024  # boundaries and part headers on top of the files themselves

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


def _events(first: str | Preview | Answer,
            rest: Iterator[str | Preview | Answer]) -> Iterator[ServerSentEvent]:
    """A ``preview`` (with a language model), text deltas, then one ``answer`` event with the
    whole Answer (or one ``error`` event)."""
    def event(item: str | Preview | Answer) -> ServerSentEvent:
        if isinstance(item, Answer):
            return ServerSentEvent(event="answer", data=item.model_dump_json())
        if isinstance(item, Preview):
            return ServerSentEvent(event="preview", data=item.model_dump_json())
        return ServerSentEvent(event="delta", data=json.dumps({"text": item}))

    if first:
        yield event(first)
    try:
        for item in rest:
            if item:
                yield event(item)
    except RagError as exc:
        yield ServerSentEvent(event="error", data=json.dumps({"detail": str(exc)}))
    except Exception:
        log.exception("answer stream failed")
        yield ServerSentEvent(event="error", data=json.dumps({"detail": CRASHED}))


def health_routes(assistant: Assistant, answerers: Sequence[str]) -> APIRouter:
    """GET /health: whether the store answers, and how much is indexed."""
    api = APIRouter(tags=["service"])
    settings = assistant.settings

    @api.get("/health", response_model=Health,
             responses={503: {"model": Health, "description": "The store is unreachable."}})
    async def health() -> Health | JSONResponse:
        """Whether the store can be reached, with counts of indexed articles and chunks."""
        base = Health(status="ok", store=settings.chroma_mode, answerer=settings.answerer,
                      answerers=list(answerers), ready=assistant.ready())
        try:
            stats = await run_in_threadpool(assistant.stats)
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            down = base.model_copy(update={"status": "unavailable",
                                           "detail": "The article store cannot be reached."})
            return JSONResponse(down.model_dump(), status_code=503)
        return base.model_copy(update={"articles": stats["articles"], "chunks": stats["chunks"]})

    return api


def ask_routes(assistant: Assistant, answerers: Sequence[str]) -> APIRouter:
    """POST /ask (JSON, or SSE with ?stream=true) and POST /ask/stream."""
    api = APIRouter(tags=["ask"])

    def check_answerer(name: str | None) -> None:
        if name is not None and name not in answerers:
            raise ApiError(422, f"The answerer '{name[:60]}' is not available here; choose "
                                f"one of: {', '.join(answerers)}.")

    @api.post("/ask", response_model=Answer,
              responses={**_ERRORS, 200: {"content": _SSE_DOC,
                                          "description": "The Answer (SSE with stream=true)."}})
    async def ask(body: AskRequest,
                  stream: bool = Query(False, description="Stream the answer as SSE.")) -> Any:
        """Answer a question from the articles, with [n] citations, or refuse plainly."""
        if stream:
            return await ask_stream(body)
        check_answerer(body.answerer)
        return await run_in_threadpool(assistant.ask, body.question, body.history,
                                       body.filters, top_k=body.top_k, answerer=body.answerer)

    @api.post("/ask/stream", response_class=EventSourceResponse,
              responses={**_ERRORS, 200: {"content": _SSE_DOC, "description":
                                          "Server-Sent Events: `delta` events with "
                                          "{\"text\"}, then one `answer` event with the whole "
                                          "Answer (or one `error` event)."}})
    async def ask_stream(body: AskRequest) -> EventSourceResponse:
        """Stream the answer over Server-Sent Events; the last event is the whole Answer."""
        check_answerer(body.answerer)
        stop = threading.Event()
        stream = assistant.ask_stream(body.question, body.history, body.filters,
                                      top_k=body.top_k, answerer=body.answerer, stop=stop)
        # The first step validates the question, so bad input is still a plain 4xx.
        first = await run_in_threadpool(next, stream)
        return stopping_on_disconnect(_events(first, stream), stop)

    return api


def ingest_routes(assistant: Assistant) -> APIRouter:
    """POST /ingest and /ingest/urls: add or update articles from uploaded files or URLs."""
    api = APIRouter(tags=["ingest"])

    @api.post("/ingest", response_model=IngestReport, responses=_ERRORS)
    def ingest(files: Annotated[list[UploadFile], File(
            description="Article files: .txt .md .html .pdf .json .jsonl .rss .atom .xml")]
               ) -> IngestReport:
        """Add or update articles from uploaded files; a file with a known name replaces it."""
        return assistant.add_uploads([Upload(f.filename or "upload.txt", f.file) for f in files])

    @api.post("/ingest/urls", response_model=IngestReport, responses=_ERRORS)
    def ingest_urls(body: UrlIngestRequest) -> IngestReport:
        """Fetch articles by URL (pages, feeds, article files) and add or update them."""
        return assistant.add_urls(body.urls)

    return api


def article_routes(assistant: Assistant) -> APIRouter:
    """GET /articles, DELETE /articles/{id}, POST /articles/reindex: what is indexed."""
    api = APIRouter(tags=["articles"])

    @api.get("/articles", response_model=list[ArticleInfo], responses=_ERRORS)
    def articles() -> list[ArticleInfo]:
        """Every indexed article, newest first: headline, date, source, chunks, files."""
        return assistant.articles()

    @api.delete("/articles/{article_id}", response_model=ArticleInfo,
                responses={**_ERRORS, 404: {"model": ErrorBody,
                                            "description": "No such article."}})
    def delete_article(article_id: str) -> ArticleInfo:
        """Forget one article (its id, or a unique start of 6+ characters)."""
        return assistant.delete_articles([article_id])[0]

    @api.post("/articles/reindex", response_model=IngestReport, responses=_ERRORS)
    def reindex(ids: Annotated[list[str] | None, Query(
            description="Article ids (default: all).")] = None) -> IngestReport:
        """Read articles from their files again and embed them anew."""
        return assistant.reindex(ids or None)

    return api


def create_app(settings: Settings | None = None, assistant: Assistant | None = None, *,
               with_chat: bool = False) -> FastAPI:
    """The FastAPI app over ``assistant`` (built from ``settings`` when not given)."""
    assistant = assistant or Assistant(settings)
    settings = assistant.settings
    answerers = answerer_choices(settings)
    assistant.warm_up()  # the local model loads now, not on the first question

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
    install_error_handlers(app)
    guarded = [Depends(key_checker(settings))]

    app.include_router(health_routes(assistant, answerers))
    app.include_router(ask_routes(assistant, answerers), dependencies=guarded)
    app.include_router(ingest_routes(assistant), dependencies=guarded)
    app.include_router(article_routes(assistant), dependencies=guarded)
    app.include_router(openai_router(assistant, answerers), dependencies=guarded)
    app.include_router(responses_router(assistant, model_resolver(answerers)),
                       dependencies=guarded)
    home = CHAT_PATH + "/" if with_chat and mount_chat(app, assistant) else "/docs"

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(home)

    return app
