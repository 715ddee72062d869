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

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag.errors import InvalidInput, RagError
from rag.models import Answer, Passage
from rag.settings import Settings

RETRIEVAL_K = 10
HIT_KS = (1, 4, 10)
STAGES = ("condense_ms", "retrieve_ms", "answer_ms", "total_ms")
THRESHOLDS = tuple(round(0.30 + 0.025 * i, 3) for i in range(27))  # 0.30 .. 0.95


# -- question files ---------------------------------------------------------------------------
class Question(BaseModel):
    """One evaluation question; fields other than these (e.g. ``gold_urls``) are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str
    question: str = Field(min_length=1)
    answer: list[list[str]] | None = None
    gold_ids: list[str] = Field(default_factory=list)
    gold_urls: list[str] = Field(default_factory=list)
    answerable: bool | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("answer", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        """A bare string is one alias; a string inside the list is a one-alias group."""
        if value is None or value == []:
            return None
        if isinstance(value, (str, int, float)):
            return [[str(value)]]
        if isinstance(value, list):
            return [[str(a) for a in g] if isinstance(g, list) else [str(g)] for g in value]
        return value

    @property
    def is_answerable(self) -> bool:
        """Explicit flag when given, else whether an answer is."""
        return self.answerable if self.answerable is not None else self.answer is not None


def load_questions(path: str | Path, limit: int | None = None) -> list[Question]:
    """Read a JSON Lines question file; a bad line is an error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"The question file {path} does not exist.")
    out: list[Question] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Question.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise InvalidInput(f"Line {number} of {path} is not a valid question "
                               f"({exc.__class__.__name__}).") from exc
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise InvalidInput(f"The question file {path} has no questions.")
    return out


# -- answer matching --------------------------------------------------------------------------
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_DIGIT_GROUP = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")


def normalise(text: str) -> str:
    """Lower-case, accents folded, punctuation and symbols as spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    text = _DIGIT_GROUP.sub("", text.lower())  # 1,000 == 1000
    text = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text)
    return " ".join(text.split())


def is_correct(text: str, groups: Sequence[Sequence[str]] | None) -> bool:
    """True when ``text`` contains (as whole words) an alias of every group of ``groups``."""
    if not groups:
        return False
    haystack = f" {normalise(_MARKER.sub(' ', text))} "
    return all(any(f" {normalise(alias)} " in haystack for alias in group if normalise(alias))
               for group in groups)


# -- citations --------------------------------------------------------------------------------
def cited_numbers(text: str) -> list[int]:
    """Every n of the ``[n]`` / ``[n, m]`` markers in ``text``, in order."""
    return [int(n) for match in _MARKER.findall(text) for n in match.split(",")]


def citation_problems(answer: Answer, stored: Mapping[str, str]) -> list[str]:
    """Why each invalid citation of ``answer`` is invalid (empty when all are valid).

    ``stored`` maps chunk ids to the chunk text in the index. A citation is invalid when its
    [n] is not in the text, its quote is empty or not in its passage, or its chunk is not stored
    (or the quote is not in the stored chunk); an [n] in the text without a citation is one too.
    """
    problems: list[str] = []
    markers = set(cited_numbers(answer.text))
    numbers = set()
    for cite in answer.citations:
        numbers.add(cite.number)
        if cite.number not in markers:
            problems.append(f"[{cite.number}] is not in the answer text")
        if not cite.quote.strip() or cite.quote not in cite.passage:
            problems.append(f"[{cite.number}] quote is not in its passage")
        if cite.chunk_id not in stored:
            problems.append(f"[{cite.number}] cites chunk {cite.chunk_id}, which is not stored")
        elif cite.quote not in stored[cite.chunk_id]:
            problems.append(f"[{cite.number}] quote is not in the stored chunk")
    for number in sorted(markers - numbers):
        problems.append(f"[{number}] in the text has no citation")
    return problems


# -- metrics ----------------------------------------------------------------------------------
def first_gold_rank(article_ids: Sequence[str], gold: set[str]) -> int | None:
    """1-based rank of the first passage from a gold article, or None."""
    for rank, aid in enumerate(article_ids, 1):
        if aid in gold:
            return rank
    return None


def retrieval_metrics(ranks: Sequence[int | None]) -> dict[str, float | int | None]:
    """hit@1/4/10 and MRR@10 from the first-gold ranks of the questions that have gold."""
    n = len(ranks)
    out: dict[str, float | int | None] = {}
    for k in HIT_KS:
        out[f"hit@{k}"] = _rate(sum(1 for r in ranks if r is not None and r <= k), n)
    out["mrr@10"] = round(sum(1.0 / r for r in ranks if r is not None and r <= RETRIEVAL_K) / n,
                          4) if n else None
    out["n_with_gold"] = n
    return out


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 (nearest rank on the sorted values) in milliseconds."""
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 1)

    return {"p50": round(statistics.median(ordered), 1), "p95": pick(0.95)}


