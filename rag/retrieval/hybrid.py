"""Hybrid retrieval: dense (Chroma) and BM25, fused by reciprocal rank, diverse across articles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.embeddings import Embedder
from rag.records import Filters, Passage
from rag.retrieval.base import diverse, passage_from
from rag.retrieval.filters import chroma_where, lexical_mask
from rag.retrieval.lexical import LexicalCache, LexicalIndex
from rag.retrieval.syndication import groups_of, one_per_group
from rag.settings import Settings
from rag.store import Store


class HybridRetriever:
    """Dense + BM25 candidates, reciprocal-rank fused, at most a few chunks per article.

    Article-level BM25 is fused in too: each chunk gains its article's rank by BM25 over the
    whole article, so an article whose names and figures are spread over its chunks is found.
    """

    def __init__(self, store: Store, embedder: Embedder, settings: Settings,
                 lexical: LexicalCache | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
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
        mask = lexical_mask(index, filters)
        lexical = index.search(query, n, mask)

        fused: dict[str, float] = {}
        rrf = self.settings.rrf_k
        for rank, cid in enumerate(dense_ids):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (rrf + rank + 1)
        for rank, hit in enumerate(lexical):
            cid = index.ids[hit.row]
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (rrf + rank + 1)

        records = self._records(index, list(fused))
        self._add_article_scores(fused, records, index, query, n, mask)

        ranked = sorted(fused, key=lambda cid: -fused[cid])
        # At most max_chunks_per_article from one article while other articles are left.
        live = [cid for cid in ranked if cid in records]  # deleted since the dense query: skip
        article_of = {cid: str(records[cid][1].get("article_id", "")) for cid in live}
        # Syndicated copies of one story: one member's chunks stand for the whole group.
        groups = groups_of(index)
        live = one_per_group(live, article_of, groups)
        picked = diverse(live, k, self.settings.max_chunks_per_article, article_of.__getitem__)
        chosen = [passage_from(cid, *records[cid], fused[cid], dense_sims.get(cid))
                  for cid in picked]
        for passage in chosen:
            passage.also_published_by = sorted(
                {m.outlet for m in groups.others(passage.article_id)} - {""})
        self._fill_dense_scores(chosen, vector)
        return chosen

    def _add_article_scores(self, fused: dict[str, float],
                            records: dict[str, tuple[str, dict[str, Any]]], index: LexicalIndex,
                            query: str, n: int, mask: np.ndarray | None) -> None:
        """Each candidate chunk gains its article's rank by BM25 over the whole article."""
        weight = self.settings.article_weight
        if not weight:
            return
        ranks = {aid: rank for rank, (aid, _) in enumerate(
            index.search_articles(query, n, mask))}
        for cid in fused:
            meta = records.get(cid, ("", {}))[1]
            rank = ranks.get(str(meta.get("article_id", "")))
            if rank is not None:
                fused[cid] += weight / (self.settings.rrf_k + rank + 1)

    def _dense_ids(self, vector: np.ndarray, n: int,
                   filters: Filters | None) -> tuple[list[str], dict[str, float]]:
        """Ids of the ``n`` nearest chunks and their cosine similarities (no documents read)."""
        found = self.store.nearest(vector, n, chroma_where(filters))
        return [chunk.id for chunk, _ in found], {chunk.id: sim for chunk, sim in found}

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
        for cid, chunk in self.store.records(missing).items():
            out[cid] = (chunk.text, chunk.metadata)
        return out

    def _fill_dense_scores(self, passages: Sequence[Passage], vector: np.ndarray) -> None:
        """Lexical-only hits get their cosine similarity from their stored vectors."""
        missing = [p for p in passages if p.dense_score is None]
        if not missing:
            return
        vectors = self.store.vectors([p.chunk_id for p in missing])
        for passage in missing:
            stored = vectors.get(passage.chunk_id)
            passage.dense_score = float(np.dot(stored, vector)) if stored is not None else 0.0
