"""The answerer seam: what every answerer provides, and the records all of them share.

A leaf of the answering stage: it imports only the public records, so every answerer, the
citation checker and the Assistant can use it without importing one another.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from rag.records import Citation, Passage, Turn

REFUSAL = "The indexed articles don't say. Nothing in them answers: “{question}”"
NOTHING_INDEXED = ("Nothing is indexed yet, so there is nothing to answer from. Add articles "
                   "first: upload them on the page, POST them to /ingest, or run "
                   "`rag ingest PATH`.")


class Draft(BaseModel):
    """An answerer's finished, citation-checked answer (the Assistant adds the question)."""

    text: str
    citations: list[Citation] = Field(default_factory=list)
    refused: bool = False
    supported_sentences: int = 0
    total_sentences: int = 0


class ArticleTexts(Protocol):
    """The whole text of a stored article, by id ("" when there is none)."""

    def __call__(self, article_id: str) -> str:
        """The article's text."""
        ...


class Answerer(Protocol):
    """Writes an answer from passages, streaming text, and finishes with a checked Draft."""

    name: str

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        """Rewrite a follow-up as a standalone question using the conversation."""
        ...

    def stream(self, question: str, passages: Sequence[Passage], *,
               stop: threading.Event | None = None) -> Iterator[str | Draft]:
        """Yield pieces of answer text as they are written, then exactly one Draft.

        A model that writes stops at its next token once ``stop`` is set (``Stopped``).
        """
        ...


def refusal(question: str) -> Draft:
    """The plain answer for a question the articles do not answer."""
    return Draft(text=REFUSAL.format(question=question.strip()), refused=True)


def shown_source(source: str) -> str:
    """What a citation shows as its source: the URL, or a file's path without the server's.

    A file under the working directory is shown relative to it (``seeds/article.txt``), any
    other file by its name, so no answer reveals the server's file system.
    """
    if "://" in source or not source:
        return source
    path = Path(source)
    if not path.is_absolute():
        return source
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name


def citation_for(number: int, passage: Passage, start: int, end: int, score: float) -> Citation:
    """A citation quoting ``passage.text[start:end]``."""
    return Citation(
        number=number, chunk_id=passage.chunk_id, article_id=passage.article_id,
        headline=passage.headline, source=shown_source(passage.source),
        published=passage.published,
        passage=passage.text, quote=passage.text[start:end], quote_start=start,
        start=passage.start, end=passage.end, score=round(score, 4),
        also_published_by=list(passage.also_published_by),
    )


class Quotes:
    """Citation numbers for quoted stretches of passages, in the order they are first cited.

    Touching or overlapping stretches of one passage share a number and one quote; a stretch
    further on in the same passage gets a number of its own, so a quote never spans text
    that was not cited (the page shows both in one card).
    """

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = passages
        self._spans: list[tuple[int, int, int, float]] = []  # passage, start, end, score

    def number(self, index: int, start: int, end: int, score: float) -> int:
        """The citation number for ``passages[index].text[start:end]``."""
        text = self.passages[index].text
        for slot, (at, lo, hi, best) in enumerate(self._spans):
            if at != index:
                continue
            gap = text[hi:start] if start >= hi else text[end:lo] if end <= lo else ""
            if not gap.strip():  # touching or overlapping
                self._spans[slot] = (at, min(lo, start), max(hi, end), max(best, score))
                return slot + 1
        self._spans.append((index, start, end, score))
        return len(self._spans)

    def citations(self) -> list[Citation]:
        """One citation per number, its quote covering what was cited under it."""
        return [citation_for(slot + 1, self.passages[index], start, end, score)
                for slot, (index, start, end, score) in enumerate(self._spans)]
