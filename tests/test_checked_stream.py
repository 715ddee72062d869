"""Every streaming surface shows only checked text: the joined deltas are the final answer.

The language model here is a fake that writes one supported sentence and one invented one (and
a marker pointing at no passage); the citation check drops what the passages do not support, so
a surface that forwarded the model's raw tokens would show text the answer does not contain.
The same property is then checked with a real packaged model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from httpx_sse import connect_sse

from rag.answering.llm_answerer import LLMAnswerer
from rag.api.app import create_app
from rag.assistant import Assistant
from rag.chat.handlers import ask as page_ask
from rag.llm.chat_model import FakeChatModel
from rag.records import Answer
from tests.conftest import SEED_QUESTION, require_model, seeded_assistant
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow

SUPPORTED = "Putin offered the use of a Russian radar site in Azerbaijan [1]."
INVENTED = " The offer was accepted by forty NATO members at a summit in Oslo [2][7]."
RAW = SUPPORTED + INVENTED


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    return seeded_assistant(tmp_path_factory, "checked-stream")


@pytest.fixture(scope="module")
def fake() -> FakeChatModel:
    return FakeChatModel(default=RAW)


@pytest.fixture(scope="module")
def assistant(seeded: Assistant, fake: FakeChatModel) -> Assistant:
    llm = LLMAnswerer("fake", fake, seeded.embedder, seeded.settings, scorer=seeded.scorer)
    return Assistant(seeded.settings, embedder=seeded.embedder, answerer=llm)


@pytest.fixture(scope="module")
def server(assistant: Assistant) -> Iterator[LiveServer]:
    with LiveServer(create_app(assistant=assistant)) as live:
        yield live


def _checked(answer: Answer) -> None:
    assert "Azerbaijan" in answer.text and answer.citations
    assert "Oslo" not in answer.text  # the check dropped the invented sentence


def test_python_api(assistant: Assistant) -> None:
    events = list(assistant.ask_stream(SEED_QUESTION))
    answer = events[-1]
    assert isinstance(answer, Answer)
    _checked(answer)
    assert "".join(e for e in events[:-1] if isinstance(e, str)) == answer.text


def test_server_sent_events(server: LiveServer) -> None:
    deltas: list[str] = []
    final: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=60) as http, connect_sse(
            http, "POST", "/ask/stream", json={"question": SEED_QUESTION}) as source:
        for sse in source.iter_sse():
            if sse.event == "delta":
                deltas.append(json.loads(sse.data)["text"])
            else:
                assert sse.event == "answer"
                final = json.loads(sse.data)
            assert len(deltas) < 500
    answer = Answer.model_validate(final)
    _checked(answer)
    assert deltas and "".join(deltas) == answer.text


@pytest.mark.parametrize("footnotes", [False, True])
def test_openai_stream(server: LiveServer, footnotes: bool) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0,
                       timeout=60) as client:
        chunks = list(client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": SEED_QUESTION}], stream=True,
            extra_body={"footnotes": footnotes}))
    joined = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1].model_extra or {}
    assert joined == last["final_text"]
    assert "Azerbaijan" in joined and "Oslo" not in joined
    assert ("\n\nSources:\n" in joined) is footnotes


def test_page_never_shows_text_the_answer_does_not_hold(assistant: Assistant) -> None:
    updates = list(page_ask(assistant, SEED_QUESTION, []))
    final_state = updates[-1][2]
    answer = final_state[-1].answer
    assert answer is not None
    _checked(answer)
    for _, chat, _, _ in updates[:-1]:
        shown = chat[-1]["content"]
        assert shown.startswith("_Finding") or "Oslo" not in shown


def test_a_real_model_streams_only_its_checked_answer(seeded: Assistant) -> None:
    require_model("smollm2-135m")
    events = list(seeded.ask_stream(SEED_QUESTION, answerer="smollm2-135m"))
    answer = events[-1]
    assert isinstance(answer, Answer) and answer.answerer == "smollm2-135m"
    assert "".join(e for e in events[:-1] if isinstance(e, str)) == answer.text
    assert answer.text  # an answer or a refusal, never nothing
