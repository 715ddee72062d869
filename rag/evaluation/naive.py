"""The naive pipeline's retrieval, scored beside ours on the same corpus and questions.

It is what a LangChain user writes first: ``RecursiveCharacterTextSplitter(1000, 200)`` over
each record's text, the same all-MiniLM-L6-v2 weights unquantized, and plain top-k by cosine
similarity (exact here; Chroma's HNSW index approximates the same ranking). A retrieved chunk
is gold when its record is one of the question's ``gold_ids``. Needs a JSON Lines corpus and
``langchain-text-splitters``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.evaluation.metrics import RETRIEVAL_K, by_kind, first_gold_rank, retrieval_metrics
from rag.evaluation.questions import Question
from rag.settings import Settings


def unavailable(corpus: Path) -> str | None:
    """Why the naive pipeline cannot run on ``corpus`` here, or None when it can."""
    if corpus.suffix != ".jsonl" or not corpus.is_file():
        return "the naive pipeline reads a JSON Lines corpus"
    if importlib.util.find_spec("langchain_text_splitters") is None:
        return "langchain-text-splitters is not installed (pip install -e '.[dev]')"
    return None


def naive_retrieval(corpus: Path, questions: Sequence[Question], settings: Settings,
                    searched: Callable[[Question], str]) -> dict[str, Any]:
    """hit@k / MRR@10 of the naive pipeline; ``searched`` gives each question's query."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag.embeddings import SentenceTransformerEmbedder

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    owners: list[str] = []
    texts: list[str] = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        for piece in splitter.split_text(str(record.get("text") or "")):
            owners.append(str(record.get("id", "")))
            texts.append(piece)
    embedder = SentenceTransformerEmbedder(settings.embedding_model, quantize=False)
    vectors = embedder.embed(texts)
    ranks: dict[str, int | None] = {}
    for q in questions:
        if not q.gold_ids:
            continue
        scores = vectors @ embedder.embed([searched(q)])[0]
        top = np.argsort(-scores)[:RETRIEVAL_K]
        ranks[q.id] = first_gold_rank([owners[i] for i in top], set(q.gold_ids))
    rows: list[dict[str, Any]] = [{"kind": q.kind, "rank": ranks[q.id]} for q in questions
                                  if q.id in ranks]
    out: dict[str, Any] = dict(retrieval_metrics([r["rank"] for r in rows]))
    out["by_kind"] = by_kind(rows, lambda group: retrieval_metrics([r["rank"] for r in group]))
    out["chunks"] = len(texts)
    return out
