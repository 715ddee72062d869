"""'Who said "..."?': the speaker the article names beside the quote, found mechanically.

News attributes a quote in the same paragraph: '"...," Kettering said.', 'said Dr. Acheson',
or 'Kettering said. "..."' before a second quoted stretch. The similarity of sentences cannot
tell the speaker from the quote (the quote's own sentence scores best and names nobody), so a
question that quotes words and asks who said them is answered by finding those exact words in a
passage and the nearest attribution in their paragraph, the one after the quote first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answering.evidence import content_terms
from rag.records import Passage

_QUOTED = re.compile(r"[\"“‘']([^\"“”‘’']{8,}?)[\"”’'](?=[\s?.,!;:)]|$)")
_VERB = (r"(?:said|says|told|added|warned|wrote|argued|insisted|explained|declared|stated|"
         r"recalled|admitted|noted|cautioned|conceded|called|described)")
_ASKS_WHO = re.compile(rf"\b(?:who|whom)\b|\bwhich\b(?:\s+[\w-]+){{1,4}}?\s+{_VERB}\b", re.I)
_NAME = r"(?P<name>(?:[A-Z][\w'’.-]*\.?\s+){0,3}[A-Z][\w'’-]+)"
_AFTER = [re.compile(rf"^[,.!?…]?[\"”’]?\s*(?:[a-z][\w'’-]*\s+){{0,4}}?{_NAME}"
                     rf"(?:,[^,\"“”]{{1,80}},)?\s+{_VERB}\b"),
          re.compile(rf"^[,.!?…]?[\"”’]?\s*{_VERB}\s+(?:[a-z][\w-]*\s+){{0,5}}?{_NAME}")]
_BEFORE = re.compile(rf"{_NAME}(?:,[^,\"“”]{{1,80}},)?\s+{_VERB}(?:\s+[\w'’-]+){{0,3}}?"
                     rf"[.:,]?\s*[\"“]?\s*$")
_WORDS = re.compile(r"[\w]+")
_NOT_NAMES = {"He", "She", "They", "It", "We", "I", "The", "This", "That", "But", "And"}


@dataclass(frozen=True)
class Attribution:
    """Who said it, and the stretch of the passage that shows it (quote and speaker)."""

    passage: int
    speaker: str
    quote: str
    start: int
    end: int


def quoted_words(question: str) -> list[str]:
    """The longest quoted phrase of the question, as lower-case words (or [])."""
    phrases = [m.group(1) for m in _QUOTED.finditer(question)]
    if not phrases or not _ASKS_WHO.search(question):
        return []
    words = _WORDS.findall(max(phrases, key=len).lower().replace("’", "'"))
    return words if len(words) >= 2 else []


def _find(words: list[str], text: str) -> tuple[int, int] | None:
    """Where ``words`` occur in ``text`` one after another (case and punctuation aside)."""
    tokens = [(m.group(0).lower(), m.start(), m.end()) for m in _WORDS.finditer(
        text.replace("’", "'"))]
    for i in range(len(tokens) - len(words) + 1):
        if all(tokens[i + j][0] == w for j, w in enumerate(words)):
            return tokens[i][1], tokens[i + len(words) - 1][2]
    return None


def _paragraph(text: str, start: int, end: int) -> tuple[int, int]:
    left = text.rfind("\n\n", 0, start)
    right = text.find("\n\n", end)
    return (0 if left < 0 else left + 2), (len(text) if right < 0 else right)


def _clean(name: str) -> str | None:
    parts = name.split()
    while parts and parts[0] in _NOT_NAMES:
        parts.pop(0)
    return " ".join(parts) or None


def _full_name(short: str, text: str) -> str:
    """'Kettering' -> 'Sam Kettering' when the passage names him in full."""
    best = short
    for match in re.finditer(rf"((?:[A-Z][\w'’.-]*\.?\s+){{1,3}}){re.escape(short)}\b", text):
        candidate = _clean(match.group(0).strip()) or short
        if len(candidate) > len(best):
            best = candidate
    return best


def _speaker_near(text: str, start: int, end: int, question: str) -> tuple[str, int, int] | None:
    """The speaker named in the quote's paragraph: (name, span start, span end)."""
    para_start, para_end = _paragraph(text, start, end)
    asked = content_terms(question)
    # The quotation ends at the next closing mark: an attribution follows it.
    marks = [at + 1 for mark in ("”", '"') if (at := text.find(mark, end, para_end)) >= 0]
    closing = min(marks, default=end)
    for pattern in _AFTER:
        found = pattern.search(text[closing:para_end])
        if found:
            name = _clean(found.group("name"))
            if name and not content_terms(name) <= asked:
                sentence_end = text.find(".", closing + found.end())
                stop = para_end if sentence_end < 0 else min(sentence_end + 1, para_end)
                return name, start, stop
    before = text[para_start:start]
    opening = max(before.rfind("“"), before.rfind('"'))
    head = before[:opening] if opening >= 0 else before
    found = _BEFORE.search(head)
    if found:
        name = _clean(found.group("name"))
        if name and not content_terms(name) <= asked:
            return name, para_start + found.start(), end
    return None


def attribution(question: str, passages: Sequence[Passage]) -> Attribution | None:
    """The speaker of the words the question quotes, if a passage has them and names one."""
    words = quoted_words(question)
    if not words:
        return None
    for index, passage in enumerate(passages):
        where = _find(words, passage.text)
        if where is None:
            continue
        found = _speaker_near(passage.text, *where, question)
        if found is None:
            continue
        name, start, end = found
        # The quoted sentence itself, from its opening mark (or sentence start).
        text = passage.text
        opening = max(text.rfind("“", 0, where[0]), text.rfind('"', 0, where[0]),
                      text.rfind(". ", 0, where[0]) + 1)
        quote_start = max(opening, _paragraph(text, *where)[0])
        sentence_end = text.find(".", where[1])
        quote_end = len(text) if sentence_end < 0 else sentence_end + 1
        span_start, span_end = min(start, quote_start), max(end, quote_end)
        return Attribution(index, _full_name(name, text), text[quote_start:quote_end].strip(),
                           span_start, span_end)
    return None
