"""OpenAI's Responses API (``POST /v1/responses``) over the same Assistant.

Clients that read citations only from the Responses API (LangChain's ``ChatOpenAI`` with
``use_responses_api=True`` keeps its ``output_text`` annotations as structured data; its Chat
Completions path drops them) get each ``[n]`` marker as a ``url_citation`` annotation with the
article's URL (or file), headline, quote and date. ``input`` is a string or a list of messages:
the last user message is the question, the earlier user/assistant messages are the history;
instructions and system messages are ignored (the assistant answers only from the articles).
Streaming sends OpenAI's event sequence; the text deltas join to exactly the final text.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from rag.api.errors import CRASHED, ApiError, rag_status
from rag.api.openai_compat import chain, citation_annotations, footnote_text, usage_of
from rag.api.streaming import stopping_on_disconnect
from rag.assistant import Assistant
from rag.errors import RagError
from rag.records import Answer, Filters, Preview

log = logging.getLogger(__name__)


class ResponsesRequest(BaseModel):
    """The Responses API request; settings the assistant has no use for are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="An id from GET /v1/models.")
    input: str | list[dict[str, Any]] = Field(description="The question, or the conversation.")
    stream: bool = False
    filters: Filters | None = Field(default=None, description="Extension: restrict retrieval.")
    top_k: int | None = Field(default=None, ge=1, le=20, description="Extension: passages.")
    footnotes: bool = Field(default=False, description="Extension: sources appended as text.")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content
                         if isinstance(part, dict) and part.get("type") in
                         ("input_text", "output_text", "text"))
    return ""


def split_input(value: str | list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """The question (the last user message) and the user/assistant turns before it."""
    if isinstance(value, str):
        turns = [{"role": "user", "content": value}]
    else:
        turns = [{"role": str(item.get("role")), "content": _text_of(item.get("content"))}
                 for item in value if item.get("type", "message") == "message"]
    if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise ApiError(422, "The last input must be the user's question.")
    history = [t for t in turns[:-1] if t["role"] in ("user", "assistant") and t["content"]]
    return turns[-1]["content"], history


def annotations_of(answer: Answer, text: str) -> list[dict[str, Any]]:
    """One url_citation per [n] marker of ``text`` (flat, as the Responses API has them)."""
    return [{"type": "url_citation", **a.url_citation.model_dump(mode="json")}
            for a in citation_annotations(answer, text)]


def _usage(question: str, history: list[dict[str, str]], answer: Answer,
           text: str) -> dict[str, Any]:
    """``usage_of`` (words and punctuation marks) in the Responses API's shape."""
    usage = usage_of(question, history, answer, text)
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0}}


class _Shapes:
    """The JSON shapes of one response: its id, its message's id, and what they hold."""

    def __init__(self, model: str) -> None:
        self.id = f"resp_{uuid.uuid4().hex}"
        self.item = f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def part(self, text: str, annotations: list[dict[str, Any]]) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}

    def message(self, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
        return {"type": "message", "id": self.item, "status": status, "role": "assistant",
                "content": parts}

    def response(self, status: str, output: list[dict[str, Any]],
                 usage: dict[str, Any] | None = None, answer: Answer | None = None
                 ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "model": self.model, "output": output, "usage": usage, "error": None,
            "incomplete_details": None, "instructions": None, "metadata": {},
            "parallel_tool_calls": False, "tool_choice": "none", "tools": [],
            "temperature": None, "top_p": None, "max_output_tokens": None,
            "previous_response_id": None, "store": False, "truncation": "disabled",
            "text": {"format": {"type": "text"}}, "service_tier": "default", "user": None}
        if answer is not None:
            body["citations"] = [c.model_dump(mode="json") for c in answer.citations]
            body["refused"] = answer.refused
        return body


def stream_events(first: str | Preview | Answer, rest: Iterator[str | Preview | Answer],
                  shapes: _Shapes,
                  finish: Callable[[Answer], tuple[str, dict[str, Any]]]
                  ) -> Iterator[ServerSentEvent]:
    """OpenAI's streaming events: created, the text deltas, annotations, done, completed."""
    number = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> ServerSentEvent:
        return ServerSentEvent(event=kind, data=json.dumps(
            {"type": kind, "sequence_number": next(number), **data}))

    where = {"item_id": shapes.item, "output_index": 0, "content_index": 0}
    yield event("response.created", response=shapes.response("in_progress", []))
    yield event("response.output_item.added", output_index=0,
                item=shapes.message([], "in_progress"))
    yield event("response.content_part.added", **where, part=shapes.part("", []))
    shown = ""
    try:
        for item in chain(first, rest):
            if isinstance(item, Answer):
                text, usage = finish(item)
                notes = text[len(shown):]
                if notes:
                    shown = text
                    yield event("response.output_text.delta", **where, delta=notes, logprobs=[])
                marks = annotations_of(item, text)
                for index, mark in enumerate(marks):
                    yield event("response.output_text.annotation.added", **where,
                                annotation_index=index, annotation=mark)
                part = shapes.part(text, marks)
                yield event("response.output_text.done", **where, text=text, logprobs=[])
                yield event("response.content_part.done", **where, part=part)
                done = shapes.message([part], "completed")
                yield event("response.output_item.done", output_index=0, item=done)
                yield event("response.completed", response=shapes.response(
                    "completed", [done], usage, item))
            elif isinstance(item, str) and item:  # a Preview has no place in this protocol
                shown += item
                yield event("response.output_text.delta", **where, delta=item, logprobs=[])
    except RagError as exc:
        yield event("error", code=str(rag_status(exc)), message=str(exc), param=None)
    except Exception:
        log.exception("responses stream failed")
        yield event("error", code="500", message=CRASHED, param=None)


def router(assistant: Assistant, answerer_for: Callable[[str], str | None]) -> APIRouter:
    """POST /v1/responses; ``answerer_for`` maps a model id to an answerer (404 if unknown)."""
    api = APIRouter(prefix="/v1", tags=["openai"])

    @api.post("/responses", responses={200: {"description": (
        "A response object, or with stream=true OpenAI's streaming events.")}})
    async def responses(body: ResponsesRequest) -> Any:
        """Answer the last user input from the articles, with url_citation annotations."""
        answerer = answerer_for(body.model)
        question, history = split_input(body.input)
        shapes = _Shapes(body.model)

        def finish(answer: Answer) -> tuple[str, dict[str, Any]]:
            text = answer.text + (footnote_text(answer) if body.footnotes else "")
            return text, _usage(question, history, answer, text)

        if body.stream:
            stop = threading.Event()
            events = assistant.ask_stream(question, history, body.filters, top_k=body.top_k,
                                          answerer=answerer, stop=stop)
            first = await run_in_threadpool(next, events)  # bad input is still a plain 4xx
            return stopping_on_disconnect(stream_events(first, events, shapes, finish), stop)
        answer = await run_in_threadpool(assistant.ask, question, history, body.filters,
                                         top_k=body.top_k, answerer=answerer)
        text, usage = finish(answer)
        part = shapes.part(text, annotations_of(answer, text))
        return shapes.response("completed", [shapes.message([part], "completed")], usage,
                               answer)

    return api
