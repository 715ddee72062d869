"""The ``[n]`` citation marker: one definition for the checker, the front ends and evaluation.

Answers carry ``[1]``, ``[2][3]``; what a model writes is read more leniently ("[1, 3]",
"[2-4]", "[passage 2]") and rewritten into that form.
"""

from __future__ import annotations

import re

MARKER = re.compile(
    r"\[\s*(?:(?:passages?|sources?|articles?|docs?|documents?)\s*)?"
    r"(\d{1,3}(?:\s*(?:,|;|-|–|and|&)\s*\d{1,3})*)\s*\]", re.I)


def marker_numbers(token: str) -> list[int]:
    """The numbers inside one ``[n]``-style marker ("[1, 3]", "[2-4]", "[passage 2]")."""
    match = MARKER.fullmatch(token.strip())
    if not match:
        return []
    numbers: list[int] = []
    for piece in re.split(r"\s*(?:,|;|and|&)\s*", match.group(1)):
        bounds = [int(x) for x in re.split(r"\s*[-–]\s*", piece) if x.strip()]
        if len(bounds) == 2 and 0 < bounds[1] - bounds[0] < 10:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def cited_numbers(text: str) -> list[int]:
    """Every number of every marker in ``text``, in order."""
    return [n for match in MARKER.finditer(text) for n in marker_numbers(match.group())]


def strip_markers(text: str) -> str:
    """``text`` with its markers replaced by spaces."""
    return MARKER.sub(" ", text)
