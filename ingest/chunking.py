"""Sentence-respecting chunks with a small overlap, each with its span in the article text."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.text import sentence_spans


@dataclass(frozen=True)
class Chunk:
    """A piece of an article: ``text == article_text[start:end]``."""

    index: int
    start: int
    end: int
    text: str


def _split_long(start: int, end: int, text: str, limit: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than ``limit`` at whitespace so no chunk exceeds the encoder."""
    pieces: list[tuple[int, int]] = []
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        pieces.append((start, cut))
        start = cut + 1 if text[cut:cut + 1] == " " else cut
    if end > start:
        pieces.append((start, end))
    return pieces


def chunk_text(text: str, max_chars: int = 900, overlap_sentences: int = 1,
               max_overlap_chars: int = 250) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_chars``.

    The last sentence of a chunk starts the next one too when it is short enough to be context.
    """
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        spans.extend(_split_long(start, end, text, max_chars))
    chunks: list[Chunk] = []
    i = 0
    while i < len(spans):
        j = i
        while j + 1 < len(spans) and spans[j + 1][1] - spans[i][0] <= max_chars:
            j += 1
        start, end = spans[i][0], spans[j][1]
        chunks.append(Chunk(len(chunks), start, end, text[start:end]))
        if j + 1 >= len(spans):
            break
        nxt = j + 1
        for _ in range(overlap_sentences):
            back = nxt - 1
            if back > i and spans[j][1] - spans[back][0] <= max_overlap_chars:
                nxt = back
        i = nxt
    return chunks


def embedded_text(headline: str, text: str) -> str:
    """What is embedded for a chunk: the headline gives every chunk of an article its subject."""
    return f"{headline}\n{text}" if headline else text
