"""News-aware ranking: whole-article BM25, the best sentence, and the newest report of a story
first for a figure.

The real embedding model and real Chroma; the articles are invented, like ../shared/eval/newsroom.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from rag.answering.evidence import EvidenceScorer, SentenceEvidence
from rag.answering.extractive import newest_figure_first
from rag.assistant import Assistant
from rag.records import Passage
from rag.retrieval.lexical import LexicalIndex
from rag.retrieval.recency import asks_for_figure, newest_first
from rag.settings import Settings

FILLER = ("Dealers said customers had been patient, and the company said it was working with "
          "regulators and suppliers on the next steps. ")
STORY = [
    {"id": "first", "url": "https://wire.example/1", "published": "2025-03-02",
     "title": "Pellham Motors recalls 12,000 Vesta scooters over battery fires",
     "text": "Pellham Motors is recalling 12,000 Vesta electric scooters after three battery "
             "fires, the company said on Sunday. " + FILLER * 3},
    {"id": "second", "url": "https://wire.example/2", "published": "2025-05-19",
     "title": "Pellham widens Vesta recall",
     "text": "Pellham Motors widened its recall of Vesta scooters to 30,000 units on Monday after "
             "more fire reports. " + FILLER * 3},
    {"id": "third", "url": "https://review.example/3", "published": "2025-11-04",
     "title": "Pellham Motors Vesta recall: what went wrong",
     "text": "Eight months on, the company's troubles are far from over. " + FILLER
             + "The recall of Vesta scooters now covers 41,500 units, Pellham Motors said. "
             + FILLER * 2},
    {"id": "other", "url": "https://wire.example/4", "published": "2025-12-01",
     "title": "Harbour ferry timetable changes",
     "text": "The harbour ferry will run every twenty minutes from January. " + FILLER},
]


def test_figure_questions_are_told_apart_from_others() -> None:
    for question in ("How many Vesta scooters has Pellham recalled?",
                     "How much did the bridge cost?",
                     "What is the estimated total cost of the Canal Line?",
                     "What was the death toll of the storm?"):
        assert asks_for_figure(question), question
    for question in ("Who said the recall was a mistake?", "Which firm was hired?",
                     "Why did the minister resign?", "Where did the plane land?"):
        assert not asks_for_figure(question), question


def test_newest_first_keeps_undated_articles_last_in_their_order() -> None:
    days = {"a": "2025-01-01", "b": "2025-12-31", "c": None, "d": "2025-06-01", "e": None}
    passages = [Passage(chunk_id=f"{aid}:{n}", article_id=aid, headline="", source=aid,
                        published=dt.date.fromisoformat(day) if day else None, text="x",
                        start=0, end=1)
                for aid, day in days.items() for n in range(2)]
    assert newest_first(passages) == {"b": 0, "d": 1, "a": 2, "c": 3, "e": 4}


def test_article_bm25_finds_an_article_whose_words_are_spread_over_its_chunks() -> None:
    metas = [{"article_id": "spread", "index": i, "headline": "Council notes"} for i in range(3)]
    metas.append({"article_id": "single", "index": 0, "headline": "Mayor speaks"})
    texts = ["Mayor Idris Velloway opened the meeting.", "The Tamsin bridge was discussed.",
             "An audit by Corbel and Finch was approved.", "Mayor Idris Velloway spoke at length."]
    index = LexicalIndex([f"c{i}" for i in range(4)], texts, metas, "g1")
    query = "Velloway Tamsin bridge audit"
    assert [aid for aid, _ in index.search_articles(query, 2)] == ["spread", "single"]
    only_single = np.array([False, False, False, True])
    assert [aid for aid, _ in index.search_articles(query, 2, only_single)] == ["single"]
    assert index.search_articles("zeppelin", 2) == []


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    folder = tmp_path_factory.mktemp("story")
    corpus = folder / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in STORY), encoding="utf-8")
    assistant = Assistant(Settings(data_dir=folder / "data", answerer="extractive"))
    assert assistant.ingest([corpus]).added == len(STORY)
    return assistant


def _without_recency(assistant: Assistant) -> Assistant:
    settings = assistant.settings.model_copy(update={"recency_weight": 0.0})
    return Assistant(settings, embedder=assistant.embedder)


def test_a_figure_question_gets_the_newest_report_of_the_story_first(story: Assistant) -> None:
    question = "How many Vesta scooters has Pellham Motors recalled?"
    newest = "https://review.example/3"

    def place(assistant: Assistant) -> int:
        return [p.source for p in assistant.retrieve(question, k=3)].index(newest)

    # Without the recency signal the first report, whose sentence matches best, comes first;
    # with it, the newest report of the story moves up, and the older ones still follow.
    assert _without_recency(story).retrieve(question, k=3)[0].source == "https://wire.example/1"
    assert place(story) < place(_without_recency(story))
    assert {p.source for p in story.retrieve(question, k=3)} == {
        "https://wire.example/1", "https://wire.example/2", newest}
    # The answer leads with the newest figure; an older one is marked as earlier.
    answer = story.ask(question)
    assert answer.text.startswith("As of 4 November 2025: ") and not answer.refused
    assert answer.text.index("41,500") < answer.text.find("Earlier (") or \
        "12,000" not in answer.text


def test_other_questions_are_ranked_without_regard_to_dates(story: Assistant) -> None:
    question = "Why did Pellham Motors recall its Vesta scooters?"
    assert [p.chunk_id for p in story.retrieve(question, k=4)] == \
        [p.chunk_id for p in _without_recency(story).retrieve(question, k=4)]


def _evidence(passage: int, text: str, score: float) -> SentenceEvidence:
    return SentenceEvidence(passage, 0, len(text), text, score, 0.5, 0.5, 1.0, True, score)


def _passage(aid: str, published: str, text: str) -> Passage:
    return Passage(chunk_id=f"{aid}:0", article_id=aid, headline="Recall", source=aid,
                   published=dt.date.fromisoformat(published), text=text, start=0,
                   end=len(text))


def test_the_extractive_answer_to_a_figure_question_leads_with_the_newest_figure() -> None:
    old = "Pellham is recalling 12,000 scooters."
    new = "The recall now covers 41,500 scooters."
    passages = [_passage("a", "2025-03-02", old), _passage("b", "2025-11-04", new)]
    evidence = [_evidence(0, old, 0.80), _evidence(1, new, 0.75)]
    got = newest_figure_first("How many scooters are recalled?", evidence, passages, 0.9)
    assert [e.text for e in got] == [new, old]
    # Not nearly as good: the best keeps its place.
    weaker = [_evidence(0, old, 0.80), _evidence(1, new, 0.60)]
    assert newest_figure_first("How many scooters are recalled?", weaker, passages, 0.9) \
        == weaker
    # Not a question about a figure: the order by score stands.
    assert newest_figure_first("Who is recalling scooters?", evidence, passages, 0.9) == evidence


def test_reranking_hands_the_gate_the_evidence_it_already_computed(
        story: Assistant, tmp_path: Path) -> None:
    # The unquantized encoder: its vectors do not depend on what else is in the batch.
    exact = Assistant(story.settings.model_copy(update={
        "embedding_quantize": False, "data_dir": tmp_path / "exact"}))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in STORY), encoding="utf-8")
    exact.ingest([corpus])
    question = "Why did Pellham Motors recall its Vesta scooters?"
    chosen = exact.retrieve(question, k=2)
    remembered = exact.scorer.score(question, chosen)
    fresh = EvidenceScorer(exact.embedder)._score(question, chosen, "")
    # The same sentences, numbered by the chosen passages, with the same scores.
    mine = {(e.passage, e.start, e.text): e.score for e in remembered}
    theirs = {(e.passage, e.start, e.text): e.score for e in fresh}
    assert mine.keys() == theirs.keys() and mine
    assert all(abs(mine[key] - theirs[key]) < 1e-4 for key in mine)


@pytest.mark.parametrize("sentence", [
    "The board agreed to hire forty more crane drivers.",
    "Twenty-five ships waited outside the breakwater.",
    "Dozens of families were moved.",
    "It cost 1.2 million crowns.",
])
def test_figures_in_words_answer_a_how_many_question(sentence: str) -> None:
    from rag.answering.evidence import type_match

    assert type_match("number", sentence, "How many were there?") == 1.0


def test_a_sentence_without_a_figure_does_not_answer_how_many() -> None:
    from rag.answering.evidence import type_match

    assert type_match("number", "The board agreed to hire more crane drivers.",
                      "How many crane drivers will it hire?") == 0.0
