"""MemoEmbedder: one answer's sentence scoring embeds each batch once, and exactly as before."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.assistant import Assistant
from rag.embeddings import FakeEmbedder, MemoEmbedder
from rag.settings import Settings


class Counting(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, ...]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(tuple(texts))
        return super().embed(texts)


def test_a_repeated_call_is_answered_from_memory_and_others_are_not() -> None:
    inner = Counting()
    memo = MemoEmbedder(inner, size=2)
    first = memo.embed(["a radar in Azerbaijan", "flowers"])
    first[:] = 0  # callers get copies: nothing they do reaches the memo
    again = memo.embed(["a radar in Azerbaijan", "flowers"])
    assert len(inner.calls) == 1
    np.testing.assert_array_equal(again, inner.embed(["a radar in Azerbaijan", "flowers"]))
    memo.embed(["flowers", "a radar in Azerbaijan"])  # another batch: embedded as itself
    memo.embed(["Kosovo"])
    memo.embed(["a radar in Azerbaijan", "flowers"])  # evicted by the two calls since
    assert len(inner.calls) == 1 + 1 + 1 + 1 + 1  # the direct call above counts too


def test_an_answer_embeds_its_passages_sentences_once(tmp_path: Path) -> None:
    inner = Counting()
    settings = Settings(data_dir=tmp_path / "data", embedding_backend="fake",
                        generator="extractive")
    assistant = Assistant(settings, embedder=inner)
    assistant.ingest([Path(__file__).resolve().parent.parent / "seeds"])
    inner.calls.clear()
    answer = assistant.ask("What did Putin offer instead of the Czech radar?")
    assert not answer.refused
    scoring = [c for c in inner.calls if len(c) > 1]  # the gate's and the answerer's batches
    assert scoring and len(scoring) == len(set(scoring))
