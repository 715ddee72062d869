"""Deterministic synthetic news for size: full-length articles built from the dev corpus's text.

The sentences are real news-search snippets (RGB), so the encoder and BM25 see real vocabulary;
their arrangement into articles is synthetic and seeded, so every run sees the same bytes.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RGB = REPO.parent / "shared" / "eval" / "rgb"
RGB_CORPUS = RGB / "corpus.jsonl"
RGB_QUESTIONS = RGB / "questions.jsonl"

_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])|\s*(?:\.\.\.|…)\s*")


@dataclass(frozen=True)
class SyntheticArticle:
    """One synthetic news record in the corpus.jsonl format."""

    id: str
    url: str
    title: str
    published: str
    text: str

    def record(self) -> dict[str, str]:
        """The JSON record the ingest loaders read."""
        return {"id": self.id, "url": self.url, "title": self.title,
                "published": self.published, "text": self.text}


def sentence_pool(path: Path = RGB_CORPUS) -> list[str]:
    """Distinct sentence-like pieces of the RGB snippets, in file order."""
    seen: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"].replace("\u00a0", " ")
        for piece in _SPLIT.split(text):
            piece = piece.strip(" .…")
            if len(piece) >= 40 and piece[0].isalnum():
                end = "" if piece[-1] in "!?" else "."
                seen.setdefault(piece[0].upper() + piece[1:] + end, None)
    return list(seen)


def articles(total_chars: int, seed: int = 7, pool: list[str] | None = None,
             mean_chars: int = 4500) -> Iterator[SyntheticArticle]:
    """Articles of news-like length (lognormal around ``mean_chars``) until ``total_chars``."""
    pool = pool or sentence_pool()
    rng = random.Random(seed)
    made = 0
    number = 0
    while made < total_chars:
        target = int(min(max(rng.lognormvariate(0, 0.5) * mean_chars * 0.88, 800), 16000))
        paragraphs: list[str] = []
        length = 0
        while length < target:
            paragraph = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 4)))
            paragraphs.append(paragraph)
            length += len(paragraph) + 2
        text = "\n\n".join(paragraphs)
        title = rng.choice(pool).rstrip(".")[:90]
        day = 1 + number % 28
        yield SyntheticArticle(
            id=f"syn-{number}", url=f"https://news.example/{number // 100}/{number}",
            title=title, published=f"2024-{1 + number % 12:02d}-{day:02d}", text=text)
        made += len(text)
        number += 1


def write_corpus(path: Path, total_chars: int, seed: int = 7) -> tuple[int, int]:
    """Write a synthetic corpus.jsonl of at least ``total_chars``; (articles, chars)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = chars = 0
    with path.open("w", encoding="utf-8") as out:
        for art in articles(total_chars, seed):
            out.write(json.dumps(art.record()) + "\n")
            count += 1
            chars += len(art.text)
    return count, chars


def chunk_texts(count: int, seed: int = 11, pool: list[str] | None = None,
                max_chars: int = 900) -> Iterator[tuple[str, list[int]]]:
    """``count`` chunk-sized texts and the pool sentences each is made of."""
    pool = pool or sentence_pool()
    rng = random.Random(seed)
    for _ in range(count):
        picked: list[int] = []
        length = 0
        while True:
            i = rng.randrange(len(pool))
            if picked and length + len(pool[i]) + 1 > max_chars:
                break
            picked.append(i)
            length += len(pool[i]) + 1
        yield " ".join(pool[i] for i in picked), picked
