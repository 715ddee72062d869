"""Sentence vectors kept between questions (rag.vector_cache): the same vectors, fewer
encoder calls, bounded, and never for an encoder whose vectors depend on the batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED_QUESTION, SEEDS

from rag.assistant import Assistant
from rag.embeddings import FakeEmbedder
from rag.settings import Settings
from rag.vector_cache import CachingEmbedder, cached


class Counting(FakeEmbedder):
    """The fake encoder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return super().embed(texts)


def test_cached_vectors_are_the_encoders_and_only_unseen_texts_are_embedded() -> None:
    inner = Counting()
    cache = CachingEmbedder(inner, max_entries=3)
    first = cache.embed(["a dock strike", "the ferry", "a dock strike"])
    assert inner.embedded == ["a dock strike", "the ferry"]  # a repeat in one call: once
    np.testing.assert_array_equal(first, FakeEmbedder().embed(
        ["a dock strike", "the ferry", "a dock strike"]))
    again = cache.embed(["the ferry", "a lighthouse"])
    assert inner.embedded[2:] == ["a lighthouse"]
    np.testing.assert_array_equal(again, FakeEmbedder().embed(["the ferry", "a lighthouse"]))
    cache.embed(["a toll bridge"])  # a fourth text: the least recently used one goes
    assert len(cache) == 3
    cache.embed(["a dock strike"])
    assert inner.embedded[-1] == "a dock strike"
    assert cache.embed([]).shape == (0, inner.dimension)


def test_an_encoder_whose_vectors_depend_on_the_batch_is_not_cached() -> None:
    plain = FakeEmbedder()
    plain.batch_independent = False  # as the torch encoder, which pads a batch
    assert cached(plain, 1000) is plain
    assert cached(FakeEmbedder(), 0).__class__ is FakeEmbedder  # 0 turns it off
    assert isinstance(cached(FakeEmbedder(), 1000), CachingEmbedder)


@pytest.mark.slow
def test_answers_are_the_same_with_a_warm_cache_and_cost_fewer_encodings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", answerer="extractive")
    warm = Assistant(settings)
    warm.ingest([SEEDS])
    cache = warm.scorer.embedder
    assert isinstance(cache, CachingEmbedder)  # the real ONNX encoder is batch-independent
    other = "Who handed flowers to Laura Bush?"
    first = warm.ask(SEED_QUESTION)
    warm.ask(other)
    misses = cache.misses
    again = warm.ask(SEED_QUESTION)
    assert cache.misses - misses <= 2  # the question itself, at most: every sentence is known
    cold = Assistant(Settings(data_dir=tmp_path / "data", answerer="extractive",
                              sentence_cache_size=0))
    assert not isinstance(cold.scorer.embedder, CachingEmbedder)
    for answer in (again, cold.ask(SEED_QUESTION)):
        assert answer.text == first.text
        assert [(c.quote, c.score) for c in answer.citations] == [
            (c.quote, c.score) for c in first.citations]
    assert cold.ask(other).text == warm.ask(other).text
