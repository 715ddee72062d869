"""Question files: JSON Lines ``{id, question, answer, gold_ids, answerable}``.

This is the format of ``shared/eval/rgb``; unknown fields are ignored. ``answer`` is a list of
groups of aliases: an answer is right when it contains an alias of every group, ignoring case
and punctuation.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag.errors import InvalidInput
from rag.records import Turn


class Question(BaseModel):
    """One evaluation question; fields other than these (e.g. ``gold_urls``) are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str
    question: str = Field(min_length=1)
    answer: list[list[str]] | None = None
    gold_ids: list[str] = Field(default_factory=list)
    gold_urls: list[str] = Field(default_factory=list)
    answerable: bool | None = None
    kind: str | None = Field(default=None, description="fact, latest, follow_up, ...")
    history: list[Turn] = Field(default_factory=list, description="Earlier turns, oldest first.")
    stale: list[str] = Field(default_factory=list,
                             description="Older figures that are wrong now (kind 'latest').")
    today: dt.date | None = Field(default=None, description=(
        "The date the question is asked on ('this week' counts from it); default: today."))

    @field_validator("id", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("answer", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        """A bare string is one alias; a string inside the list is a one-alias group."""
        if value is None or value == []:
            return None
        if isinstance(value, (str, int, float)):
            return [[str(value)]]
        if isinstance(value, list):
            return [[str(a) for a in g] if isinstance(g, list) else [str(g)] for g in value]
        return value

    @field_validator("stale", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value

    @property
    def is_answerable(self) -> bool:
        """Explicit flag when given, else whether an answer is."""
        return self.answerable if self.answerable is not None else self.answer is not None


def load_questions(path: str | Path, limit: int | None = None) -> list[Question]:
    """Read a JSON Lines question file; a bad line is an error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"The question file {path} does not exist.")
    out: list[Question] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Question.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise InvalidInput(f"Line {number} of {path} is not a valid question "
                               f"({exc.__class__.__name__}).") from exc
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise InvalidInput(f"The question file {path} has no questions.")
    return out
