"""'Who said "..."?' is answered with the speaker the passage names beside those words."""

from __future__ import annotations

import pytest

from rag.answering.attribution import attribution, quoted_words
from rag.records import Passage

TEXT = (
    "HARBOURTON — The port authority voted on Tuesday to close the north quay for repairs.\n\n"
    "\"We cannot keep patching a wall that is falling into the sea,\" said Lena Ortiz, the "
    "authority's chief engineer. She put the cost at 4 million crowns.\n\n"
    "Fishing skipper Tomas Berg was less patient. \"They have known about this for ten years,\" "
    "Berg said. \"Nobody listened until the crane tipped.\"\n\n"
    "Harbour master Ruth Adeyemi, who chairs the safety board, told reporters: \"Closing the "
    "quay is the only responsible choice.\"\n\n"
    "\"The ferries will run as usual,\" the operator Nordlink, a subsidiary of Vessa Group, "
    "said in a statement.\n\n"
    "A notice on the gate read \"no entry after dark\"."
)
PASSAGE = Passage(chunk_id="c1", article_id="a1", headline="North quay to close for repairs",
                  source="https://port.example/quay", text=TEXT, start=0, end=len(TEXT))


@pytest.mark.parametrize(("question", "speaker"), [
    ("Who said they 'cannot keep patching a wall that is falling into the sea'?", "Lena Ortiz"),
    ("Who said that 'nobody listened until the crane tipped'?", "Tomas Berg"),  # said before
    ("Who said 'they have known about this for ten years'?", "Tomas Berg"),
    ("Which official told reporters closing the quay was 'the only responsible choice'?",
     "Ruth Adeyemi"),
    ("Who said the ferries 'will run as usual'?", "Nordlink"),
])
def test_the_speaker_beside_the_quoted_words(question: str, speaker: str) -> None:
    found = attribution(question, [PASSAGE])
    assert found is not None and speaker in found.speaker
    shown = TEXT[found.start:found.end]
    assert speaker.split()[-1] in shown  # the cited stretch shows who said it


@pytest.mark.parametrize("question", [
    "Who said the quay 'will reopen next spring'?",        # words no passage holds
    "Who wrote 'no entry after dark' on the gate?",         # quoted, but nobody is named
    "What did Lena Ortiz say about the 'north quay'?",      # not a question about who
    "Who voted to close the north quay?",                   # nothing quoted
])
def test_no_attribution_without_the_words_and_a_named_speaker(question: str) -> None:
    assert attribution(question, [PASSAGE]) is None


def test_a_name_the_question_gives_is_not_the_answer() -> None:
    question = "Who did Berg say 'have known about this for ten years'?"
    found = attribution(question, [PASSAGE])
    assert found is None or "Berg" not in found.speaker


def test_quoted_words_need_a_who_question() -> None:
    assert quoted_words("Who said 'a fresh start'?") == ["a", "fresh", "start"]
    assert quoted_words("Why did she call it 'a fresh start'?") == []


def test_the_extractive_answer_names_the_speaker_and_cites_the_stretch(data_dir) -> None:
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.embeddings import FakeEmbedder
    from rag.settings import Settings

    answerer = ExtractiveAnswerer(FakeEmbedder(), Settings(data_dir=data_dir))
    *_, draft = answerer.stream("Who said that 'nobody listened until the crane tipped'?",
                                [PASSAGE])
    assert draft.text.startswith("Fishing skipper Tomas Berg: ") or \
        draft.text.startswith("Tomas Berg: ")
    assert draft.citations[0].quote in TEXT and "Berg said" in draft.citations[0].quote
