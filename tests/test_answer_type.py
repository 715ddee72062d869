"""An answer holds what the question asks for: a name, a count, a sum of money."""

from __future__ import annotations

import pytest

from rag.answering.evidence import (
    answer_type,
    counted_noun,
    other_edition,
    other_money,
    other_tenure,
    type_match,
    unranked,
)
from rag.records import Passage


@pytest.mark.parametrize(("question", "kind"), [
    ("Which two installation contractors did the company hire?", "name"),
    ("Which forensic firm did the company bring in?", "name"),
    ("Which contractor carried out the dredging?", "name"),
    ("What engineering firm was hired?", "name"),
    ("What did the company say about the recall?", "other"),  # no name asked for
    ("What happened to the bank?", "other"),
    ("How many patients died?", "number"),
])
def test_the_kind_a_question_asks_for(question: str, kind: str) -> None:
    assert answer_type(question) == kind


@pytest.mark.parametrize(("question", "sentence", "holds"), [
    ("How many patients died within 90 days?",
     "After 90 days, 46.8 percent of patients who took the drug lived independently.", False),
    ("How many patients died within 90 days?", "Twelve patients died within 90 days.", True),
    ("How many patients died within 90 days?", "Of the 884 patients, 31 died.", True),
    ("What percentage of patients recovered?", "46.8 percent of patients recovered.", True),
    ("How much revenue did the airline lose?",
     "Flights stopped on March 16 and resumed three weeks later.", False),
    ("How much revenue did the airline lose?", "The airline lost £4.1 million in revenue.", True),
    ("How much did the council pay for the site?", "The council paid $65 million.", True),
    ("How much rain fell on Tuesday?", "Some 120 millimetres of rain fell.", True),  # not money
    ("How many votes did Tobias Lorne win in Gullmere West?",
     "Tobias Lorne held Gullmere West, while two junior ministers lost their seats.", False),
    ("How many votes did Tobias Lorne win in Gullmere West?",
     "Tobias Lorne won 8,412 votes in Gullmere West.", True),
    ("How many HearthCell battery units are covered?",
     "The recall now covers 112,000 HearthCell units.", True),
])
def test_a_count_is_no_percentage_and_money_is_a_sum(question: str, sentence: str,
                                                     holds: bool) -> None:
    assert (type_match("number", sentence, question) >= 1.0) is holds


@pytest.mark.parametrize(("question", "sentence", "other"), [
    ("How much was Lorimer Paper fined?", "The clean-up bill will reach £9.6 million.", True),
    ("How much was Lorimer Paper fined?", "It must pay a £2 million penalty.", False),
    ("How much was Lorimer Paper fined?", "The agency fined Lorimer £2 million.", False),
    ("How much revenue did the airline lose?", "Sales fell by £4.1 million.", False),
    ("How much revenue did the airline lose?", "Repairs cost £4.1 million.", True),
    ("How much did the council pay for the site?", "The site was sold for $65 million.", False),
    ("Was Lorimer Paper fined?", "The clean-up bill will reach £9.6 million.", False),
])
def test_how_much_of_a_named_kind_of_money(question: str, sentence: str, other: bool) -> None:
    assert other_money(question, sentence) is other


@pytest.mark.parametrize(("question", "sentence", "other"), [
    ("Who was named permanent chief executive?",
     "The board named Leonie Draper as interim chief executive.", True),
    ("Who was named permanent chief executive?",
     "Draper became acting chief executive on Monday.", True),
    ("Who was named permanent chief executive?",
     "The board named Leonie Draper as chief executive on a permanent basis.", False),
    ("Who was named permanent head coach?",
     "She was acting on the club's behalf when it appointed Ines Jaramillo.", False),
    ("Who was named interim chief executive?",
     "The board named Leonie Draper as interim chief executive.", False),
    ("Who was named interim chief executive?",
     "The board named Leonie Draper as permanent chief executive.", True),
    ("Who was named chief executive?",
     "The board named Leonie Draper as interim chief executive.", False),
])
def test_an_interim_post_is_not_the_permanent_one(question: str, sentence: str,
                                                  other: bool) -> None:
    assert other_tenure(question, sentence) is other
    if other:  # nor does the sentence then answer the question, whatever else it holds
        assert type_match(answer_type(question), sentence, question) == 0.0


@pytest.mark.parametrize(("question", "sentence", "other"), [
    ("When was Marvel's Spider-Man released?",
     "Sony has announced that Marvel's Spider-Man 2 will launch globally on 20th October.", True),
    ("When was Marvel's Spider-Man released?", "Marvel's Spider-Man was released in 2018.", False),
    ("When was Xenoblade Chronicles 2 released?",
     "Xenoblade Chronicles 2 was released on December 1, 2017.", False),
    ("When did the Canal Line open?", "Phase two of the Canal Line 3 opened in May.", True),
    ("When did World War II end?", "World War II ended in 1945.", False),
    ("When did phase II of the works end?", "Phase II ended in June.", False),
    ("Who won the Tour de France?", "Egan Bernal won the Tour de France in 2019.", False),
    ("Who won the Tour de France?", "Bernal won the Tour de France 2019.", False),  # a year
    ("Who is the CEO of Apple in 2021?", "Tim Cook became CEO of Apple 10 years ago.", False),
    ("Who is the CEO of Apple?", "Tim Cook has led Apple 10 years.", False),  # counts years
])
def test_a_numbered_title_is_another_edition(question: str, sentence: str, other: bool) -> None:
    assert other_edition(question, sentence) is other


