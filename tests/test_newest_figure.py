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