def _rate(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def answer_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy, refusals, support and citation validity from per-question answer rows."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["refused"]]
    supported = sum(r["supported_sentences"] for r in answered)
    total = sum(r["total_sentences"] for r in answered)
    return {
        "answer_accuracy": _rate(sum(1 for r in answerable if r["correct"]), len(answerable)),
        "refusal_rate": _rate(sum(1 for r in unanswerable if r["refused"]), len(unanswerable)),
        "false_refusal_rate": _rate(sum(1 for r in answerable if r["refused"]), len(answerable)),
        "supported_sentence_rate": _rate(supported, total),
        "invalid_citations": sum(len(r["citation_problems"]) for r in rows),
        "latency_ms": {stage: percentiles([r["timings_ms"][stage] for r in rows
                                           if stage in r["timings_ms"]]) for stage in STAGES},
    }


def threshold_sweep(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, float | None]]:
    """Refusal and false-refusal rates had the refusal threshold been each of THRESHOLDS.

    Uses each question's gate score (the best evidence score of the passages answered from),
    so the threshold can be calibrated without re-running.
    """
    scored = [r for r in rows if r.get("gate_score") is not None]
    yes = [r["gate_score"] for r in scored if r["answerable"]]
    no = [r["gate_score"] for r in scored if not r["answerable"]]
    return [{"threshold": t,
             "refusal_rate": _rate(sum(1 for s in no if s < t), len(no)),
             "false_refusal_rate": _rate(sum(1 for s in yes if s < t), len(yes))}
            for t in THRESHOLDS]


# -- the run ----------------------------------------------------------------------------------
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


def _manifest(assistant: Any) -> list[dict[str, Any]]:
    metas: list[dict[str, Any]] = []
    offset = 0
    while True:
        got = assistant.store.sources.get(include=["metadatas"], limit=5000, offset=offset)
        metas.extend(dict(m) for m in got["metadatas"] or [] if m and "key" in m)
        if len(got["ids"]) < 5000:
            return metas
        offset += 5000


def _source_map(assistant: Any) -> dict[str, set[str]]:
    """Chunk source (URL or path) -> article ids, to match ``gold_urls``."""
    out: dict[str, set[str]] = {}
    offset = 0
    while True:
        got = assistant.store.chunks.get(include=["metadatas"], limit=5000, offset=offset)
        for meta in got["metadatas"] or []:
            if meta:
                out.setdefault(str(meta.get("source", "")), set()).add(str(meta["article_id"]))
        if len(got["ids"]) < 5000:
            return out
        offset += 5000


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
    ids = sorted({c.chunk_id for c in answer.citations})
    if not ids:
        return {}
    got = assistant.store.chunks.get(ids=ids, include=["documents"])
    return {cid: doc or "" for cid, doc in zip(got["ids"], got["documents"] or [], strict=False)}


def _index_settings(settings: Settings, data_dir: Path) -> Settings:
    # A fresh Settings, not model_copy: derived paths are cached properties of the instance.
    values = settings.model_dump()
    values.update(data_dir=data_dir, chroma_mode="embedded")
    return Settings(**values)


