"""Sentence vectors kept between questions: the extractive path's main cost, paid once per text.

Answering scores every sentence of the retrieved passages against the question, and the same
popular passages come back for question after question. ``CachingEmbedder`` keeps the vectors
of the texts it has embedded (bounded, least recently used first out) and embeds only the ones
it has not seen. It wraps only an encoder whose vector for a text does not depend on what the
text is embedded with (``batch_independent``), so an answer never depends on earlier questions.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from rag.embeddings import Embedder


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CachingEmbedder:
    """An Embedder that remembers up to ``max_entries`` vectors by their text's hash."""

    def __init__(self, inner: Embedder, max_entries: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_entries = max(0, max_entries)
        self._vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, as the inner encoder gives it; only unseen texts are embedded."""
        if not texts:
            return self.inner.embed(texts)
        keys = [_key(t) for t in texts]
        out: list[np.ndarray | None] = [None] * len(texts)
        with self._lock:
            for row, key in enumerate(keys):
                vector = self._vectors.get(key)
                if vector is not None:
                    self._vectors.move_to_end(key)
                    out[row] = vector
        missing = [row for row, vector in enumerate(out) if vector is None]
        unique = list(dict.fromkeys(texts[row] for row in missing))
        fresh = dict(zip(unique, self.inner.embed(unique), strict=True)) if unique else {}
        with self._lock:
            self.hits += len(texts) - len(missing)
            self.misses += len(unique)
            for text, vector in fresh.items():
                vector = np.asarray(vector, dtype=np.float32)
                vector.setflags(write=False)
                if self.max_entries:
                    self._vectors[_key(text)] = vector
            while len(self._vectors) > self.max_entries:
                self._vectors.popitem(last=False)
        for row in missing:
            out[row] = fresh[texts[row]]
        return np.stack(out)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._vectors)


def cached(embedder: Embedder, max_entries: int) -> Embedder:
    """``embedder`` with a vector cache when its vectors are batch-independent, else itself."""
    if max_entries <= 0 or not getattr(embedder, "batch_independent", False):
        return embedder
    return CachingEmbedder(embedder, max_entries)
