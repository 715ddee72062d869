"""`rag eval`: the metrics on known cases, and a run end to end on a tiny synthetic corpus."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from rag.answering.markers import cited_numbers
from rag.errors import InvalidInput
from rag.evaluation.metrics import (
    answer_metrics,
    by_kind,
    first_gold_rank,
    percentiles,
    retrieval_metrics,
    threshold_sweep,
)
from rag.evaluation.questions import load_questions
from rag.evaluation.report import run_cli
from rag.evaluation.runner import evaluate, searched
from rag.evaluation.scoring import citation_problems, is_correct, normalise
from rag.records import Answer, Citation

CORPUS = [
    {"id": "r-radar", "url": "https://news.example/radar", "title": "Putin offers radar",
     "text": "Vladimir Putin offered the United States joint use of the Gabala radar station in "
             "Azerbaijan instead of the planned radar in the Czech Republic."},
    {"id": "r-radar-copy", "url": "https://mirror.example/radar", "title": "Putin offers radar",
     "text": "Vladimir Putin offered the United States joint use of the Gabala radar station in "
             "Azerbaijan instead of the planned radar in the Czech Republic."},
    {"id": "r-whale", "url": "https://news.example/whale", "title": "Whale found",
     "text": "A humpback whale was found stranded near the harbour of Reykjavik on Tuesday, and "
             "volunteers kept it wet until the tide returned."},
    {"id": "r-bank", "url": "https://news.example/bank", "title": "Central bank rates",
     "text": "The central bank of Norway raised its interest rate to 4.5 percent on Thursday, "
             "citing stubborn inflation in services."},
]
QUESTIONS = [
    {"id": "q1", "question": "What did Putin offer instead of the Czech radar?",
     "answer": [["Gabala", "Qabala"], ["Azerbaijan"]], "gold_ids": ["r-radar-copy"],
     "answerable": True, "gold_urls": ["https://mirror.example/radar"], "extra": 1},
    {"id": "q2", "question": "Where was the humpback whale found stranded?",
     "answer": [["Reykjavik"]], "gold_ids": ["r-whale"], "answerable": True},
    {"id": "q3", "question": "To what level did Norway's central bank raise its interest rate?",
     "answer": ["4.5 percent"], "gold_ids": ["r-bank"], "answerable": True},
    {"id": "q4", "question": "Who won the 1962 chess olympiad in Varna?", "answer": None,
     "gold_ids": [], "answerable": False, "kind": "hard_unanswerable"},
    {"id": "q5", "question": "Who kept it wet?", "answer": [["volunteers"]],
     "gold_ids": ["r-whale"], "answerable": True, "kind": "follow_up",
     "history": [{"role": "user", "content": "Where was the humpback whale found stranded?"},
                 {"role": "assistant", "content": "Near the harbour of Reykjavik [1]."}]},
]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n", encoding="utf-8")
    return path


# -- the answer matcher -----------------------------------------------------------------------
def test_matcher_ignores_case_punctuation_and_citation_markers() -> None:
    assert is_correct("It was FACEBOOK, in 2014 [1].", [["Facebook"]])
    assert is_correct("Ashleigh Barty won.", [["Ash Barty", "Ashleigh  Barty"]])
    assert is_correct("Putin proposed Qabala [2], in Azerbaijan.", [["Gabala", "Qabala"],
                                                                 ["Azerbaijan"]])
    assert is_correct("It cost $1,000 in total.", [["1000"]])
    assert is_correct("The U.S.-led deal", [["u s led"]])
    assert is_correct("Café owners", [["cafe"]])
    # Every group must match; a missing one fails.
    assert not is_correct("Putin proposed Qabala.", [["Gabala", "Qabala"], ["Azerbaijan"]])
    # Whole words only, and the [1] marker never counts as the answer "1".
    assert not is_correct("In 2021 it rained [1].", [["1"]])
    assert not is_correct("Facebookers", [["Facebook"]])
    assert not is_correct("anything", None)
    assert normalise("  Hello,   World!! ") == "hello world"


def test_question_file_ignores_unknown_fields_and_normalises_answers(tmp_path: Path) -> None:
    questions = load_questions(write_jsonl(tmp_path / "q.jsonl", QUESTIONS))
    assert [q.id for q in questions] == ["q1", "q2", "q3", "q4", "q5"]
    assert questions[2].answer == [["4.5 percent"]]
    assert questions[0].gold_urls == ["https://mirror.example/radar"]
    assert not questions[3].is_answerable and questions[0].is_answerable
    assert len(load_questions(tmp_path / "q.jsonl", limit=2)) == 2
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "question": "ok"}\n{not json\n')
    with pytest.raises(InvalidInput, match="Line 2"):
        load_questions(tmp_path / "bad.jsonl")
    with pytest.raises(InvalidInput):
        load_questions(tmp_path / "missing.jsonl")


# -- retrieval metrics ------------------------------------------------------------------------
def test_retrieval_metrics_on_known_ranks() -> None:
    assert first_gold_rank(["a", "b", "c"], {"c", "z"}) == 3
    assert first_gold_rank(["a"], {"z"}) is None
    m = retrieval_metrics([1, 3, None, 10])
    assert m["hit@1"] == 0.25 and m["hit@4"] == 0.5 and m["hit@10"] == 0.75
    assert m["mrr@10"] == round((1 + 1 / 3 + 1 / 10) / 4, 4)
    assert m["n_with_gold"] == 4
    assert retrieval_metrics([])["hit@1"] is None


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.5, "p95": 95.0}
    assert percentiles([]) == {"p50": None, "p95": None}


# -- citations --------------------------------------------------------------------------------
def _citation(number: int, chunk_id: str, passage: str, quote: str) -> Citation:
    return Citation(number=number, chunk_id=chunk_id, article_id="a", headline="h", source="s",
                    passage=passage, quote=quote, quote_start=max(passage.find(quote), 0),
                    start=0, end=len(passage), score=0.5)


def test_invalid_citation_counter_on_a_crafted_bad_answer() -> None:
    passage = "Putin offered the Gabala radar. It is in Azerbaijan."
    stored = {"c1": passage, "c2": "Another stored chunk."}
    good = Answer(question="q", standalone_question="q", text="He offered Gabala [1].",
                  citations=[_citation(1, "c1", passage, "Putin offered the Gabala radar.")])
    assert citation_problems(good, stored) == []
    bad = Answer(
        question="q", standalone_question="q", text="Gabala [1]. Azerbaijan [3]. Also [4, 1].",
        citations=[
            _citation(1, "c1", passage, "Putin offered the Gabala radar."),       # valid
            _citation(2, "c1", passage, "Putin offered the Gabala radar."),       # [2] not in text
            _citation(3, "c1", passage, "offered a Czech radar"),                 # invented quote
            _citation(4, "gone", "A passage that was never stored.", "never stored"),
        ])
    problems = citation_problems(bad, stored)
    assert len(problems) == 4, problems
    assert any("[2] is not in the answer text" in p for p in problems)
    assert any("[3] quote is not in its passage" in p for p in problems)
    assert any("[3] quote is not in the stored chunk" in p for p in problems)
    assert any("chunk gone" in p for p in problems)
    dangling = Answer(question="q", standalone_question="q", text="Says so [7].")
    assert citation_problems(dangling, stored) == ["[7] in the text has no citation"]
    assert cited_numbers("a [1] b [2, 3] c [x]") == [1, 2, 3]


def test_answer_metrics_and_threshold_sweep() -> None:
    def row(answerable: bool, refused: bool, correct: bool, gate: float, problems: int = 0,
            total: int = 100.0) -> dict:
        return {"answerable": answerable, "refused": refused, "correct": correct,
                "supported_sentences": 0 if refused else 1, "total_sentences": 0 if refused
                else 2, "citation_problems": ["x"] * problems, "gate_score": gate,
                "timings_ms": {"total_ms": total}}

    rows = [row(True, False, True, 0.8), row(True, False, False, 0.6, problems=2),
            row(True, True, False, 0.3), row(False, True, False, 0.2), row(False, False, False,
                                                                           0.5)]
    m = answer_metrics(rows)
    assert m["answer_accuracy"] == round(1 / 3, 4)
    assert m["false_refusal_rate"] == round(1 / 3, 4)
    assert m["refusal_rate"] == 0.5
    assert m["supported_sentence_rate"] == 0.5
    assert m["invalid_citations"] == 2
    assert m["latency_ms"]["total_ms"]["p50"] == 100.0
    sweep = {s["threshold"]: s for s in threshold_sweep(rows)}
    assert sweep[0.55] == {"threshold": 0.55, "refusal_rate": 1.0,
                           "false_refusal_rate": round(1 / 3, 4)}
    assert sweep[0.3]["refusal_rate"] == 0.5 and sweep[0.3]["false_refusal_rate"] == 0.0


def test_wrong_and_stale_answers_are_counted_per_kind() -> None:
    def row(kind: str, refused: bool, correct: bool, **extra: object) -> dict:
        return {"kind": kind, "answerable": True, "refused": refused, "correct": correct,
                "supported_sentences": 1, "total_sentences": 1, "citation_problems": [],
                "timings_ms": {}, **extra}

    rows = [row("fact", False, True), row("fact", False, False), row("fact", True, False),
            row("latest", False, False, stale=True), row("latest", False, True, stale=False)]
    m = answer_metrics(rows)
    assert m["wrong_answer_rate"] == 0.4 and m["stale_answer_rate"] == 0.5
    kinds = by_kind(rows, answer_metrics)
    assert set(kinds) == {"fact", "latest"}
    assert kinds["fact"]["wrong_answer_rate"] == round(1 / 3, 4)
    assert kinds["fact"]["stale_answer_rate"] is None
    assert kinds["latest"]["stale_answer_rate"] == 0.5


def test_a_follow_up_is_searched_with_the_question_it_follows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    follow_up = {q.id: q for q in load_questions(path)}["q5"]
    assert follow_up.kind == "follow_up" and len(follow_up.history) == 2
    query = searched(follow_up)
    assert query.startswith("Who kept it wet?") and "humpback whale" in query
    assert searched(load_questions(path)[0]) == QUESTIONS[0]["question"]


# -- end to end -------------------------------------------------------------------------------
def test_evaluate_end_to_end_with_the_fake_embedder(tmp_path: Path, fake_settings) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    questions = write_jsonl(tmp_path / "questions.jsonl", QUESTIONS)
    report = evaluate(corpus, questions, fake_settings, ["extractive", "no-such-model"])
    # The duplicate record is one article; its id still maps to it (q1's gold).
    assert report["ingest"]["articles"] == 3
    assert report["retrieval"]["n_with_gold"] == 4
    assert report["hit@10"] == 1.0 and report["dense_baseline"]["hit@10"] == 1.0
    rows = {r["id"]: r for r in report["rows"]}
    assert rows["q2"]["gold_rank"] == 1 and rows["q4"]["gold_rank"] is None
    ext = rows["q1"]["answers"]["extractive"]
    assert ext["citation_problems"] == [] and ext["gate_score"] is not None
    assert report["invalid_citations"] == 0
    assert "error" in report["answerers"]["no-such-model"]
    assert report["answerer"] == "extractive"
    # The index was temporary: nothing left in the configured data dir.
    assert not (fake_settings.data_dir / "chroma").exists()


@pytest.mark.slow
def test_rag_eval_cli_with_the_real_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    questions = write_jsonl(tmp_path / "questions.jsonl", QUESTIONS)
    out = tmp_path / "out" / "report.json"
    args = argparse.Namespace(corpus=str(corpus), questions=str(questions), answerer=None,
                              json_out=str(out), limit=None)
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "| ours (hybrid) |" in printed and "| extractive |" in printed
    assert re.search(r"\| naive langchain \| [01]\.\d{3} \|", printed)
    assert "| follow_up |" in printed and "| hard_unanswerable |" in printed
    report = json.loads(out.read_text())
    for key in ("hit@1", "hit@4", "hit@10", "mrr@10", "answer_accuracy", "refusal_rate",
                "false_refusal_rate", "supported_sentence_rate", "invalid_citations",
                "latency_ms", "ingest_seconds", "rows"):
        assert key in report, key
    assert report["hit@1"] == 1.0
    assert report["invalid_citations"] == 0
    answers = {r["id"]: r["answers"]["extractive"] for r in report["rows"]}
    assert answers["q1"]["correct"], answers["q1"]["text"]
    # The follow-up is asked with its history, and judged per kind.
    assert answers["q5"]["correct"], answers["q5"]["text"]
    assert report["retrieval"]["by_kind"]["follow_up"]["hit@1"] == 1.0
    assert report["answerers"]["extractive"]["by_kind"]["hard_unanswerable"]["refusal_rate"] \
        == 1.0
    # The naive pipeline keeps the two copies of the radar record apart: four chunks.
    naive = report["naive_baseline"]
    assert naive["chunks"] == 4 and naive["n_with_gold"] == 4 and naive["hit@10"] == 1.0
    assert set(report["latency_ms"]) == {"condense_ms", "retrieve_ms", "answer_ms", "total_ms"}


def test_cli_rejects_a_missing_corpus(tmp_path: Path) -> None:
    questions = write_jsonl(tmp_path / "questions.jsonl", QUESTIONS)
    args = argparse.Namespace(corpus=str(tmp_path / "nope.jsonl"), questions=str(questions),
                              answerer=None, json_out=None, limit=None)
    with pytest.raises(InvalidInput, match="does not exist"):
        run_cli(args)