def _retrieval_pass(assistant: Any, questions: Sequence[Question],
                    gold: Mapping[str, set[str]], retrieve: Callable[[str], list[Passage]],
                    label: str, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """First-gold ranks and retrieval latencies of one retriever over all questions."""
    ranks: dict[str, int | None] = {}
    times: list[float] = []
    passages: dict[str, list[Passage]] = {}
    for q in _bar(questions, label, progress):
        mark = time.perf_counter()
        got = retrieve(q.question)
        times.append((time.perf_counter() - mark) * 1000)
        passages[q.id] = got
        if gold.get(q.id):
            ranks[q.id] = first_gold_rank([p.article_id for p in got], gold[q.id])
    metrics: dict[str, Any] = dict(
        retrieval_metrics([ranks[q.id] for q in questions if q.id in ranks]))
    metrics["latency_ms"] = percentiles(times)
    return metrics, {"ranks": ranks, "passages": passages}


def _bar(items: Sequence[Any], label: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=label, unit="q", file=sys.stderr, leave=False)


def evaluate(corpus_path: str | Path, questions_path: str | Path,
             settings: Settings | None = None, generators: Sequence[str] = ("extractive",),
             limit: int | None = None, *, dense_baseline: bool = True, progress: bool = False,
             index_dir: str | Path | None = None) -> dict[str, Any]:
    """Ingest ``corpus_path`` into a fresh index, ask every question, and return the report.

    The index lives in a temporary directory (or ``index_dir``, which is kept) and is shared
    by all ``generators``. The top-level metric keys are those of the first generator that
    ran; ``generators`` holds every generator's figures and ``dense_baseline`` the retrieval
    figures of the dense-only retriever on the same index.
    """
    corpus = Path(corpus_path)
    if not corpus.exists():
        raise InvalidInput(f"The corpus {corpus} does not exist.")
    questions = load_questions(questions_path, limit)
    base = settings or Settings()
    if index_dir is not None:
        return _evaluate_in(Path(index_dir), corpus, questions, base, generators,
                            dense_baseline, progress, questions_path)
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        return _evaluate_in(Path(tmp), corpus, questions, base, generators, dense_baseline,
                            progress, questions_path)


def _evaluate_in(data_dir: Path, corpus: Path, questions: Sequence[Question], base: Settings,
                 generators: Sequence[str], dense_baseline: bool, progress: bool,
                 questions_path: str | Path) -> dict[str, Any]:
    from rag.assistant import Assistant
    from rag.retrieval import DenseRetriever

    settings = _index_settings(base, data_dir)
    assistant = Assistant(settings)
    ingest = assistant.ingest([corpus], progress=progress)
    if ingest.added + ingest.unchanged == 0:
        raise InvalidInput(f"No articles could be ingested from {corpus}.")
    by_id = _gold_map(_manifest(assistant))
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
        "ingest": {**assistant.stats(), "skipped": ingest.skipped},
        "retrieval": retrieval,
        **{key: retrieval[key] for key in ("hit@1", "hit@4", "hit@10", "mrr@10")},
    }
    if dense_baseline:
        dense = DenseRetriever(assistant.store, assistant.embedder)
        report["dense_baseline"], _ = _retrieval_pass(
            assistant, questions, gold, lambda q: dense.retrieve(q, RETRIEVAL_K),
            "dense", progress)

    rows = [{"id": q.id, "question": q.question, "answerable": q.is_answerable,
             "answer": q.answer, "gold_ids": q.gold_ids,
             "gold_rank": hybrid["ranks"].get(q.id),
             "retrieved": [p.article_id for p in hybrid["passages"][q.id]],
             "answers": {}} for q in questions]
    report["generators"] = {}
    for name in generators:
        try:
            assistant.answerer(name)
        except Exception as exc:  # a missing runtime or model skips this generator only
            report["generators"][name] = {"error": str(exc) if isinstance(exc, RagError) else
                                          f"{name} could not be loaded ({exc.__class__.__name__})"}
            continue
        answer_rows = []
        for q, row in zip(_bar(questions, name, progress), rows, strict=True):
            answer_rows.append(_ask(assistant, q, name, hybrid["passages"][q.id]))
            row["answers"][name] = answer_rows[-1]
        metrics = answer_metrics(answer_rows)
        metrics["threshold_sweep"] = threshold_sweep(answer_rows)
        report["generators"][name] = metrics
    ran = [n for n in generators if "error" not in report["generators"].get(n, {"error": 1})]
    if ran:
        first = report["generators"][ran[0]]
        report.update({key: value for key, value in first.items() if key != "threshold_sweep"})
        report["generator"] = ran[0]
    report["rows"] = rows
    return report


