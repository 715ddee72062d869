"""``rag eval``: retrieval, answer and citation quality of the assistant on a question set.

The corpus is ingested into a fresh temporary index and every question goes through the same
``Assistant`` the front ends use. The report's metric keys are fixed so other tools can read it:
``hit@1``, ``hit@4``, ``hit@10``, ``mrr@10``, ``answer_accuracy``, ``refusal_rate``,
``false_refusal_rate``, ``supported_sentence_rate``, ``invalid_citations`` (a count), plus
per-stage latencies (``latency_ms``), ``ingest_seconds`` and per-question ``rows``.

Question files are JSON Lines ``{id, question, answer, gold_ids, answerable}`` (the format of
``shared/eval/rgb``); unknown fields are ignored. ``answer`` is a list of groups of aliases: an
answer is right when it contains an alias of every group, ignoring case and punctuation.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.answering.condense import heuristic_condense
from rag.errors import InvalidInput, RagError
from rag.evaluation.metrics import (
    RETRIEVAL_K,
    answer_metrics,
    by_kind,
    first_gold_rank,
    percentiles,
    retrieval_metrics,
    threshold_sweep,
)
from rag.evaluation.questions import Question, load_questions
from rag.evaluation.scoring import citation_problems, is_correct, mentions_any
from rag.records import Answer, Passage
from rag.settings import Settings


def _gold_map(manifest: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Record id (and file path/name/stem) -> article ids, from the ingest manifest."""
    out: dict[str, set[str]] = {}
    for meta in manifest:
        key, path, aid = str(meta.get("key", "")), str(meta.get("path", "")), meta.get("article_id")
        if not aid:
            continue
        names = {key}
        if key.startswith(path + "#"):
            names.add(key[len(path) + 1:])
        else:
            names.update({path, Path(path).name, Path(path).stem})
        for name in names:
            out.setdefault(name, set()).add(str(aid))
    return out


def _source_map(assistant: Any) -> dict[str, set[str]]:
    """Chunk source (URL or path) -> article ids, to match ``gold_urls``."""
    out: dict[str, set[str]] = {}
    for page in assistant.store.chunk_pages():
        for chunk in page:
            out.setdefault(str(chunk.metadata.get("source", "")), set()).add(
                str(chunk.metadata["article_id"]))
    return out


def _gold(question: Question, by_id: Mapping[str, set[str]],
          by_source: Mapping[str, set[str]]) -> set[str]:
    gold: set[str] = set()
    for gid in question.gold_ids:
        gold |= by_id.get(gid, set())
    if not question.gold_ids:
        for url in question.gold_urls:
            gold |= by_source.get(url, set())
    return gold


def _stored(assistant: Any, answer: Answer) -> dict[str, str]:
    return assistant.store.documents(sorted({c.chunk_id for c in answer.citations}))


def _index_settings(settings: Settings, data_dir: Path) -> Settings:
    # A fresh Settings, not model_copy: derived paths are cached properties of the instance.
    values = settings.model_dump()
    values.update(data_dir=data_dir, chroma_mode="embedded")
    return Settings(**values)


def searched(q: Question) -> str:
    """What is searched for ``q``: a follow-up with its earlier question, as the chat does."""
    return heuristic_condense(q.question, q.history) if q.history else q.question


