"""The retriever seam, and turning a stored chunk into the Passage that answerers read."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from rag.records import Filters, Passage


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
