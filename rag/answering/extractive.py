"""The answerer that needs no language model: it quotes the sentences that answer."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator, Sequence

from rag.answering.attribution import attribution
from rag.answering.base import ArticleTexts, Draft, Quotes, citation_for, refusal
from rag.answering.condense import heuristic_condense, split_follow_up
from rag.answering.evidence import (
    NUMBER,
    EvidenceScorer,
    SentenceEvidence,
    about_something_else,
    counted_noun,
)
from rag.embeddings import Embedder
from rag.records import Passage, Turn
from rag.retrieval.recency import asks_for_figure
from rag.settings import Settings

FIGURE_RATIO = 0.8  # how close to the best a later report's figure sentence must score
_STALE = re.compile(r"\b(first|initial|initially|original|originally|earlier|previous|"
                    r"provisional|preliminary|at first)\b", re.I)
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'’-]+")


def _names(question: str) -> set[str]:
    """The proper names the question pins down ('Canal', 'Line', 'RAPID-CLEAR', 'Hesk')."""
    return {m.lower() for m in _NAME.findall(question.strip())}


def _counts(noun: str, sentence: str) -> bool:
    """Whether ``sentence`` gives a count of ``noun`` ('884 patients', '12,000 units')."""
    stem = re.escape(noun.lower().rstrip("s"))
    between = r"(?:(?!per\b|percent\b)[a-z-]+\s+){0,2}"  # '884 new patients', not '46 percent of'
    return bool(re.search(rf"\d[\d,.]*\s+{between}{stem}", sentence.lower()))


def newest_figure_first(question: str, evidence: Sequence[SentenceEvidence],
                        passages: Sequence[Passage], ratio: float,
                        articles: ArticleTexts | None = None) -> list[SentenceEvidence]:
    """For a question about a figure, the newest report's figure leads.

    Later reports revise earlier figures, and restate the old ones less prominently, so a later
    article's figure sentence often scores a little under an earlier one's. Of the figure
    sentences scoring within ``FIGURE_RATIO`` of the best, from articles that name what the
    question names, the newest article's comes first; among that article's sentences, one that
    counts what "how many" asks for, and one not marked as an earlier figure ("first
    estimate", "originally"), before the others. Other questions keep the order by score.

    Whether an article names what the question names is read from the whole article when
    ``articles`` can give it: a later piece says "the line" in the paragraph that holds the
    final figure, and names the "Canal Line" only elsewhere.
    """
    ordered = list(evidence)
    if not ordered or not asks_for_figure(question):
        return ordered
    bar = min(ratio, FIGURE_RATIO) * ordered[0].score
    names = _names(question)
    text_of: dict[str, str] = {}
    for passage in passages:
        text_of[passage.article_id] = (text_of.get(passage.article_id, "") + " "
                                       + passage.headline + " " + passage.text).lower()
    def names_all(article_id: str) -> bool:
        if all(n in text_of[article_id] for n in names):
            return True
        if articles is None:
            return False
        text_of[article_id] += " " + articles(article_id).lower()
        return all(n in text_of[article_id] for n in names)

    close = [e for e in ordered if e.score >= bar and NUMBER.search(e.text)
             and names_all(passages[e.passage].article_id)]
    if not close:
        return ordered
    counted = counted_noun(question)

    def rank(e: SentenceEvidence) -> tuple[object, ...]:
        return (passages[e.passage].published or dt.date.min,
                bool(counted and _counts(counted, e.text)),
                not _STALE.search(e.text), e.score)

    newest = max(close, key=rank)
    return [newest, *(e for e in ordered if e is not newest)]


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def dated_parts(parts: list[str], days: Sequence[dt.date | None]) -> list[str]:
    """Figures reported on different days say so: the newest "As of", the others "Earlier"."""
    known = [d for d in days if d is not None]
    if len(set(known)) < 2:
        return parts
    newest = max(known)
    order = sorted(range(len(parts)), key=lambda i: days[i] != newest)  # the newest first
    out = []
    for i in order:
        day = days[i]
        if day == newest:
            out.append(f"As of {_day(newest)}: {parts[i]}")
        else:
            out.append(f"Earlier ({_day(day)}): {parts[i]}" if day else parts[i])
    return out


class ExtractiveAnswerer:
    """Answers with the best-scoring sentence(s) of the passages, each with its [n]."""

    name = "extractive"

    def __init__(self, embedder: Embedder, settings: Settings, *, max_sentences: int = 2,
                 second_ratio: float = 0.9, scorer: EvidenceScorer | None = None,
                 articles: ArticleTexts | None = None) -> None:
        self.scorer = scorer or EvidenceScorer(embedder)
        self.articles = articles
        self.settings = settings
        self.max_sentences = max_sentences
        self.second_ratio = second_ratio

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        """Follow-ups get the previous question as context."""
        return heuristic_condense(question, history)

    def choose(self, evidence: Sequence[SentenceEvidence]) -> list[SentenceEvidence]:
        """The best sentence, plus runners-up nearly as good that say something else."""
        if not evidence:
            return []
        best = evidence[0]
        chosen = [best]
        for item in evidence[1:]:
            if len(chosen) >= self.max_sentences or item.score < self.second_ratio * best.score:
                break
            if any(item.text == c.text for c in chosen):
                continue
            chosen.append(item)
        return chosen

    def stream(self, question: str, passages: Sequence[Passage], *,
               stop: threading.Event | None = None) -> Iterator[str | Draft]:
        """Yield the answer text once, then its Draft (it takes milliseconds: no ``stop``)."""
        # A follow-up is searched with its context but answered for what it asks now.
        focus, context = split_follow_up(question)
        said = attribution(focus, passages)
        if said is not None:  # 'Who said "..."?': the speaker named beside those very words
            passage = passages[said.passage]
            stretch = " ".join(passage.text[said.start:said.end].split())
            text = f"{said.speaker}: {stretch} [1]"
            yield text
            yield Draft(text=text, citations=[citation_for(1, passage, said.start, said.end,
                                                           1.0)],
                        supported_sentences=1, total_sentences=1)
            return
        evidence = [e for e in self.scorer.score(focus, passages, context)
                    if e.answers and not about_something_else(focus, e.text)]
        if not evidence or evidence[0].score < self.settings.refusal_threshold:
            draft = refusal(focus)
            yield draft.text
            yield draft
            return
        chosen = self.choose(newest_figure_first(focus, evidence, passages, self.second_ratio,
                                                 self.articles))
        # Keep the article's order when two sentences come from the same passage.
        chosen.sort(key=lambda e: (e.passage, e.start))
        quotes = Quotes(passages)
        parts = [f"{item.text} [{quotes.number(item.passage, item.start, item.end, item.score)}]"
                 for item in chosen]
        citations = quotes.citations()
        if asks_for_figure(focus):
            parts = dated_parts(parts, [passages[item.passage].published for item in chosen])
        text = " ".join(parts)
        yield text
        yield Draft(text=text, citations=citations, supported_sentences=len(parts),
                    total_sentences=len(parts))
