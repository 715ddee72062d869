"""Filters (sources, a published-date range) as each retriever applies them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.records import Filters

if TYPE_CHECKING:
    from rag.retrieval.lexical import LexicalIndex


def day_number(value: dt.date) -> int:
    """A date as the YYYYMMDD integer stored in each chunk's ``published_day``."""
    return int(value.strftime("%Y%m%d"))


def wanted_sources(sources: list[str]) -> list[str]:
    """The sources asked for; a relative file or folder also as its absolute path.

    Files are stored under absolute paths, and citations show them relative to the working
    directory, so either form filters.
    """
    out = list(dict.fromkeys(sources))
    for source in sources:
        if "://" not in source:
            absolute = str(Path(source).resolve())
            if absolute not in out:
                out.append(absolute)
    return out


def chroma_where(filters: Filters | None) -> dict[str, Any] | None:
    """The Chroma ``where`` clause for ``filters``."""
    if filters is None or filters.is_empty():
        return None
    clauses: list[dict[str, Any]] = []
    if filters.sources:
        sources = wanted_sources(filters.sources)
        clauses.append({"$or": [{"source": {"$in": sources}}, {"site": {"$in": sources}}]})
    if filters.published_from:
        clauses.append({"published_day": {"$gte": day_number(filters.published_from)}})
    if filters.published_to:
        clauses.append({"published_day": {"$lte": day_number(filters.published_to)}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def lexical_mask(index: LexicalIndex, filters: Filters | None) -> np.ndarray | None:
    """The same filter as ``chroma_where``, as a boolean mask over the BM25 rows."""
    if filters is None or filters.is_empty():
        return None
    mask = np.ones(len(index), dtype=bool)
    if filters.sources:
        wanted = set(wanted_sources(filters.sources))
        mask &= np.array([m.get("source") in wanted or m.get("site") in wanted
                          for m in index.metas], dtype=bool)
    if filters.published_from:
        mask &= index.published >= day_number(filters.published_from)
    if filters.published_to:
        mask &= (index.published <= day_number(filters.published_to)) & (index.published >= 0)
    return mask
