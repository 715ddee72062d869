"""An OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` over the same Assistant.

The last user message is the question and the earlier user/assistant messages are the history;
system and developer messages are ignored (the assistant answers only from the articles). The
answer's citations travel in a top-level ``citations`` list, on the completion and on the last
streamed chunk, as well as in the ``[n]`` markers of the content.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from rag.api.errors import CRASHED, ApiError, openai_error, rag_status
from rag.api.schemas import ErrorBody
from rag.assistant import Assistant
from rag.errors import RagError
from rag.records import Answer, Citation, Filters, Strict

log = logging.getLogger(__name__)
OWNER = "newsrag"


# -- requests ----------------------------------------------------------------------------------
class TextPart(Strict):
    """A text part of a message's content (other part types are not supported)."""

    type: Literal["text"]
    text: str


class ChatMessage(Strict):
    """One OpenAI chat message; only text content is understood."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    refusal: str | None = Field(default=None, description="Accepted and ignored.")
    annotations: list[Any] | None = Field(default=None, description="Accepted and ignored.")

    def text(self) -> str:
        """The message's text, parts joined by newlines."""
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(Strict):
    """OpenAI's stream options (accepted; usage is not reported)."""

    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatCompletionRequest(Strict):
    """OpenAI's chat request; sampling knobs are accepted and ignored, unknown fields are errors.

    ``filters`` and ``top_k`` are this server's extensions (pass them with ``extra_body``).
    """

    model: str = Field(description="An id from GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice is made.")
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    logprobs: Literal[False] | None = Field(default=None, description="Not supported.")
    parallel_tool_calls: bool | None = None
    filters: Filters | None = Field(default=None, description="Extension: restrict retrieval.")
    top_k: int | None = Field(default=None, ge=1, le=20, description="Extension: passages.")


# -- responses ---------------------------------------------------------------------------------
class AssistantMessage(BaseModel):
    """The reply message."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """The one choice of a completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    """OpenAI's chat.completion, plus ``citations`` and ``refused``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    citations: list[Citation] = Field(description="The sources of the [n] markers.")
    refused: bool = Field(description="True when the articles do not answer the question.")


class Delta(BaseModel):
    """A piece of the streamed reply."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """The one choice of a streamed chunk."""

    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """OpenAI's chat.completion.chunk; the last one carries ``citations`` and ``refused``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    citations: list[Citation] | None = None
    refused: bool | None = None
    final_text: str | None = Field(default=None, description=(
        "On the last chunk: the checked answer text, equal to the joined deltas unless the "
        "answerer's citation check rewrote it."))


class ModelCard(BaseModel):
    """One model: an answerer of this server."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = OWNER


class ModelList(BaseModel):
    """The answerers a request may name as its model."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- the mapping -------------------------------------------------------------------------------
def split_messages(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The question (the last message, from the user) and the user/assistant turns before it.

    The turns stay plain dicts so the Assistant validates them like any other front end's.
    """
    last = messages[-1]
    if last.role != "user" or not last.text().strip():
        raise ApiError(422, "The last message must be the user's question.")
    history = [{"role": m.role, "content": m.text()} for m in messages[:-1]
               if m.role in ("user", "assistant") and m.text().strip()]
    return last.text(), history


def _chunk(cid: str, created: int, model: str, delta: Delta, finish: Literal["stop"] | None = None,
           **extra: Any) -> ServerSentEvent:
    chunk = ChatCompletionChunk(id=cid, created=created, model=model,
                                choices=[ChunkChoice(delta=delta, finish_reason=finish)], **extra)
    data = chunk.model_dump(mode="json")
    for key in ("citations", "refused", "final_text"):  # extensions: only on the last chunk
        if data[key] is None:
            del data[key]
    return ServerSentEvent(data=json.dumps(data))


def stream_chunks(first: str | Answer, rest: Iterator[str | Answer], model: str
                  ) -> Iterator[ServerSentEvent]:
    """OpenAI chunks: the role, text deltas, a last chunk with citations, then [DONE]."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    yield _chunk(cid, created, model, Delta(role="assistant", content=""))
    try:
        for item in _chain(first, rest):
            if isinstance(item, Answer):
                yield _chunk(cid, created, model, Delta(), finish="stop",
                             citations=item.citations, refused=item.refused,
                             final_text=item.text)
            elif item:
                yield _chunk(cid, created, model, Delta(content=item))
    except RagError as exc:
        yield ServerSentEvent(data=json.dumps(openai_error(rag_status(exc), str(exc))))
    except Exception:
        log.exception("chat completion stream failed")
        yield ServerSentEvent(data=json.dumps(openai_error(500, CRASHED)))
    yield ServerSentEvent(data="[DONE]")


def _chain(first: str | Answer, rest: Iterator[str | Answer]) -> Iterator[str | Answer]:
    yield first
    yield from rest


DEFAULT_MODEL_ID = "default"  # the server's configured answerer, whatever it is


def router(assistant: Assistant, answerers: Sequence[str]) -> APIRouter:
    """The /v1 routes; ``answerers`` are the model ids a request may name."""
    api = APIRouter(prefix="/v1", tags=["openai"],
                    responses={status: {"model": ErrorBody, "description": text} for status, text
                               in {401: "Missing or wrong API key.",
                                   404: "Unknown model.", 422: "The request is not valid.",
                                   503: "The store or a model is unavailable."}.items()})
    started = int(time.time())

    models_listed = [DEFAULT_MODEL_ID, *answerers]

    def answerer_for(model: str) -> str | None:
        """The answerer a model id names; None (the server's default) for 'default'."""
        if model == DEFAULT_MODEL_ID:
            return None
        if model not in answerers:
            raise ApiError(404, f"The model '{model[:60]}' does not exist here; choose one of: "
                                f"{', '.join(models_listed)}.", code="model_not_found")
        return model

    @api.get("/models", response_model=ModelList)
    async def models() -> ModelList:
        """The answerers, as OpenAI models."""
        return ModelList(data=[ModelCard(id=name, created=started) for name in models_listed])

    @api.post("/chat/completions", response_model=ChatCompletion,
              responses={200: {"content": {"text/event-stream": {"schema": {
                  "type": "string", "description": "chat.completion.chunk events, then [DONE]"}}},
                  "description": "A completion, or with stream=true a stream of chunks."}})
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        """Answer the last user message from the articles, OpenAI style, with citations."""
        answerer = answerer_for(body.model)
        question, history = split_messages(body.messages)
        if body.stream:
            events = assistant.ask_stream(question, history, body.filters, top_k=body.top_k,
                                          answerer=answerer)
            first = await run_in_threadpool(next, events)  # bad input is still a plain 4xx
            return EventSourceResponse(stream_chunks(first, events, body.model))
        answer = await run_in_threadpool(assistant.ask, question, history, body.filters,
                                         top_k=body.top_k, answerer=answerer)
        return ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body.model,
            choices=[Choice(message=AssistantMessage(content=answer.text))],
            citations=answer.citations, refused=answer.refused)

    return api
