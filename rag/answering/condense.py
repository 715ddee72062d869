"""Turning a follow-up into a question that can be searched on its own, without a model."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answering.evidence import content_terms
from rag.answering.markers import MARKER
from rag.records import Turn

_FOLLOW_UP = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|and what|why)\b"
    r"|\b(he|she|it|they|him|her|his|hers|its|their|them|this|that|these|those|there)\b",
    re.I,
)


_MARK = " (following: "


def split_follow_up(standalone: str) -> tuple[str, str]:
    """The question itself and the earlier question it follows ('' when none)."""
    if standalone.endswith(")") and _MARK in standalone:
        head, _, tail = standalone.partition(_MARK)
        return head, tail[:-1]
    return standalone, ""


def last_user_question(history: Sequence[Turn]) -> str | None:
    """The most recent question the user asked, if any."""
    for turn in reversed(history):
        if turn.role == "user" and turn.content.strip():
            return turn.content.strip()
    return None


# A person's name: two or more capitalised words ("Priya Eshani", "Rafael Esteban", "Leonie
# Draper"), a title before it left out ("Dr.", "Captain", "Premier").
_PERSON = re.compile(r"\b[A-Z][a-z'’-]+(?:\s+(?:[A-Z]\.\s+)?[A-Z][a-z'’-]+)+")
_TITLE = re.compile(r"^(?:(?:Dr|Mr|Mrs|Ms|Prof|Captain|Premier|Mayor|Councillor|Councilmember|"
                    r"Commissioner|Judge|Justice|President|Minister|Senator|Chief|Director|"
                    r"Coach|Sir|Dame|The|A|An)\.?\s+)+")
_PERSONAL = re.compile(r"\b(he|she|him|his|her|hers)\b", re.I)


def _named_person(answer: str, question: str) -> str | None:
    """The first person the answer names that the question it answers did not."""
    asked = content_terms(question)
    for match in _PERSON.finditer(MARKER.sub("", answer)):
        words = _TITLE.sub("", match.group(0)).split()
        while words and content_terms(words[0]) == set():  # "In Kennebunkport": a stopword
            words = words[1:]
        name = " ".join(words)
        if len(name.split()) >= 2 and not content_terms(name) <= asked:
            return name
    return None


def resolve_person(question: str, history: Sequence[Turn]) -> str:
    """'Which committee does she chair?' after an answer naming Priya Eshani asks about her.

    The first he/she/him/his/her of the question becomes the person the last answer named
    (and the question before it did not), so search and scoring look for that person rather
    than anyone else the passages mention. A question with no such pronoun, or an answer
    that names no new person, is kept as it is.
    """
    previous = last_user_question(history)
    answer = next((t.content for t in reversed(history) if t.role == "assistant"), "")
    pronoun = _PERSONAL.search(question)
    if not pronoun or not previous or not answer:
        return question
    name = _named_person(answer, previous)
    if name is None:
        return question
    word = pronoun.group(1).lower()
    after = question[pronoun.end():].lstrip()
    nextword = re.match(r"[\w'’-]+", after)
    possessive = word in ("his", "hers") or (
        word == "her" and nextword is not None and nextword.group(0).lower() not in _OBJECT_END)
    replacement = f"{name}'s" if possessive else name
    return question[:pronoun.start()] + replacement + question[pronoun.end():]


# Words after "her" that show it is an object ("told her about"), not a possessive ("her club").
_OBJECT_END = frozenset({"about", "after", "and", "as", "at", "before", "by", "for", "from",
                         "in", "into", "of", "on", "over", "to", "with", "when", "while",
                         "that", "the", "a", "an", "up", "down", "out", "off", "back"})


def heuristic_condense(question: str, history: Sequence[Turn] | None) -> str:
    """Keep a self-contained question; give a follow-up the previous question as context.

    A he/she of the follow-up becomes the person the previous answer named.
    """
    question = question.strip()
    previous = last_user_question(history or [])
    if not previous or previous == question:
        return question
    if _FOLLOW_UP.search(question) or not content_terms(question):
        return f"{resolve_person(question, history or [])}{_MARK}{previous})"
    return question