@pytest.mark.parametrize(("question", "sentence", "ranks"), [
    ("Which country won the most medals at the 2018 Winter Olympics?",
     "The United States dominated the snowboard events with gold medals in the halfpipe.", False),
    ("Which country won the most medals at the 2018 Winter Olympics?",
     "Norway topped the medal table with 39 medals.", True),
    ("Which country won the most medals at the 2018 Winter Olympics?",
     "Norway won 39 medals, the most of any country.", True),
    ("Which is the largest shareholder?", "Halvorsen is the largest shareholder.", True),
    ("Which is the largest shareholder?", "Halvorsen holds 12 percent of the shares.", False),
])
def test_the_most_needs_a_sentence_that_ranks(question: str, sentence: str, ranks: bool) -> None:
    assert unranked(question, sentence) is not ranks
    assert not unranked("Which country won medals?", sentence)  # no ranking asked for


@pytest.mark.parametrize(("question", "noun"), [
    ("How many HearthCell battery units are covered by the recall?", "units"),
    ("How many cabinet posts did the party get?", "posts"),
    ("Roughly how many Ripplenest users had their messages exposed?", "users"),
    ("How many years of experience did she have?", "years"),
    ("How many were killed?", None),
])
def test_what_how_many_counts(question: str, noun: str | None) -> None:
    assert counted_noun(question) == noun


TEXT = (
    "OSLO — Norvander Air grounded its fleet of turboprops on the night of March 16 after a "
    "cracked wing spar was found during a routine check.\n\n"
    "The airline said the grounding had hurt it badly and that revenue had fallen sharply, "
    "without giving a figure. In the trial of the new inspection regime, 46.8 percent of "
    "the aircraft checked showed no wear at all.\n\n"
    "Flights resumed on April 6, three weeks after the grounding, once every aircraft had "
    "been inspected."
)
PASSAGE = Passage(chunk_id="c1", article_id="a1", headline="Norvander Air grounds its fleet",
                  source="https://news.example/norvander", text=TEXT, start=0, end=len(TEXT))


@pytest.mark.parametrize("question", [
    "How much revenue did Norvander Air lose because of the grounding?",
    "How much was Norvander Air fined because of the grounding?",
    "Which engineering firm inspected the Norvander Air aircraft?",
    "How many pilots did Norvander Air suspend after the grounding?",
])
def test_an_on_topic_article_without_the_answer_is_refused(question: str,
                                                           real_settings) -> None:
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.embeddings import make_embedder

    answerer = ExtractiveAnswerer(make_embedder(real_settings), real_settings)
    *_, draft = answerer.stream(question, [PASSAGE])
    assert draft.refused, draft.text


def test_the_same_article_still_answers_what_it_says(real_settings) -> None:
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.embeddings import make_embedder

    answerer = ExtractiveAnswerer(make_embedder(real_settings), real_settings)
    *_, draft = answerer.stream("When did Norvander Air flights resume?", [PASSAGE])
    assert not draft.refused and "April 6" in draft.text


SEQUEL_TEXT = ("Sony has announced that Marvel's Spider-Man 2 will launch globally for PS5 on "
               "20th October, 2023. The sequel follows Peter Parker and Miles Morales through "
               "New York.")
SEQUEL = Passage(chunk_id="c2", article_id="a2", headline="Spider-Man 2 release date",
                 source="https://news.example/spider-man", text=SEQUEL_TEXT, start=0,
                 end=len(SEQUEL_TEXT))


def test_a_sequels_date_is_not_the_original_games(real_settings) -> None:
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.embeddings import make_embedder

    answerer = ExtractiveAnswerer(make_embedder(real_settings), real_settings)
    *_, draft = answerer.stream("When was Marvel's Spider-Man released?", [SEQUEL])
    assert draft.refused, draft.text
    *_, draft = answerer.stream("When does Marvel's Spider-Man 2 launch?", [SEQUEL])
    assert not draft.refused and "20th October" in draft.text


def test_a_written_count_may_leave_the_noun_to_its_cited_sentence() -> None:
    from rag.answering.evidence import claim_kind_match

    question = "How many votes did Tobias Lorne win in Gullmere West?"
    assert claim_kind_match("number", "Tobias Lorne won 8,412 [1].", question)
    assert type_match("number", "Tobias Lorne won 8,412.", question) == 0.0
