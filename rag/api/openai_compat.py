"""An OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` over the same Assistant.

The last user message is the question and the earlier user/assistant messages are the history;
system and developer messages are ignored (the assistant answers only from the articles). The
answer's citations travel in a top-level ``citations`` list and in the message's ``annotations``
(OpenAI's ``url_citation`` shape, one per ``[n]`` marker, with ``number`` and ``quote`` added),
on the completion and on the last streamed chunk, as well as in the ``[n]`` markers of the
content. With ``footnotes: true`` the sources are also appended to the text, for clients that
show only text. ``usage`` counts words and punctuation marks, not a model's tokens.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from rag.api.errors import CRASHED, ApiError, openai_error, rag_status
from rag.api.schemas import ErrorBody
from rag.api.streaming import stopping_on_disconnect
from rag.assistant import Assistant
from rag.errors import RagError
from rag.records import Answer, Citation, Filters, Preview, Strict

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
    """OpenAI's stream options (accepted; the last chunk always carries usage)."""

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
    footnotes: bool = Field(default=False, description=(
        "Extension: append the sources to the text as footnotes, for clients that show only "
        "the text."))


# -- responses ---------------------------------------------------------------------------------
class UrlCitation(BaseModel):
    """Where a cited span of the reply comes from: the article's URL (or file) and headline."""

    url: str
    title: str
    start_index: int = Field(description="Start of the [n] marker in the content.")
    end_index: int
    number: int = Field(description="Extension: the n of the [n] marker.")
    quote: str = Field(description="Extension: the cited sentence(s) of the article.")
    published: str | None = Field(default=None, description="Extension: YYYY-MM-DD.")


class Annotation(BaseModel):
    """OpenAI's message annotation."""

    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitation


class AssistantMessage(BaseModel):
    """The reply message."""

    role: Literal["assistant"] = "assistant"
    content: str
    annotations: list[Annotation] = Field(default_factory=list)
    refusal: None = None


class Usage(BaseModel):
    """Sizes of the request and the reply, counted as words and punctuation marks."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


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
    usage: Usage
    citations: list[Citation] = Field(description="The sources of the [n] markers.")
    refused: bool = Field(description="True when the articles do not answer the question.")


class Delta(BaseModel):
    """A piece of the streamed reply."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    annotations: list[Annotation] | None = None


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
    usage: Usage | None = None
    preview: Preview | None = Field(default=None, description=(
        "Extension, on a chunk of its own before the text: the sentences the articles answer "
        "with, quoted, while a language model writes (no content delta)."))
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


_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Words and punctuation marks: a model-independent size for ``usage``."""
    return len(_TOKEN.findall(text))


def usage_of(question: str, history: Sequence[dict[str, str]], answer: Answer,
             text: str) -> Usage:
    """The request's size (question, history and the passages read) and the reply's."""
    read = {c.chunk_id: c.passage for c in answer.citations}
    prompt = count_tokens(question) + sum(count_tokens(t["content"]) for t in history) + \
        sum(count_tokens(p) for p in read.values())
    completion = count_tokens(text)
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion)


def footnote_text(answer: Answer) -> str:
    """The sources as text: a blank line, then one line per [n]."""
    if not answer.citations:
        return ""
    lines = []
    for cite in answer.citations:
        date = f", {cite.published.isoformat()}" if cite.published else ""
        copies = f"; {cite.also_published()}" if cite.also_published_by else ""
        lines.append(f"[{cite.number}] {cite.headline} ({cite.source}{date}{copies}): "
                     f"“{cite.quote}”")
    return "\n\nSources:\n" + "\n".join(lines)


def citation_annotations(answer: Answer, text: str) -> list[Annotation]:
    """One url_citation per [n] marker in ``text``, pointing at the marker's span."""
    by_number = {c.number: c for c in answer.citations}
    out: list[Annotation] = []
    for match in re.finditer(r"\[(\d+)\]", text):
        cite = by_number.get(int(match.group(1)))
        if cite is None:
            continue
        out.append(Annotation(url_citation=UrlCitation(
            url=cite.source, title=cite.headline, start_index=match.start(),
            end_index=match.end(), number=cite.number, quote=cite.quote,
            published=cite.published.isoformat() if cite.published else None)))
    return out


