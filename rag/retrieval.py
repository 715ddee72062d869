"""Hybrid retrieval: dense (Chroma) and BM25, fused by reciprocal rank, diverse across articles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from rag.embeddings import Embedder
from rag.lexical import LexicalCache, LexicalIndex
from rag.models import Filters, Passage
from rag.settings import Settings
from rag.store import Store


class Retriever(Protocol):
    """Finds the passages most likely to answer a question."""

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> list[Passage]:
        """The best ``k`` passages for ``query`` under ``filters``."""
        ...


def _day(value: dt.date) -> int:
    return int(value.strftime("%Y%m%d"))


def chroma_where(filters: Filters | None) -> dict[str, Any] | None:
    """The Chroma ``where`` clause for ``filters``."""
    if filters is None or filters.is_empty():
        return None
    clauses: list[dict[str, Any]] = []
    if filters.sources:
        clauses.append({"$or": [{"source": {"$in": filters.sources}},
                                {"site": {"$in": filters.sources}}]})
    if filters.published_from:
        clauses.append({"published_day": {"$gte": _day(filters.published_from)}})
    if filters.published_to:
        clauses.append({"published_day": {"$lte": _day(filters.published_to)}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def lexical_mask(index: LexicalIndex, filters: Filters | None) -> np.ndarray | None:
    """The same filter as ``chroma_where``, as a boolean mask over the BM25 rows."""
    if filters is None or filters.is_empty():
        return None
    mask = np.ones(len(index), dtype=bool)
    if filters.sources:
        wanted = set(filters.sources)
        mask &= np.array([m.get("source") in wanted or m.get("site") in wanted
                          for m in index.metas], dtype=bool)
    if filters.published_from:
        mask &= index.published >= _day(filters.published_from)
    if filters.published_to:
        mask &= (index.published <= _day(filters.published_to)) & (index.published >= 0)
    return mask


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


class DenseRetriever:
    """Chroma's nearest neighbours alone: the naive baseline, and one half of the hybrid."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def nearest(self, vector: np.ndarray, n: int, filters: Filters | None,
                include: list[Any]) -> Any:
        """Chroma's answer for the ``n`` nearest chunks (ids, distances, ``include``), or None."""
        count = self.store.chunks.count()
        if count == 0:
            return None
        return self.store.chunks.query(query_embeddings=[vector], n_results=min(n, count),
                                       where=chroma_where(filters), include=include)

    def search(self, vector: np.ndarray, n: int, filters: Filters | None) -> list[Passage]:
        """Up to ``n`` nearest chunks, scored by cosine similarity."""
        got = self.nearest(vector, n, filters, ["documents", "metadatas", "distances"])
        if got is None:
            return []
        out = []
        for cid, doc, meta, dist in zip(got["ids"][0], (got["documents"] or [[]])[0],
                                        (got["metadatas"] or [[]])[0],
                                        (got["distances"] or [[]])[0], strict=True):
            sim = 1.0 - float(dist)
            out.append(passage_from(cid, doc or "", dict(meta or {}), sim, sim))
        return out

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> list[Passage]:
        """The ``k`` nearest chunks to the query."""
        return self.search(self.embedder.embed([query])[0], k, filters)


class HybridRetriever:
    """Dense + BM25 candidates, reciprocal-rank fused, at most a few chunks per article."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings,
                 lexical: LexicalCache | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.dense = DenseRetriever(store, embedder)
        self.lexical = lexical or LexicalCache(store)

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> list[Passage]:
        """Fuse both rankings; every returned passage carries its cosine similarity.

        Candidates are ranked by id alone; text and metadata come from the BM25 index, which
        holds every chunk in memory, so only the ``k`` chosen passages are ever built (and
        only chunks newer than the index are read back from Chroma).
        """
        vector = self.embedder.embed([query])[0]
        n = max(self.settings.candidates, k)
        index = self.lexical.get()
        dense_ids, dense_sims = self._dense_ids(vector, n, filters)
        lexical = index.search(query, n, lexical_mask(index, filters))

        fused: dict[str, float] = {}
        rrf = self.settings.rrf_k
        for rank, cid in enumerate(dense_ids):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (rrf + rank + 1)
        for rank, hit in enumerate(lexical):
            cid = index.ids[hit.row]
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (rrf + rank + 1)

        ranked = sorted(fused, key=lambda cid: -fused[cid])
        records = self._records(index, ranked)
        # At most max_chunks_per_article from one article while other articles are left; when
        # they run out (a small index, or one long article), the best-ranked of the chunks held
        # back fill the k places rather than leaving them empty.
        live = [cid for cid in ranked if cid in records]  # deleted since the dense query: skip
        first: list[str] = []
        per_article: dict[str, int] = {}
        for cid in live:
            article = str(records[cid][1].get("article_id", ""))
            if per_article.get(article, 0) < self.settings.max_chunks_per_article:
                per_article[article] = per_article.get(article, 0) + 1
                first.append(cid)
        picked = set(first[:k])
        picked |= set([cid for cid in live if cid not in picked][: k - len(picked)])
        chosen = [passage_from(cid, *records[cid], fused[cid], dense_sims.get(cid))
                  for cid in live if cid in picked]
        self._fill_dense_scores(chosen, vector)
        return chosen

    def _dense_ids(self, vector: np.ndarray, n: int,
                   filters: Filters | None) -> tuple[list[str], dict[str, float]]:
        """Ids of the ``n`` nearest chunks and their cosine similarities (no documents read)."""
        got = self.dense.nearest(vector, n, filters, ["distances"])
        if got is None:
            return [], {}
        ids = list(got["ids"][0])
        sims = {cid: 1.0 - float(d) for cid, d in zip(ids, (got["distances"] or [[]])[0],
                                                      strict=True)}
        return ids, sims

    def _records(self, index: LexicalIndex,
                 ranked: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Text and metadata of the ranked ids: from the index, else (newer chunks) Chroma."""
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        missing: list[str] = []
        for cid in ranked:
            row = index.row_of.get(cid)
            if row is None:
                missing.append(cid)
            else:
                out[cid] = (index.texts[row], index.metas[row])
        if missing:
            got = self.store.chunks.get(ids=missing, include=["documents", "metadatas"])
            for cid, doc, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [],
                                      strict=True):
                out[cid] = (doc or "", dict(meta or {}))
        return out

    def _fill_dense_scores(self, passages: Sequence[Passage], vector: np.ndarray) -> None:
        """Lexical-only hits get their cosine similarity from their stored vectors."""
        missing = [p for p in passages if p.dense_score is None]
        if not missing:
            return
        got = self.store.chunks.get(ids=[p.chunk_id for p in missing], include=["embeddings"])
        vectors = dict(zip(got["ids"], got["embeddings"], strict=True))
        for passage in missing:
            stored = vectors.get(passage.chunk_id)
            passage.dense_score = float(np.dot(np.asarray(stored), vector)) if stored is not None \
                else 0.0
