"""The request and response bodies of the API's own routes (the OpenAI ones have theirs)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, Field

from rag.records import MAX_QUESTION_CHARS, Filters, Strict, Turn


class AskRequest(Strict):
    """A question, with the conversation so far and optional retrieval filters."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS,
                          examples=["What did Putin offer instead of the Czech radar?"])
    history: list[Turn] = Field(default_factory=list, max_length=50,
                                description="Earlier turns, oldest first, for follow-ups.")
    filters: Filters | None = None
    top_k: int | None = Field(default=None, ge=1, le=20, description="Passages to answer from.")
    answerer: str | None = Field(
        default=None, validation_alias=AliasChoices("answerer", "generator"),
        description="An answerer listed by GET /health; default: the server's configured one. "
                    "(The older name 'generator' is accepted too.)")


class UrlIngestRequest(Strict):
    """Articles to fetch by URL: pages, feeds or files, as ``rag ingest URL`` takes them."""

    urls: list[str] = Field(min_length=1, max_length=100, description=(
        "http(s) URLs of article pages, feeds or article files; the server fetches each."))


class ErrorBody(BaseModel):
    """What every error response carries: one plain sentence."""

    detail: str


class Health(BaseModel):
    """Whether the store answers, and how much is indexed."""

    status: Literal["ok", "unavailable"]
    articles: int | None = None
    chunks: int | None = None
    store: Literal["embedded", "http"]
    answerer: str = Field(description="The default answerer.")
    answerers: list[str] = Field(description="Answerers a request may choose.")
    ready: bool = Field(default=True, description=(
        "Whether the default answerer is loaded; until then a question waits for it."))
    detail: str | None = None