def _chunk(cid: str, created: int, model: str, delta: Delta, finish: Literal["stop"] | None = None,
           **extra: Any) -> ServerSentEvent:
    chunk = ChatCompletionChunk(id=cid, created=created, model=model,
                                choices=[ChunkChoice(delta=delta, finish_reason=finish)], **extra)
    data = chunk.model_dump(mode="json")
    for key in ("citations", "refused", "final_text", "usage", "preview"):  # not on every chunk
        if data[key] is None:
            del data[key]
    if data["choices"] and data["choices"][0]["delta"].get("annotations") is None:
        data["choices"][0]["delta"].pop("annotations", None)
    return ServerSentEvent(data=json.dumps(data))


def stream_chunks(first: str | Preview | Answer, rest: Iterator[str | Preview | Answer],
                  model: str, *,
                  question: str = "", history: Sequence[dict[str, str]] = (),
                  with_footnotes: bool = False) -> Iterator[ServerSentEvent]:
    """OpenAI chunks: the role, text deltas, a last chunk with citations, then [DONE]."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    yield _chunk(cid, created, model, Delta(role="assistant", content=""))
    try:
        for item in chain(first, rest):
            if isinstance(item, Answer):
                notes = footnote_text(item) if with_footnotes else ""
                text = item.text + notes
                marks = citation_annotations(item, text)
                yield _chunk(cid, created, model, Delta(content=notes or None, annotations=marks),
                             finish="stop", citations=item.citations, refused=item.refused,
                             final_text=text, usage=usage_of(question, history, item, text))
            elif isinstance(item, Preview):
                yield _chunk(cid, created, model, Delta(), preview=item)
            elif item:
                yield _chunk(cid, created, model, Delta(content=item))
    except RagError as exc:
        yield ServerSentEvent(data=json.dumps(openai_error(rag_status(exc), str(exc))))
    except Exception:
        log.exception("chat completion stream failed")
        yield ServerSentEvent(data=json.dumps(openai_error(500, CRASHED)))
    yield ServerSentEvent(data="[DONE]")


def chain(first: str | Preview | Answer,
          rest: Iterator[str | Preview | Answer]) -> Iterator[str | Preview | Answer]:
    """The first event of a stream (read early, to fail plainly on bad input), then the rest."""
    yield first
    yield from rest


DEFAULT_MODEL_ID = "default"  # the server's configured answerer, whatever it is


def model_resolver(answerers: Sequence[str]) -> Callable[[str], str | None]:
    """Model id -> answerer: None (the server's default) for 'default'; 404 when unknown."""
    listed = [DEFAULT_MODEL_ID, *answerers]

    def answerer_for(model: str) -> str | None:
        if model == DEFAULT_MODEL_ID:
            return None
        if model not in answerers:
            raise ApiError(404, f"The model '{model[:60]}' does not exist here; choose one of: "
                                f"{', '.join(listed)}.", code="model_not_found")
        return model

    return answerer_for


def router(assistant: Assistant, answerers: Sequence[str]) -> APIRouter:
    """The /v1 routes; ``answerers`` are the model ids a request may name."""
    api = APIRouter(prefix="/v1", tags=["openai"],
                    responses={status: {"model": ErrorBody, "description": text} for status, text
                               in {401: "Missing or wrong API key.",
                                   404: "Unknown model.", 422: "The request is not valid.",
                                   503: "The store or a model is unavailable."}.items()})
    started = int(time.time())
    models_listed = [DEFAULT_MODEL_ID, *answerers]
    answerer_for = model_resolver(answerers)

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
            stop = threading.Event()
            events = assistant.ask_stream(question, history, body.filters, top_k=body.top_k,
                                          answerer=answerer, stop=stop)
            first = await run_in_threadpool(next, events)  # bad input is still a plain 4xx
            return stopping_on_disconnect(stream_chunks(
                first, events, body.model, question=question, history=history,
                with_footnotes=body.footnotes), stop)
        answer = await run_in_threadpool(assistant.ask, question, history, body.filters,
                                         top_k=body.top_k, answerer=answerer)
        text = answer.text + (footnote_text(answer) if body.footnotes else "")
        return ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body.model,
            choices=[Choice(message=AssistantMessage(
                content=text, annotations=citation_annotations(answer, text)))],
            usage=usage_of(question, history, answer, text),
            citations=answer.citations, refused=answer.refused)

    return api
