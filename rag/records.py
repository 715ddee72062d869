"""The typed records that cross the public API: questions in, answers with citations out."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_QUESTION_CHARS = 2000


class Strict(BaseModel):
    """Base for anything parsed from outside: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class Turn(Strict):
    """One message of a conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class Filters(Strict):
    """Restricts retrieval to some sources and/or a published-date range (inclusive)."""

    sources: list[str] | None = Field(
        default=None, description="Match a chunk's source (path or URL) or its site/folder."
    )
    published_from: dt.date | None = None
    published_to: dt.date | None = None
    today: dt.date | None = Field(default=None, description=(
        "The date 'today', 'this week', 'last month' or 'in March' in the question are taken "
        "from (default: the real today)."))

    @field_validator("sources")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        return [s for s in value if s.strip()] or None if value is not None else None

    def is_empty(self) -> bool:
        """True when nothing is filtered (``today`` alone filters nothing)."""
        return not self.sources and self.published_from is None and self.published_to is None


class Passage(BaseModel):
    """A retrieved chunk of an article, with where it sits in that article."""

    chunk_id: str
    article_id: str
    headline: str
    source: str
    published: dt.date | None = None
    text: str
    start: int = Field(description="Character offset of the chunk in the article text.")
    end: int
    score: float = 0.0
    dense_score: float | None = Field(default=None, description="Cosine similarity to the query.")
    also_published_by: list[str] = Field(default_factory=list, description=(
        "Other outlets that published a near-identical copy of this article (syndication)."))


class Citation(BaseModel):
    """A numbered source of an answer: the passage, and the exact quoted text within it."""

    number: int = Field(description="The n of the [n] marker in the answer text.")
    chunk_id: str
    article_id: str
    headline: str
    source: str
    published: dt.date | None = None
    passage: str = Field(description="The whole retrieved passage.")
    quote: str = Field(description="The cited sentence(s); always a substring of the passage.")
    quote_start: int = Field(description="Offset of the quote in the passage.")
    start: int = Field(description="Offset of the passage in the article text.")
    end: int
    score: float
    also_published_by: list[str] = Field(default_factory=list, description=(
        "Other outlets that published a near-identical copy of the article."))

    def also_published(self) -> str:
        """'also published by A and B', or '' when no copy is known."""
        names = self.also_published_by
        if not names:
            return ""
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"also published by {listed}"


class Stage(BaseModel):
    """Where an answer is, for a page that shows it: searching, reading passages, writing.

    ``Assistant.ask_with_stages`` yields one when a stage begins: "searching" (the question
    rewritten if it follows up, then retrieval), "reading" (a language model reads
    ``passages`` passages before its first word), "writing" (its first word came; the answer is
    checked when it is done). An extractive answer has only "searching": it takes milliseconds.
    """

    name: Literal["searching", "reading", "writing"]
    passages: int = 0


class Preview(BaseModel):
    """Sent before a language model's answer: the sentences the articles answer with, quoted.

    It is the extractive answer to the same question over the same passages (checked like any
    answer), so a reader has something true to read while the model writes; the ``Answer``
    that follows replaces it. When no sentence answers outright, ``text`` is empty and the
    citations are what the model is reading: the best sentence of each of the best passages.
    """

    text: str
    citations: list[Citation] = Field(default_factory=list)


class Answer(BaseModel):
    """What the assistant says: text with [n] markers, its citations, and how it got there."""

    question: str
    standalone_question: str = Field(description="The question actually searched.")
    text: str
    citations: list[Citation] = Field(default_factory=list)
    refused: bool = False
    stopped: bool = Field(default=False, description=(
        "The caller stopped the model before it finished; the text says so."))
    answerer: str = Field(default="extractive", description="The answerer that wrote it.")
    supported_sentences: int = 0
    total_sentences: int = 0
    as_of: dt.date | None = Field(default=None, description=(
        "The published date of the newest article the answer cites (news develops)."))
    timings_ms: dict[str, float] = Field(default_factory=dict)


class ArticleInfo(BaseModel):
    """One indexed article, as a listing shows it."""

    article_id: str
    headline: str
    source: str = Field(description="What its citations show: a URL, or a relative path.")
    published: dt.date | None = None
    chunks: int = Field(description="How many passages it was cut into.")
    files: list[str] = Field(default_factory=list, description=(
        "Every file (or URL, or record in a file) it was read from, as citations show them."))


class IngestReport(BaseModel):
    """Counts of one ingest run and the reason for every skipped file."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    chunks_added: int = 0
    reembedded: int = 0  # stored chunks embedded again because the embedder changed
    skipped_reasons: dict[str, str] = Field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        return (
            f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
            f"removed {self.removed}, skipped {self.skipped} ({self.chunks_added} "
            f"chunk{'' if self.chunks_added == 1 else 's'} embedded)"
            + (f"; {self.reembedded} stored chunks embedded again for the new encoder"
               if self.reembedded else "")
        )
