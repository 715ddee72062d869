"""A citation quotes what was cited and nothing between: sentences of one passage that are
apart get a number each (rag.answering.base.Quotes), for both answerers' drafts."""

from __future__ import annotations

from test_generation import PASSAGES, RADAR

from rag.answering.base import Quotes
from rag.answering.citations import CitationChecker
from rag.answering.evidence import EvidenceScorer
from rag.embeddings import FakeEmbedder

FIRST = "Bush wants the missile shield to protect against Iran's growing nuclear and missile " \
        "capabilities."
LAST = "Bush has not formally responded to the proposal."


def _span(sentence: str) -> tuple[int, int]:
    start = RADAR.index(sentence)
    return start, start + len(sentence)


def test_sentences_apart_get_their_own_numbers_and_touching_ones_share_one() -> None:
    quotes = Quotes(PASSAGES)
    first, last = _span(FIRST), _span(LAST)
    middle = (first[1] + 1, last[0] - 1)
    assert quotes.number(0, *first, 0.9) == 1
    assert quotes.number(1, 0, 20, 0.8) == 2  # another passage
    assert quotes.number(0, *last, 0.7) == 3  # the same passage, two sentences further on
    assert quotes.number(0, *first, 0.5) == 1  # cited again
    cites = quotes.citations()
    assert [c.quote for c in cites] == [FIRST, PASSAGES[1].text[:20], LAST]
    assert quotes.number(0, *middle, 0.6) == 1  # touches both: they become one quote
    assert quotes.citations()[0].quote == RADAR[first[0]:middle[1]]


def test_a_checked_answer_quotes_each_cited_sentence_not_the_text_between(fake_settings) -> None:
    checker = CitationChecker(EvidenceScorer(FakeEmbedder()), check_answers=False)
    draft = checker.check(f"{FIRST[:-1]} [1]. {LAST[:-1]} [1].",
                          "What does Bush want, and has he answered?", PASSAGES)
    assert not draft.refused, draft.text
    assert [c.quote for c in draft.citations] == [FIRST, LAST]
    assert draft.text == f"{FIRST} [1] {LAST} [2]"
    assert all("Putin countered" not in c.quote for c in draft.citations)
