"""The 'openai' generator against a real OpenAI-compatible server on loopback.

llama-cpp-python ships one (``python -m llama_cpp.server``); it serves the small packaged model.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SEED_QUESTION, require_model, seeded_assistant
from servers import free_port, server_process

from rag.answering.factory import available_answerers
from rag.assistant import Assistant
from rag.errors import ModelUnavailable
from rag.llm.local_models import TEST_MODEL, ensure_model
from rag.records import Answer
from rag.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.llm]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with SmolLM2 on 127.0.0.1; yields its /v1 base URL."""
    settings = Settings()
    require_model(TEST_MODEL)
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"llama-cpp-python's server extra is not installed ({exc.name})")
    model = ensure_model(TEST_MODEL, settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    with server_process(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
         "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
         "--n_threads", "2", "--verbose", "False"], ready_url=f"{base}/models",
            log=tmp_path_factory.mktemp("llama-server") / "server.log", timeout=120):
        yield base


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(seeded_assistant(tmp_path_factory, "openai-index").settings.data_dir)


def test_the_openai_generator_streams_a_checked_answer_from_the_server(server, seeded_dir):
    settings = Settings(data_dir=seeded_dir, answerer="openai", openai_base_url=server,
                        openai_model="smollm2", max_new_tokens=48)
    assistant = Assistant(settings)
    events = list(assistant.ask_stream(SEED_QUESTION))
    answer = events[-1]
    assert isinstance(answer, Answer) and answer.answerer == "openai"
    pieces = [e for e in events[:-1] if isinstance(e, str)]
    assert "".join(pieces).strip() and "".join(pieces) == answer.text  # checked text only
    retrieved = {p.chunk_id: p.text for p in assistant.retrieve(SEED_QUESTION)}
    for cite in answer.citations:
        assert cite.chunk_id in retrieved and cite.quote in retrieved[cite.chunk_id]
    assert answer.refused or answer.supported_sentences >= 1
    assert "openai" in available_answerers(settings)


def test_an_unreachable_server_is_one_plain_sentence(seeded_dir):
    port = free_port()  # nothing listens there
    settings = Settings(data_dir=seeded_dir, answerer="openai",
                        openai_base_url=f"http://127.0.0.1:{port}/v1", openai_model="smollm2")
    with pytest.raises(ModelUnavailable) as caught:
        Assistant(settings).ask(SEED_QUESTION)
    message = str(caught.value)
    assert message.startswith("The language model 'openai' at http://127.0.0.1:")
    assert "\n" not in message and "Traceback" not in message