def _retrieval_pass(assistant: Any, questions: Sequence[Question],
                    gold: Mapping[str, set[str]], retrieve: Callable[[str], list[Passage]],
                    label: str, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """First-gold ranks and retrieval latencies of one retriever over all questions."""
    ranks: dict[str, int | None] = {}
    times: list[float] = []
    passages: dict[str, list[Passage]] = {}
    for q in _bar(questions, label, progress):
        mark = time.perf_counter()
        got = retrieve(searched(q))
        times.append((time.perf_counter() - mark) * 1000)
        passages[q.id] = got
        if gold.get(q.id):
            ranks[q.id] = first_gold_rank([p.article_id for p in got], gold[q.id])
    metrics: dict[str, Any] = dict(
        retrieval_metrics([ranks[q.id] for q in questions if q.id in ranks]))
    with_gold = [{"kind": q.kind, "rank": ranks[q.id]} for q in questions if q.id in ranks]
    metrics["by_kind"] = by_kind(with_gold,
                                 lambda rows: retrieval_metrics([r["rank"] for r in rows]))
    metrics["latency_ms"] = percentiles(times)
    return metrics, {"ranks": ranks, "passages": passages}


def _bar(items: Sequence[Any], label: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=label, unit="q", file=sys.stderr, leave=False)


def evaluate(corpus_path: str | Path, questions_path: str | Path,
             settings: Settings | None = None, answerers: Sequence[str] = ("extractive",),
             limit: int | None = None, *, dense_baseline: bool = True, progress: bool = False,
             index_dir: str | Path | None = None, naive_baseline: bool = False
             ) -> dict[str, Any]:
    """Ingest ``corpus_path`` into a fresh index, ask every question, and return the report.

    The index lives in a temporary directory (or ``index_dir``, which is kept) and is shared
    by all ``answerers``. The top-level metric keys are those of the first answerer that
    ran; ``answerers`` holds every answerer's figures and ``dense_baseline`` the retrieval
    figures of the dense-only retriever on the same index; with ``naive_baseline``,
    ``naive_baseline`` holds the naive LangChain pipeline's on the same corpus
    (``rag.evaluation.naive``).
    """
    corpus = Path(corpus_path)
    if not corpus.exists():
        raise InvalidInput(f"The corpus {corpus} does not exist.")
    questions = load_questions(questions_path, limit)
    base = settings or Settings()
    if index_dir is not None:
        report = _evaluate_in(Path(index_dir), corpus, questions, base, answerers,
                              dense_baseline, progress, questions_path)
    else:
        with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
            report = _evaluate_in(Path(tmp), corpus, questions, base, answerers,
                                  dense_baseline, progress, questions_path)
    if naive_baseline:
        from rag.evaluation import naive

        why = naive.unavailable(corpus)
        report["naive_baseline"] = {"error": why} if why else naive.naive_retrieval(
            corpus, questions, base, searched)
    return report


def _evaluate_in(data_dir: Path, corpus: Path, questions: Sequence[Question], base: Settings,
                 answerers: Sequence[str], dense_baseline: bool, progress: bool,
                 questions_path: str | Path) -> dict[str, Any]:
    from rag.assistant import Assistant
    from rag.retrieval.dense import DenseRetriever

    settings = _index_settings(base, data_dir)
    assistant = Assistant(settings)
    ingest = assistant.ingest([corpus], progress=progress)
    if ingest.added + ingest.unchanged == 0:
        raise InvalidInput(f"No articles could be ingested from {corpus}.")
    by_id = _gold_map(assistant.store.manifest().values())
    by_source = _source_map(assistant) if any(q.gold_urls for q in questions) else {}
    gold = {q.id: _gold(q, by_id, by_source) for q in questions}

    retrieval, hybrid = _retrieval_pass(
        assistant, questions, gold, lambda q: assistant.retrieve(q, k=RETRIEVAL_K),
        "retrieve", progress)
    report: dict[str, Any] = {
        "corpus": str(corpus), "questions": str(questions_path),
        "n_questions": len(questions),
        "n_answerable": sum(1 for q in questions if q.is_answerable),
        "n_unanswerable": sum(1 for q in questions if not q.is_answerable),
        "settings": {key: getattr(settings, key) for key in (
            "embedding_model", "embedding_quantize", "chunk_chars", "chunk_overlap_sentences",
            "top_k", "candidates", "max_chunks_per_article", "refusal_threshold")},
        "ingest_seconds": round(ingest.seconds, 3),
        "ingest": {**assistant.store.stats(), "skipped": ingest.skipped},
        "retrieval": retrieval,
        **{key: retrieval[key] for key in ("hit@1", "hit@4", "hit@10", "mrr@10")},
    }
    if dense_baseline:
        dense = DenseRetriever(assistant.store, assistant.embedder)
        report["dense_baseline"], _ = _retrieval_pass(
            assistant, questions, gold, lambda q: dense.retrieve(q, RETRIEVAL_K),
            "dense", progress)

    rows = [{"id": q.id, "question": q.question, "kind": q.kind, "answerable": q.is_answerable,
             "answer": q.answer, "gold_ids": q.gold_ids,
             "gold_rank": hybrid["ranks"].get(q.id),
             "retrieved": [p.article_id for p in hybrid["passages"][q.id]],
             "answers": {}} for q in questions]
    report["answerers"] = {}
    for name in answerers:
        try:
            assistant.answerer(name)
        except Exception as exc:  # a missing runtime or model skips this answerer only
            report["answerers"][name] = {"error": str(exc) if isinstance(exc, RagError) else
                                          f"{name} could not be loaded ({exc.__class__.__name__})"}
            continue
        answer_rows = []
        for q, row in zip(_bar(questions, name, progress), rows, strict=True):
            answer_rows.append(_ask(assistant, q, name, hybrid["passages"][q.id]))
            row["answers"][name] = answer_rows[-1]
        metrics = answer_metrics(answer_rows)
        metrics["by_kind"] = by_kind(answer_rows, answer_metrics)
        metrics["threshold_sweep"] = threshold_sweep(answer_rows)
        report["answerers"][name] = metrics
    ran = [n for n in answerers if "error" not in report["answerers"].get(n, {"error": 1})]
    if ran:
        first = report["answerers"][ran[0]]
        report.update({key: value for key, value in first.items()
                       if key not in ("threshold_sweep", "by_kind")})
        report["answerer"] = ran[0]
    report["rows"] = rows
    return report


def _ask(assistant: Any, q: Question, answerer: str,
         retrieved: Sequence[Passage]) -> dict[str, Any]:
    """One question through ``Assistant.ask``, judged."""
    try:
        answer = assistant.ask(q.question, q.history, answerer=answerer,
                               filters={"today": q.today} if q.today else None)
    except RagError as exc:
        return {"text": "", "error": str(exc), "refused": True, "correct": False,
                "supported_sentences": 0, "total_sentences": 0, "citation_problems": [],
                "timings_ms": {}, "answerable": q.is_answerable, "kind": q.kind,
                "gate_score": None}
    # The gate's evidence score on the passages answered from (the top_k of the same ranking).
    evidence = assistant.scorer.score(answer.standalone_question,
                                      list(retrieved[:assistant.settings.top_k]))
    correct = (not answer.refused) and is_correct(answer.text, q.answer)
    judged: dict[str, Any] = {}
    if q.stale:  # an older figure given instead of the current one
        judged["stale"] = not answer.refused and not correct and mentions_any(answer.text,
                                                                              q.stale)
    return {
        **judged, "kind": q.kind,
        "text": answer.text, "refused": answer.refused, "answerable": q.is_answerable,
        "correct": correct,
        "supported_sentences": answer.supported_sentences,
        "total_sentences": answer.total_sentences,
        "citations": [{"number": c.number, "chunk_id": c.chunk_id, "quote": c.quote}
                      for c in answer.citations],
        "citation_problems": citation_problems(answer, _stored(assistant, answer)),
        "timings_ms": answer.timings_ms,
        "gate_score": round(evidence[0].score, 4) if evidence else 0.0,
    }
