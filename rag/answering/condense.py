"""Turning a follow-up into a question that can be searched on its own, without a model."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answering.evidence import content_terms
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


def heuristic_condense(question: str, history: Sequence[Turn] | None) -> str:
    """Keep a self-contained question; give a follow-up the previous question as context."""
    question = question.strip()
    previous = last_user_question(history or [])
    if not previous or previous == question:
        return question
    if _FOLLOW_UP.search(question) or not content_terms(question):
        return f"{question}{_MARK}{previous})"
    return question
