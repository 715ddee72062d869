"""The chat's conversation state: each question and what came of it."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from rag.records import Answer, Turn

HISTORY_EXCHANGES = 6  # the follow-up context handed to the assistant


class Exchange(BaseModel):
    """One question of the conversation and what came of it: an Answer or an error."""

    question: str
    answer: Answer | None = None
    error: str | None = None


def history(conversation: Sequence[Exchange]) -> list[Turn]:
    """The recent answered exchanges as turns, so a follow-up can be understood."""
    turns: list[Turn] = []
    for exchange in conversation[-HISTORY_EXCHANGES:]:
        if exchange.answer is not None:
            turns.append(Turn(role="user", content=exchange.question))
            turns.append(Turn(role="assistant", content=exchange.answer.text))
    return turns
