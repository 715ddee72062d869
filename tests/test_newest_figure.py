"""For 'how many ... now' questions the newest report's figure leads, not the best-scoring one."""

from __future__ import annotations

import datetime as dt

from rag.answering.evidence import SentenceEvidence
from rag.answering.extractive import newest_figure_first
from rag.records import Passage


def _passage(n: int, day: dt.date, headline: str, text: str) -> Passage:
    return Passage(chunk_id=f"c{n}", article_id=f"a{n}", headline=headline, source=f"s{n}",
                   published=day, text=text, start=0, end=len(text))


OLD = _passage(0, dt.date(2025, 5, 2), "Brightline recalls 38,500 heaters",
               "Brightline has recalled 38,500 Ember heaters so far, the company said.")
NEW = _passage(1, dt.date(2025, 7, 14), "Heater recall widens",
               "The agency's first estimate was 20,000 heaters. Brightline's Ember recall now "
               "covers 112,000 heaters, and 4 percent of heaters were repaired.")
OTHER = _passage(2, dt.date(2025, 9, 1), "Coldstream recalls kettles",
                 "Coldstream has recalled 900,000 kettles.")
PASSAGES = [OLD, NEW, OTHER]


def _evidence(passage: int, needle: str, score: float) -> SentenceEvidence:
    text = PASSAGES[passage].text
    start = text.index(needle)
    end = text.index(".", start) + 1
    return SentenceEvidence(passage, start, end, text[start:end], score, 1.0, 1.0, 1.0, True,
                            score)


EVIDENCE = [
    _evidence(0, "Brightline has recalled", 0.85),     # the best match, but two months old
    _evidence(2, "Coldstream", 0.80),                  # newest of all, another company's recall
    _evidence(1, "The agency's first", 0.74),          # a new article restating an old figure
    _evidence(1, "Brightline's Ember", 0.70),          # the current figure
]


def test_the_newest_report_of_the_thing_asked_about_leads() -> None:
    ordered = newest_figure_first("How many Brightline Ember heaters have been recalled?",
                                  EVIDENCE, PASSAGES, 0.9)
    assert "112,000" in ordered[0].text
    assert sorted(map(id, ordered)) == sorted(map(id, EVIDENCE))  # nothing dropped


def test_a_count_is_preferred_to_a_percentage_of_the_same_noun() -> None:
    text = NEW.text
    start = text.index("Brightline's Ember")
    percent = SentenceEvidence(1, start, len(text), "and 4 percent of heaters were repaired.",
                               0.9, 1.0, 1.0, 1.0, True, 0.9)
    counted = _evidence(1, "Brightline's Ember", 0.75)
    ordered = newest_figure_first("How many Brightline heaters were recalled?",
                                  [percent, counted], PASSAGES, 0.9)
    assert ordered[0] is counted


def test_a_figure_far_below_the_best_or_a_question_without_figures_keeps_the_order() -> None:
    weak = [EVIDENCE[0], _evidence(1, "Brightline's Ember", 0.5)]
    assert newest_figure_first("How many Brightline Ember heaters have been recalled?", weak,
                               PASSAGES, 0.9) == weak
    assert newest_figure_first("Who runs Brightline?", EVIDENCE, PASSAGES, 0.9) == EVIDENCE


LATER = _passage(3, dt.date(2025, 9, 30), "What the heater recall says about home safety",
                 "The recall's final count of 150,000 heaters is the largest of the year.")


def test_a_later_piece_that_names_the_thing_elsewhere_in_the_article_still_counts() -> None:
    # Its retrieved chunk says "the recall", and names Brightline's Ember in another paragraph.
    passages = [*PASSAGES, LATER]
    evidence = [*EVIDENCE, SentenceEvidence(3, 0, len(LATER.text), LATER.text, 0.72, 1.0, 1.0,
                                            1.0, True, 0.72)]
    question = "How many Brightline Ember heaters have been recalled?"
    assert "112,000" in newest_figure_first(question, evidence, passages, 0.9)[0].text
    whole = {"a3": "Brightline's Ember heaters caught fire in 40 homes.\n" + LATER.text}
    ordered = newest_figure_first(question, evidence, passages, 0.9,
                                  lambda article_id: whole.get(article_id, ""))
    assert "150,000" in ordered[0].text


def test_the_store_gives_a_whole_article_to_the_extractive_answerer(tmp_path) -> None:
    # Real embedder and Chroma: the newest article names the line only in its first chunk,
    # and only its second chunk is among the two passages retrieved.
    import json

    from rag.assistant import Assistant
    from rag.settings import Settings

    opening = ("FALLOWMERE — The Canal Line light-rail project has been the city's longest "
               "argument. " + "Councillors spent the year arguing over stations and routes. " * 30)
    records = [
        {"id": "old", "title": "Canal Line estimate climbs", "published": "2025-09-17",
         "text": "The estimated cost of the Canal Line light-rail project has risen to $1.37 "
                 "billion, according to a revised engineering study."},
        {"id": "new", "title": "What the light-rail fight says about mid-sized cities",
         "published": "2026-06-15",
         "text": opening + "\n\nThe project's estimated total cost is now $1.41 billion, about "
                 "$124 million per mile."},
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assistant = Assistant(Settings(data_dir=tmp_path / "data", answerer="extractive", top_k=2))
    assistant.ingest([corpus])
    question = "What is the estimated total cost of the Canal Line project?"
    retrieved = assistant.retrieve(question, k=2)
    new_id = next(p.article_id for p in retrieved if p.published == dt.date(2026, 6, 15))
    assert not any("Canal Line" in p.text for p in retrieved if p.article_id == new_id)
    whole = assistant.store.article_text(new_id)
    assert whole.index("Canal Line") < whole.index("$1.41 billion")  # in the article's order
    answer = assistant.ask(question)
    assert not answer.refused and answer.text.startswith("As of 15 June 2026"), answer.text
    assert "$1.41 billion" in answer.text.split("Earlier")[0]
