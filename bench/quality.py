"""Quality on the dev set: every answerer through ``rag.evaluation.evaluate``, and the naive
dense-only langchain pipeline's retrieval figures beside ours, in the same run.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import naive
from bench.corpus import RGB_CORPUS, RGB_QUESTIONS

RETRIEVAL_KEYS = ("hit@1", "hit@4", "hit@10", "mrr@10")
ANSWER_KEYS = ("answer_accuracy", "refusal_rate", "false_refusal_rate",
               "supported_sentence_rate", "invalid_citations")


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def naive_retrieval(corpus: Path, questions: Path, work: Path, embedding: Any) -> dict[str, Any]:
    """hit@k / MRR@10 of the naive pipeline, scored like ``rag eval``: by article content.

    A retrieved chunk counts as gold when its record's text is that of a gold record (the same
    rule ``rag eval`` gets from content-addressed article ids).
    """
    from ingest.pipeline import article_id
    from ingest.text import clean_text
    from rag.evaluation.metrics import first_gold_rank, percentiles, retrieval_metrics

    aid = {str(r["id"]): article_id(clean_text(r["text"])) for r in _records(corpus)}
    with tempfile.TemporaryDirectory(dir=work) as folder:
        started = time.perf_counter()
        store, chunks = naive.build(corpus, Path(folder), embedding)
        build = time.perf_counter() - started
        ranks = []
        times = []
        for q in _records(questions):
            gold = {aid[g] for g in q.get("gold_ids") or [] if g in aid}
            if not gold:
                continue
            started = time.perf_counter()
            got = naive.retrieve_ids(store, q["question"], 10)
            times.append((time.perf_counter() - started) * 1000)
            ranks.append(first_gold_rank([aid.get(i, i) for i in got], gold))
    out: dict[str, Any] = dict(retrieval_metrics(ranks))
    out.update({"chunks": chunks, "ingest_seconds": round(build, 2),
                "latency_ms": percentiles(times)})
    return out


def shared_index(work: Path) -> Path:
    """The dev corpus's index, shared by the sections of one run (ingest is idempotent)."""
    return work / "dev-index"


def _subset(questions: Path, count: int, folder: Path) -> Path:
    """Every n-th question, so answerable and unanswerable keep their proportions."""
    items = _records(questions)
    step = max(len(items) / count, 1.0)
    picked = [items[int(i * step)] for i in range(min(count, len(items)))]
    path = folder / f"questions-{count}.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in picked), encoding="utf-8")
    return path


def bench_quality(work: Path, llm_questions: int, quick: bool,
                  only: list[str] | None = None) -> dict[str, Any]:
    """Extractive on every question, each installed local model on a subset, naive beside."""
    from rag.answering.factory import available_answerers
    from rag.evaluation import evaluate
    from rag.settings import Settings

    settings = Settings(data_dir=work / "unused")
    questions = _subset(RGB_QUESTIONS, 20, work) if quick else RGB_QUESTIONS
    index = shared_index(work)
    report = evaluate(RGB_CORPUS, questions, settings, ["extractive"], index_dir=index)
    out: dict[str, Any] = {
        "questions": str(RGB_QUESTIONS), "n_questions": report["n_questions"],
        "ours_hybrid": {k: report["retrieval"][k] for k in (*RETRIEVAL_KEYS, "latency_ms")},
        "ours_dense_only": {k: report["dense_baseline"][k]
                            for k in (*RETRIEVAL_KEYS, "latency_ms")},
        "ingest_seconds": report["ingest_seconds"],
        "answerers": {"extractive": _answer_block(report["answerers"]["extractive"],
                                                  report["n_questions"])},
    }
    out["naive"] = naive_retrieval(RGB_CORPUS, questions, work, naive.embeddings())
    print(f"  quality: hybrid hit@4 {out['ours_hybrid']['hit@4']}, naive hit@4 "
          f"{out['naive']['hit@4']}; extractive accuracy "
          f"{out['answerers']['extractive']['answer_accuracy']}", flush=True)

    models = [g for g in available_answerers(settings) if g not in ("extractive", "openai")
              and (only is None or g in only)]
    if quick:
        models = models[-1:]  # the smallest, listed last
    skipped = {}
    if not models:
        skipped["local models"] = "no local model weights are installed"
    elif llm_questions < 1:
        skipped.update({name: "not run (--llm-questions 0)" for name in models})
        models = []
    subset = _subset(RGB_QUESTIONS, llm_questions, work) if models else RGB_QUESTIONS
    for name in models:
        started = time.perf_counter()
        llm = evaluate(RGB_CORPUS, subset, settings, [name], index_dir=index,
                       dense_baseline=False)
        block = llm["answerers"][name]
        if "error" in block:
            skipped[name] = block["error"]
            continue
        out["answerers"][name] = _answer_block(block, llm["n_questions"])
        out["answerers"][name]["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(f"  quality {name}: accuracy {block['answer_accuracy']} on {llm['n_questions']} "
              f"questions", flush=True)
    out["skipped"] = skipped
    return out


def _answer_block(block: dict[str, Any], n: int) -> dict[str, Any]:
    return {**{k: block[k] for k in ANSWER_KEYS}, "questions": n,
            "total_ms": block["latency_ms"]["total_ms"]}
