"""Reranking the retrieved candidates by their best sentence, as the answerers will read them.

Chunk-level signals (dense, BM25, the article's BM25, recency) find the right story; telling
apart the articles of one story takes the sentence that answers. Each candidate's best sentence
score (``EvidenceScorer``: meaning, the question's words and numbers, the expected answer type)
ranks the candidates once more, and that ranking is fused with the retriever's by reciprocal
rank. No model is added: the scorer's sentence embeddings are the ones the answer is built from.
For a question about a figure, the candidates' articles newest first are one more ranking
(``rag.retrieval.recency``): later reports revise earlier figures.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.answering.condense import split_follow_up
from rag.answering.evidence import EvidenceScorer
from rag.records import Passage
from rag.retrieval.base import diverse
from rag.retrieval.recency import asks_for_figure, newest_first
from rag.settings import Settings

SAME_STORY = 0.9  # a passage this close to the best sentence score is on the same story


def rerank(question: str, candidates: Sequence[Passage], k: int, scorer: EvidenceScorer,
           settings: Settings) -> list[Passage]:
    """The best ``k`` of ``candidates`` (in the retriever's order) after sentence reranking."""
    focus, context = split_follow_up(question)
    recency = settings.recency_weight if asks_for_figure(focus) else 0.0
    if len(candidates) <= 1 or not (settings.rerank_weight or recency):
        return diverse(candidates, k, settings.max_chunks_per_article, lambda p: p.article_id)
    rrf = settings.rrf_k
    fused = {i: 1.0 / (rrf + i + 1) for i in range(len(candidates))}
    evidence = scorer.score(focus, candidates, context)
    best: dict[int, float] = {}
    for item in evidence:  # best first
        best.setdefault(item.passage, item.score)
    if settings.rerank_weight:
        by_sentence = sorted(range(len(candidates)), key=lambda i: -best.get(i, 0.0))
        for rank, i in enumerate(by_sentence):
            fused[i] += settings.rerank_weight / (rrf + rank + 1)
    if recency and best:
        # Only the story the question is about: passages whose best sentence is nearly as
        # good as the best one; an unrelated newer article gains nothing.
        bar = SAME_STORY * max(best.values())
        story = [i for i in range(len(candidates)) if best.get(i, 0.0) >= bar]
        place = newest_first([candidates[i] for i in story])
        for i in story:
            fused[i] += recency / (rrf + place[candidates[i].article_id] + 1)
    order = sorted(range(len(candidates)), key=lambda i: -fused[i])
    # Each passage's score becomes its reranked score, so the order is by score as before.
    reranked = [candidates[i].model_copy(update={"score": fused[i]}) for i in order]
    chosen = diverse(reranked, k, settings.max_chunks_per_article, lambda p: p.article_id)
    scorer.remember_subset(focus, candidates, evidence, chosen, context)
    return chosen
