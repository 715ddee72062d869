"""BM25 over all chunks, kept in step with the store by its generation stamp.

bm25s scores with sparse matrices, not a per-query Python scan; the index is cached on disk.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.text import stem
from rag.store import Store

log = logging.getLogger(__name__)
_CHECK_EVERY_S = 1.0


@dataclass
class LexicalHit:
    """A BM25 match: position in the index and its score."""

    row: int
    score: float


class LexicalIndex:
    """Immutable BM25 indexes of the chunks and of whole articles, with ids and metadata.

    The article index scores each article's full text (headline and all its chunks), so a
    question whose names and figures are spread over a long article still finds it.
    """

    VERSION = 2  # a cached index pickled by another version is rebuilt

    def __init__(self, ids: list[str], texts: list[str], metas: list[dict[str, Any]],
                 generation: str) -> None:
        import bm25s

        # bm25s sets its own logger to DEBUG on import; its notes are not for our users.
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.version = self.VERSION
        self.ids = ids
        self.texts = texts
        self.metas = metas
        self.generation = generation
        self.row_of = {cid: i for i, cid in enumerate(ids)}
        self._tokenizer = bm25s.tokenization.Tokenizer(
            stopwords="en", stemmer=stem
        )
        self._bm25 = bm25s.BM25()
        if ids:
            corpus = [f"{m.get('headline', '')}\n{t}" for t, m in zip(texts, metas, strict=True)]
            tokens = self._tokenizer.tokenize(corpus, show_progress=False, return_as="tuple")
            self._bm25.index(tokens, show_progress=False)
        self.published = np.array([int(m.get("published_day", -1)) for m in metas],
                                  dtype=np.int64)
        self._build_articles()

    def _build_articles(self) -> None:
        import bm25s

        rows_of: dict[str, list[int]] = {}
        for row, meta in enumerate(self.metas):
            rows_of.setdefault(str(meta.get("article_id", "")), []).append(row)
        self.articles = list(rows_of)
        self.article_rows = [sorted(rows, key=lambda r: int(self.metas[r].get("index", 0)))
                             for rows in rows_of.values()]
        self._article_tokenizer = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=stem)
        self._article_bm25 = bm25s.BM25()
        if self.articles:
            texts = [str(self.metas[rows[0]].get("headline", "")) + "\n"
                     + "\n".join(self.texts[r] for r in rows) for rows in self.article_rows]
            tokens = self._article_tokenizer.tokenize(texts, show_progress=False,
                                                      return_as="tuple")
            self._article_bm25.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[LexicalHit]:
        """The top ``k`` chunks by BM25 among rows where ``mask`` is true."""
        if not self.ids:
            return []
        tokens = self._tokenizer.tokenize([query], update_vocab=False, show_progress=False,
                                          return_as="ids")
        if not tokens or not any(tokens[0]):
            return []
        k = min(k, len(self.ids))
        weight = mask.astype(np.float32) if mask is not None else None
        rows, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1,
                                           weight_mask=weight)
        return [LexicalHit(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True)
                if s > 0]


    def search_articles(self, query: str, k: int,
                        mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """The top ``k`` article ids by BM25 over their whole text.

        Only articles with a row where ``mask`` is true are searched.
        """
        if not self.articles:
            return []
        tokens = self._article_tokenizer.tokenize([query], update_vocab=False,
                                                  show_progress=False, return_as="ids")
        if not tokens or not any(tokens[0]):
            return []
        weight = None
        if mask is not None:
            weight = np.array([float(mask[rows].any()) for rows in self.article_rows],
                              dtype=np.float32)
        k = min(k, len(self.articles))
        rows, scores = self._article_bm25.retrieve(tokens, k=k, show_progress=False,
                                                   n_threads=1, weight_mask=weight)
        return [(self.articles[int(r)], float(s)) for r, s in zip(rows[0], scores[0],
                                                                  strict=True) if s > 0]


class LexicalCache:
    """Hands out the BM25 index for the store's current content, rebuilding when it changed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._index: LexicalIndex | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Check the store's generation on the next search (this process just wrote to it)."""
        self._checked = 0.0

    def _path(self, generation: str) -> Any:
        folder = self.store.settings.cache_dir / "lexical"
        return folder / f"{self.store.settings.collection}-{generation or 'empty'}.pkl"

    def get(self) -> LexicalIndex:
        """The current index; at most one store round trip a second to notice changes."""
        now = time.monotonic()
        index = self._index
        if index is not None and now - self._checked < _CHECK_EVERY_S:
            return index
        with self._lock:
            generation = self.store.generation()
            self._checked = time.monotonic()
            if self._index is not None and self._index.generation == generation:
                return self._index
            path = self._path(generation)
            if path.exists():
                try:
                    with path.open("rb") as fh:
                        loaded = pickle.load(fh)
                    if isinstance(loaded, LexicalIndex) and loaded.generation == generation \
                            and getattr(loaded, "version", 0) == LexicalIndex.VERSION:
                        self._index = loaded
                        return loaded
                except Exception:  # a torn or stale cache file is rebuilt, never trusted
                    log.warning("lexical cache %s unreadable; rebuilding", path)
            started = time.perf_counter()
            chunks = self.store.all_chunks()
            self._index = LexicalIndex([c.id for c in chunks], [c.text for c in chunks],
                                       [c.metadata for c in chunks], generation)
            log.info("built BM25 over %d chunks in %.1fs", len(chunks),
                     time.perf_counter() - started)
            self._save(path)
            return self._index

    def _save(self, path: Any) -> None:
        # Processes sharing a data dir (several API servers on one Chroma server) each write
        # their own temporary file, then rename it into place.
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.glob(f"{self.store.settings.collection}-*.pkl"):
                old.unlink(missing_ok=True)
            with tmp.open("wb") as fh:
                pickle.dump(self._index, fh, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
        except (OSError, pickle.PicklingError):
            log.warning("could not cache the lexical index in %s", path.parent)
        finally:
            tmp.unlink(missing_ok=True)
