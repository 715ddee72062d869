"""How well each sentence of the retrieved passages answers a question.

One scorer serves three jobs: the extractive answerer picks its sentences with it, the refusal
gate asks whether anything scores high enough, and citation checking asks whether a generated
sentence is supported by the sentence it cites.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ingest.text import sentence_spans
from rag.embeddings import Embedder
from rag.models import Passage

_WORD = re.compile(r"[\w'’-]+")
_YEAR_OR_DATE = re.compile(
    r"\b(1[89]\d\d|20\d\d)\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d"
    r"|\b\d{1,2}(st|nd|rd|th)?\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    r"|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today)\b", re.I)
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|"
                     r"million|billion|dozen)\b", re.I)
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’-]+")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    extra = {"whose", "did", "does", "tell", "said", "say", "says", "according", "also", "would",
             "could", "many", "much", "year", "name", "named", "new"}
    return frozenset(STOPWORDS_EN_PLUS) | extra


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def content_terms(text: str) -> set[str]:
    """Stemmed, lower-cased content words of ``text``."""
    words = [w.strip("'’-").lower() for w in _WORD.findall(text)]
    words = [w for w in words if w and w not in _stopwords()]
    return set(_stemmer().stemWords(words))


def answer_type(question: str) -> str:
    """A coarse expected answer type from the question's wording."""
    q = question.lower()
    if re.search(r"\bhow (many|much|old|long|far|tall|big)\b|\bwhat (percentage|number)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month|time)\b|\bwhich (year|date|day)\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b|\bwhich (company|team|country|person|player|city)\b", q):
        return "name"
    if re.search(r"\bwhere\b", q):
        return "name"
    return "other"


def type_match(kind: str, sentence: str, question_terms: set[str]) -> float:
    """1.0 when the sentence holds something of the expected kind the question lacks."""
    if kind == "number":
        return 1.0 if _NUMBER.search(sentence) else 0.0
    if kind == "date":
        return 1.0 if _YEAR_OR_DATE.search(sentence) else 0.0
    if kind == "name":
        names = {m.lower() for m in _PROPER.findall(sentence)}
        fresh = content_terms(" ".join(names)) - question_terms
        return 1.0 if fresh else 0.0
    return 0.5


@dataclass
class SentenceEvidence:
    """One sentence of one passage, and how well it answers the question."""

    passage: int
    start: int
    end: int
    text: str
    similarity: float
    overlap: float
    novelty: float
    kind_match: float
    score: float


class EvidenceScorer:
    """Scores sentences against a question by meaning, shared words and answer type."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._memo: dict[tuple[str, tuple[str, ...]], list[SentenceEvidence]] = {}

    def score(self, question: str, passages: Sequence[Passage]) -> list[SentenceEvidence]:
        """Every sentence of every passage, best first (remembered for the last few asks)."""
        key = (question, tuple(f"{p.chunk_id}:{hash(p.text)}" for p in passages))
        if key not in self._memo:
            if len(self._memo) > 64:
                self._memo.clear()
            self._memo[key] = self._score(question, passages)
        return self._memo[key]

    def _score(self, question: str, passages: Sequence[Passage]) -> list[SentenceEvidence]:
        items: list[tuple[int, int, int, str]] = []
        for i, passage in enumerate(passages):
            for start, end in sentence_spans(passage.text):
                text = passage.text[start:end]
                if len(text) >= 12:
                    items.append((i, start, end, text))
        if not items:
            return []
        vectors = self.embedder.embed([question] + [t for _, _, _, t in items])
        sims = vectors[1:] @ vectors[0]
        q_terms = content_terms(question)
        kind = answer_type(question)
        out = []
        for (i, start, end, text), sim in zip(items, sims, strict=True):
            terms = content_terms(text)
            context = terms | content_terms(passages[i].headline)
            overlap = len(q_terms & context) / len(q_terms) if q_terms else 0.0
            novelty = min(len(terms - q_terms) / 4.0, 1.0)
            match = type_match(kind, text, q_terms)
            score = 0.55 * float(sim) + 0.3 * overlap + 0.1 * match + 0.05 * novelty
            out.append(SentenceEvidence(i, start, end, text, float(sim), overlap, novelty,
                                        match, score))
        out.sort(key=lambda e: -e.score)
        return out

    def support(self, claim: str, passage: Passage) -> tuple[float, int, int]:
        """How well ``passage`` supports ``claim``: best sentence's score and its span."""
        spans = sentence_spans(passage.text) or [(0, len(passage.text))]
        texts = [passage.text[s:e] for s, e in spans]
        vectors = self.embedder.embed([claim, *texts])
        sims = vectors[1:] @ vectors[0]
        claim_terms = content_terms(claim)
        best = (0.0, 0, len(passage.text))
        for (start, end), text, sim in zip(spans, texts, sims, strict=True):
            terms = content_terms(text)
            covered = len(claim_terms & terms) / len(claim_terms) if claim_terms else 0.0
            value = 0.5 * float(sim) + 0.5 * covered
            if value > best[0]:
                best = (value, start, end)
        return best

