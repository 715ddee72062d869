"""A follow-up's he/she is the person the previous answer named, not anyone the passages name."""

from __future__ import annotations

import pytest

from rag.answering.condense import heuristic_condense, resolve_person, split_follow_up
from rag.records import Passage, Turn

ASKED = "Which councillor represents the Riverside district?"
ANSWERED = "Councillor Priya Eshani represents Riverside, where two stations were cut. [1]"
HISTORY = [Turn(role="user", content=ASKED), Turn(role="assistant", content=ANSWERED)]


@pytest.mark.parametrize(("question", "resolved"), [
    ("Which committee does she chair?", "Which committee does Priya Eshani chair?"),
    ("What did her report say?", "What did Priya Eshani's report say?"),
    ("Who told her about the cuts?", "Who told Priya Eshani about the cuts?"),
    ("How long has he served?", "How long has Priya Eshani served?"),
])
def test_the_pronoun_becomes_the_person_the_answer_named(question: str, resolved: str) -> None:
    standalone = heuristic_condense(question, HISTORY)
    assert split_follow_up(standalone) == (resolved, ASKED)


def test_a_title_is_left_out_and_a_person_of_the_question_is_not_taken() -> None:
    history = [Turn(role="user", content="Whom did Mayor Tom Reyes appoint to the board?"),
               Turn(role="assistant", content="Mayor Tom Reyes appointed Dr. Rafael Esteban.")]
    assert resolve_person("Where does he work?", history) == "Where does Rafael Esteban work?"


@pytest.mark.parametrize("answer", ["The indexed articles don't say.", "In Kennebunkport, Maine."])
def test_without_a_named_person_the_question_is_kept(answer: str) -> None:
    history = [Turn(role="user", content=ASKED), Turn(role="assistant", content=answer)]
    assert resolve_person("Which committee does she chair?", history) == (
        "Which committee does she chair?")
    assert resolve_person("What was cut there?", HISTORY) == "What was cut there?"


TEXT = (
    "The council approved the Canal Line budget on Tuesday after a six-hour debate.\n\n"
    "Councillor Devinder Chaudhry, who chairs the finance committee, said the cuts to the "
    "Riverside district's stations were painful but unavoidable.\n\n"
    "Priya Eshani, first elected in 2019, chairs the budget committee and voted against the "
    "plan."
)
PASSAGE = Passage(chunk_id="c1", article_id="a1", headline="Council approves Canal Line budget",
                  source="https://news.example/canal", text=TEXT, start=0, end=len(TEXT))


def test_the_extractive_answer_is_about_the_person_asked_about(real_settings) -> None:
    """Real encoder: 'she' resolved picks Eshani's committee, not the other councillor's."""
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.embeddings import make_embedder

    answerer = ExtractiveAnswerer(make_embedder(real_settings), real_settings)
    standalone = answerer.condense("Which committee does she chair?", HISTORY)
    *_, draft = answerer.stream(standalone, [PASSAGE])
    assert not draft.refused
    assert "budget committee" in draft.text and "Chaudhry" not in draft.text
