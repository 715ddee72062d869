"""The default answerer loads at start-up, in the background; /health says when it is ready."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rag.api.app import create_app
from rag.assistant import Assistant
from rag.embeddings import FakeEmbedder
from rag.errors import ModelUnavailable
from rag.settings import Settings
from tests.conftest import SEED_QUESTION, SEEDS, require_model
from tests.live_server import LiveServer

MODEL = "smollm2-135m"


def test_the_model_loads_before_the_first_question(data_dir: Path) -> None:
    require_model(MODEL)
    assistant = Assistant(Settings(data_dir=data_dir, answerer=MODEL))
    assert not assistant.ready()
    with LiveServer(create_app(assistant=assistant)) as server:  # create_app starts loading
        assistant.warm_up().join(timeout=120)
        assert assistant.ready()
        health = httpx.get(f"{server.url}/health", timeout=30).json()
    assert health["ready"] is True and health["answerer"] == MODEL
    assert assistant.warm_up() is assistant.warm_up()  # one loader, however often asked


def test_a_model_that_cannot_load_leaves_it_not_ready_and_the_question_says_why(
        data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, answerer="no-such-model", embedding_backend="fake")
    assistant = Assistant(settings, embedder=FakeEmbedder())
    assistant.ingest([SEEDS])
    assistant.warm_up().join(timeout=30)
    assert not assistant.ready()
    try:
        assistant.ask(SEED_QUESTION)
    except Exception as exc:  # a RagError with one sentence, as every front end shows it
        assert "no-such-model" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("a question to a missing model must fail plainly")


def test_reembed_brings_an_index_from_the_torch_encoder_up_to_date(data_dir: Path) -> None:
    old = Assistant(Settings(data_dir=data_dir, embedding_backend="sentence-transformers"))
    old.ingest([SEEDS])
    count = old.stats()["chunks"]
    del old
    assistant = Assistant(Settings(data_dir=data_dir))  # the shipped encoder
    assert assistant.reembed() == count and assistant.reembed() == 0
    assert not assistant.ask(SEED_QUESTION).refused


def test_an_index_of_another_size_is_a_plain_error_and_stays_as_it_was(data_dir: Path) -> None:
    old = Assistant(Settings(data_dir=data_dir, embedding_backend="fake"), embedder=FakeEmbedder())
    old.ingest([SEEDS])
    count = old.stats()["chunks"]
    assistant = Assistant(Settings(data_dir=data_dir))
    with pytest.raises(ModelUnavailable, match="ingest into a new RAG_DATA_DIR"):
        assistant.reembed()
    assert assistant.stats()["chunks"] == count
