"""Embed the stored chunks again when the index was built by another embedder.

Vectors from two encoders do not mix: after the default encoder changes, an index built by the
old one would be searched with the new one's query vectors. Chroma keeps every chunk's text, so
the chunks are embedded anew from the store itself (no file is read). The collection names its
embedder only once every chunk has been redone, so a run that stops half-way starts over.
"""

from __future__ import annotations

import logging

from ingest.chunking import embedded_text
from rag.errors import ModelUnavailable
from rag.store import Store

log = logging.getLogger(__name__)


def stale_embedder(store: Store) -> str | None:
    """The name of the embedder the stored vectors came from, when it is not ``store``'s."""
    stored = (store.chunks.metadata or {}).get("embedder")
    if stored and stored != store.embedder.name and store.count():
        return str(stored)
    return None


def reembed(store: Store) -> int:
    """Embed every stored chunk with ``store.embedder`` unless it did already; how many."""
    old = stale_embedder(store)
    if old is None:
        return 0
    sample = store.chunks.get(limit=1, include=["embeddings"])["embeddings"]
    if sample is not None and len(sample) and len(sample[0]) != store.embedder.dimension:
        raise ModelUnavailable(
            f"The index was built with {old} ({len(sample[0])}-number vectors) and "
            f"{store.embedder.name} makes {store.embedder.dimension}: set RAG_EMBEDDING_MODEL "
            "back, or ingest into a new RAG_DATA_DIR.")
    log.warning("the index was built with %s; embedding its %d chunks again with %s",
                old, store.count(), store.embedder.name)
    done = 0
    for page in store.chunk_pages(text=True):
        if not page:
            continue
        texts = [embedded_text(str(c.metadata.get("headline") or ""), c.text) for c in page]
        store.chunks.update(ids=[c.id for c in page], embeddings=store.embedder.embed(texts))
        done += len(page)
    metadata = dict(store.chunks.metadata or {})
    metadata["embedder"] = store.embedder.name
    metadata.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to be told it again
    store.chunks.modify(metadata=metadata)
    return done
