"""The retriever seam, and turning a stored chunk into the Passage that answerers read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from rag.records import Filters, Passage

T = TypeVar("T")


def diverse(ranked: Sequence[T], k: int, cap: int, article_of: Callable[[T], str]) -> list[T]:
    """The best ``k`` of ``ranked``, at most ``cap`` from one article while others are left.

    When the other articles run out (a small index, or one long article), the best-ranked of
    the items held back fill the ``k`` places rather than leaving them empty. Rank order is kept.
    """
    first: list[int] = []
    per_article: dict[str, int] = {}
    for i, item in enumerate(ranked):
        article = article_of(item)
        if per_article.get(article, 0) < cap:
            per_article[article] = per_article.get(article, 0) + 1
            first.append(i)
    picked = set(first[:k])
    picked |= set([i for i in range(len(ranked)) if i not in picked][: k - len(picked)])
    return [item for i, item in enumerate(ranked) if i in picked]


class Retriever(Protocol):
    """Finds the passages most likely to answer a question."""

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> list[Passage]:
        """The best ``k`` passages for ``query`` under ``filters``."""
        ...


def passage_from(chunk_id: str, text: str, meta: dict[str, Any], score: float = 0.0,
                 dense: float | None = None) -> Passage:
    """A Passage from a stored chunk."""
    published = meta.get("published")
    return Passage(
        chunk_id=chunk_id, article_id=str(meta.get("article_id", "")),
        headline=str(meta.get("headline", "")), source=str(meta.get("source", "")),
        published=dt.date.fromisoformat(str(published)) if published else None,
        text=text, start=int(meta.get("start", 0)), end=int(meta.get("end", len(text))),
        score=score, dense_score=dense,
    )
