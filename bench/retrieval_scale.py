"""Retrieval latency at 1k, 10k and 100k chunks: dense, lexical (BM25) and hybrid.

Stores of that size are built without running the encoder over every chunk: each synthetic
chunk is 800-900 characters of real RGB sentences, and its vector is the normalised mean of the
real all-MiniLM-L6-v2 vectors of those sentences (so neighbourhoods look like real ones, unlike
random vectors). Queries are the dev set's questions, timed end to end through the project's
retrievers with the real (int8) query encoder: the numbers include encoding the query.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import RGB_QUESTIONS, chunk_texts, sentence_pool
from rag.evaluation.metrics import percentiles

BUILD_VERSION = "1"  # bump when the synthetic store's recipe changes
_BATCH = 5000
CHUNKS_PER_ARTICLE = 6


def questions(limit: int | None = None) -> list[str]:
    """The dev set's questions, the query load."""
    lines = RGB_QUESTIONS.read_text(encoding="utf-8").splitlines()
    out = [json.loads(line)["question"] for line in lines if line.strip()]
    return out[:limit] if limit else out


def _settings(folder: Path) -> Any:
    from rag.settings import Settings

    return Settings(data_dir=folder)


_pool_vectors: dict[int, tuple[list[str], np.ndarray]] = {}


def _pool(embedder: Any) -> tuple[list[str], np.ndarray]:
    """The sentence pool and its real vectors, embedded once per process."""
    if id(embedder) not in _pool_vectors:
        pool = sentence_pool()
        _pool_vectors[id(embedder)] = (pool, embedder.embed(pool))
    return _pool_vectors[id(embedder)]


def build_store(size: int, folder: Path, embedder: Any) -> dict[str, Any]:
    """A store of ``size`` synthetic chunks under ``folder`` (reused when already built)."""
    from rag.store import Store

    stamp = folder / f"built-{BUILD_VERSION}.json"
    if stamp.exists():
        return {**json.loads(stamp.read_text()), "reused": True}
    started = time.perf_counter()
    pool, sentence_vectors = _pool(embedder)
    store = Store(_settings(folder), embedder)
    ids: list[str] = []
    docs: list[str] = []
    vectors: list[np.ndarray] = []
    metas: list[dict[str, Any]] = []

    def flush() -> None:
        if ids:
            store.chunks.upsert(ids=list(ids), documents=list(docs), embeddings=np.stack(vectors),
                                metadatas=list(metas))
            for items in (ids, docs, vectors, metas):
                items.clear()

    offset = 0
    for n, (text, picked) in enumerate(chunk_texts(size, pool=pool)):
        article, index = divmod(n, CHUNKS_PER_ARTICLE)
        if index == 0:
            offset = 0
        mean = sentence_vectors[picked].mean(axis=0)
        vectors.append((mean / np.linalg.norm(mean)).astype(np.float32))
        ids.append(f"syn{article:07d}:{index}")
        docs.append(text)
        day = 1 + article % 28
        metas.append({
            "article_id": f"syn{article:07d}", "headline": pool[picked[0]][:90],
            "source": f"https://news.example/{article // 100}/{article}",
            "site": "news.example", "index": index, "start": offset, "end": offset + len(text),
            "n_chunks": CHUNKS_PER_ARTICLE, "published": f"2024-01-{day:02d}",
            "published_day": int(f"202401{day:02d}")})
        offset += len(text) + 1
        if len(ids) >= _BATCH:
            flush()
    flush()
    store.bump_generation()
    info = {"chunks": store.chunks.count(), "build_seconds": round(time.perf_counter() - started,
                                                                   1)}
    stamp.write_text(json.dumps(info))
    return {**info, "reused": False}


def _time(fn: Any, queries: Sequence[str]) -> list[float]:
    out = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - started) * 1000)
    return out


def bench_size(size: int, folder: Path, embedder: Any, queries: Sequence[str],
               warmup: int = 5) -> dict[str, Any]:
    """Latency percentiles of each retriever over a store of ``size`` chunks."""
    from rag.retrieval.dense import DenseRetriever
    from rag.retrieval.hybrid import HybridRetriever
    from rag.store import Store

    built = build_store(size, folder, embedder)
    settings = _settings(folder)
    store = Store(settings, embedder)
    hybrid = HybridRetriever(store, embedder, settings)
    dense = DenseRetriever(store, embedder)
    started = time.perf_counter()
    index = hybrid.lexical.get()  # builds BM25 (or loads its on-disk cache) once
    lexical_load = time.perf_counter() - started
    k = settings.top_k
    for q in queries[:warmup]:
        hybrid.retrieve(q, k)
        dense.retrieve(q, k)
    result: dict[str, Any] = {
        "chunks": built["chunks"], "store_build_seconds": built["build_seconds"],
        "store_reused": built["reused"], "lexical_load_seconds": round(lexical_load, 2),
        "k": k, "hybrid_candidates": settings.candidates, "queries": len(queries),
    }
    # Interleave the retrievers query by query so load drift hits all of them alike.
    times: dict[str, list[float]] = {"dense": [], "lexical": [], "hybrid": [],
                                     "query_encoding": []}
    for q in queries:
        times["query_encoding"] += _time(lambda x: embedder.embed([x]), [q])
        times["dense"] += _time(lambda x: dense.retrieve(x, k), [q])
        times["lexical"] += _time(lambda x: hybrid.lexical.get().search(x, k), [q])
        times["hybrid"] += _time(lambda x: hybrid.retrieve(x, k), [q])
    # The same encoder pinned to one thread: under CPU contention two torch threads wait on
    # each other, and a one-query batch gains nothing from the second.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times["query_encoding_1_thread"] = _time(lambda x: embedder.embed([x]), queries)
    finally:
        torch.set_num_threads(threads)
    for name, values in times.items():
        result[name] = percentiles(values)
    result["lexical_rows"] = len(index)
    return result


def bench_retrieval(sizes: Sequence[int], cache: Path, n_queries: int | None) -> dict[str, Any]:
    """Every size, smallest first."""
    from rag.embeddings import make_embedder

    embedder = make_embedder(_settings(cache / "unused"))
    queries = questions(n_queries)
    out: dict[str, Any] = {"sizes": {}, "method": __doc__.strip() if __doc__ else ""}
    for size in sizes:
        result = bench_size(size, cache / f"store-{size}", embedder, queries)
        out["sizes"][str(size)] = result
        print(f"  retrieval {size:>7} chunks: hybrid p50 {result['hybrid']['p50']} ms, p95 "
              f"{result['hybrid']['p95']} ms (dense p50 {result['dense']['p50']}, lexical p50 "
              f"{result['lexical']['p50']})", flush=True)
    out["goal"] = {"hybrid_p50_ms_at_100k": "<= 50", "hybrid_p95_ms_at_100k": "<= 150"}
    return out