def _ask(assistant: Any, q: Question, generator: str,
         retrieved: Sequence[Passage]) -> dict[str, Any]:
    """One question through ``Assistant.ask``, judged."""
    try:
        answer = assistant.ask(q.question, generator=generator)
    except RagError as exc:
        return {"text": "", "error": str(exc), "refused": True, "correct": False,
                "supported_sentences": 0, "total_sentences": 0, "citation_problems": [],
                "timings_ms": {}, "answerable": q.is_answerable, "gate_score": None}
    # The gate's evidence score on the passages answered from (the top_k of the same ranking).
    evidence = assistant.scorer.score(answer.standalone_question,
                                      list(retrieved[:assistant.settings.top_k]))
    return {
        "text": answer.text, "refused": answer.refused, "answerable": q.is_answerable,
        "correct": (not answer.refused) and is_correct(answer.text, q.answer),
        "supported_sentences": answer.supported_sentences,
        "total_sentences": answer.total_sentences,
        "citations": [{"number": c.number, "chunk_id": c.chunk_id, "quote": c.quote}
                      for c in answer.citations],
        "citation_problems": citation_problems(answer, _stored(assistant, answer)),
        "timings_ms": answer.timings_ms,
        "gate_score": round(evidence[0].score, 4) if evidence else 0.0,
    }


# -- output -----------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_report(report: Mapping[str, Any]) -> str:
    """The report as markdown tables for people."""
    lines = [f"{report['n_questions']} questions ({report['n_answerable']} answerable), "
             f"{report['ingest']['articles']} articles / {report['ingest']['chunks']} chunks "
             f"ingested in {report['ingest_seconds']:.1f} s", "",
             "| retriever | hit@1 | hit@4 | hit@10 | mrr@10 | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|---|"]
    for label, block in (("hybrid", report["retrieval"]), ("dense only",
                                                            report.get("dense_baseline"))):
        if block:
            lines.append(f"| {label} | " + " | ".join(_fmt(block[k]) for k in (
                "hit@1", "hit@4", "hit@10", "mrr@10")) + f" | {_fmt(block['latency_ms']['p50'])}"
                f" | {_fmt(block['latency_ms']['p95'])} |")
    lines += ["", "| generator | accuracy | refusals | false refusals | supported | "
              "invalid citations | total p50 ms | total p95 ms |",
              "|---|---|---|---|---|---|---|---|"]
    for name, m in report["generators"].items():
        if "error" in m:
            lines.append(f"| {name} | skipped: {m['error']} |")
            continue
        total = m["latency_ms"]["total_ms"]
        lines.append(f"| {name} | " + " | ".join(_fmt(m[k]) for k in (
            "answer_accuracy", "refusal_rate", "false_refusal_rate", "supported_sentence_rate",
            "invalid_citations")) + f" | {_fmt(total['p50'])} | {_fmt(total['p95'])} |")
    return "\n".join(lines)


def run_cli(args: argparse.Namespace) -> int:
    """``rag eval``: evaluate, print the tables, write the JSON report when asked."""
    generators = list(dict.fromkeys(getattr(args, "generator", None) or ["extractive"]))
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise InvalidInput("--limit must be at least 1.")
    report = evaluate(args.corpus, args.questions, Settings(), generators, limit,
                      progress=True)
    print(format_report(report))
    if getattr(args, "json_out", None):
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nreport written to {out}")
    failed = [n for n, m in report["generators"].items() if "error" in m]
    return 1 if failed and len(failed) == len(generators) else 0
