"""Text hygiene, sentence boundaries and stemming shared by loaders, chunking, search, answering."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

# Zero-width characters, bidi controls and other invisible format characters can hide
# instructions from a reader while a model still sees them: they never enter the index.
_KEEP_CONTROLS = {"\n", "\t"}


def clean_text(text: str) -> str:
    """NFC-normalise, drop hidden/control characters, tidy whitespace, keep paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(
        ch for ch in text
        if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs")
    )
    # After the removal: a dropped character can leave a letter and its accent side by side.
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\t", " ")
    text = re.sub(r"[ \u2000-\u200a\u202f\u205f\u3000]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "gen", "gov", "sen", "rep", "col", "lt",
    "sgt", "capt", "cmdr", "adm", "maj", "pres", "rev", "hon", "u.s", "u.k", "u.n", "e.g", "i.e",
    "vs", "etc", "inc", "ltd", "co", "corp", "no", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ft", "approx", "dept", "est", "fig",
}
_LOOKBACK = 40  # longer than any abbreviation
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’)\]]*)(\s+)(?=[\"'“‘(\[]?[A-Z0-9])|\n+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (paragraph breaks always end one)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group(1):
            end = match.end(1)
            # Only the last word matters; a bounded look-back keeps runs of "Mr. Mr. ..." linear.
            before = text[max(start, match.start(1) - _LOOKBACK):match.start(1)]
            word = re.search(r"([\w.]+)\W*$", before + ".")
            token = (word.group(1) if word else "").rstrip(".").lower()
            # "U.S. officials", "Mr. Putin", "Jan. 5": not a boundary.
            if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                continue
        else:
            end = match.start()
        if text[start:end].strip():
            spans.append(_strip_span(text, start, end))
        start = match.end()
    if text[start:].strip():
        spans.append(_strip_span(text, start, len(text)))
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """The English Snowball stem of ``word`` (a module function, so BM25 indexes pickle)."""
    return str(_stemmer().stemWord(word))


def stems(words: Iterable[str]) -> list[str]:
    """The English Snowball stems of ``words``, in order."""
    return [str(w) for w in _stemmer().stemWords(list(words))]
