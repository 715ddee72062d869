"""Dense retrieval alone: Chroma's nearest neighbours, the naive baseline and half the hybrid."""

from __future__ import annotations

from rag.embeddings import Embedder
from rag.records import Filters, Passage
from rag.retrieval.base import passage_from
from rag.retrieval.filters import chroma_where
from rag.store import Store


class DenseRetriever:
    """The chunks nearest to the query's embedding, scored by cosine similarity."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> list[Passage]:
        """The ``k`` nearest chunks to the query."""
        vector = self.embedder.embed([query])[0]
        return [passage_from(chunk.id, chunk.text, chunk.metadata, sim, sim) for chunk, sim in
                self.store.nearest(vector, k, chroma_where(filters), records=True)]
