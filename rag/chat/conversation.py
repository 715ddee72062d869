"""The chat's conversation state: each question and what came of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from rag.records import Answer, Turn

HISTORY_EXCHANGES = 6  # the follow-up context handed to the assistant


class Exchange(BaseModel):
    """One question of the conversation and what came of it: an Answer or an error."""

    question: str
    answer: Answer | None = None
    error: str | None = None


SAVED_EXCHANGES = 50  # what the browser keeps of a conversation across reloads


def saved(conversation: Sequence[Exchange]) -> list[dict[str, Any]]:
    """The conversation as the browser keeps it (plain JSON), the latest exchanges."""
    return [e.model_dump(mode="json") for e in conversation[-SAVED_EXCHANGES:]]


def restored(data: Any) -> list[Exchange]:
    """A conversation the browser kept; whatever does not read back is left out."""
    out: list[Exchange] = []
    for item in data if isinstance(data, list) else []:
        try:
            out.append(Exchange.model_validate(item))
        except ValueError:
            continue
    return out


def history(conversation: Sequence[Exchange]) -> list[Turn]:
    """The recent answered exchanges as turns, so a follow-up can be understood."""
    turns: list[Turn] = []
    for exchange in conversation[-HISTORY_EXCHANGES:]:
        if exchange.answer is not None:
            turns.append(Turn(role="user", content=exchange.question))
            turns.append(Turn(role="assistant", content=exchange.answer.text))
    return turns
