"""Judging one answer: is it right, and is every citation real."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from rag.answering.markers import cited_numbers, strip_markers
from rag.records import Answer

_DIGIT_GROUP = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")


def normalise(text: str) -> str:
    """Lower-case, accents folded, punctuation and symbols as spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    text = _DIGIT_GROUP.sub("", text.lower())  # 1,000 == 1000
    text = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text)
    return " ".join(text.split())


def is_correct(text: str, groups: Sequence[Sequence[str]] | None) -> bool:
    """True when ``text`` contains (as whole words) an alias of every group of ``groups``."""
    if not groups:
        return False
    haystack = f" {normalise(strip_markers(text))} "
    return all(any(f" {normalise(alias)} " in haystack for alias in group if normalise(alias))
               for group in groups)


def mentions_any(text: str, aliases: Sequence[str]) -> bool:
    """True when ``text`` contains (as whole words) any of ``aliases``."""
    return any(is_correct(text, [[alias]]) for alias in aliases)


def citation_problems(answer: Answer, stored: Mapping[str, str]) -> list[str]:
    """Why each invalid citation of ``answer`` is invalid (empty when all are valid).

    ``stored`` maps chunk ids to the chunk text in the index. A citation is invalid when its
    [n] is not in the text, its quote is empty or not in its passage, or its chunk is not stored
    (or the quote is not in the stored chunk); an [n] in the text without a citation is one too.
    """
    problems: list[str] = []
    markers = set(cited_numbers(answer.text))
    numbers = set()
    for cite in answer.citations:
        numbers.add(cite.number)
        if cite.number not in markers:
            problems.append(f"[{cite.number}] is not in the answer text")
        if not cite.quote.strip() or cite.quote not in cite.passage:
            problems.append(f"[{cite.number}] quote is not in its passage")
        if cite.chunk_id not in stored:
            problems.append(f"[{cite.number}] cites chunk {cite.chunk_id}, which is not stored")
        elif cite.quote not in stored[cite.chunk_id]:
            problems.append(f"[{cite.number}] quote is not in the stored chunk")
    for number in sorted(markers - numbers):
        problems.append(f"[{number}] in the text has no citation")
    return problems
