"""POST /v1/responses, driven by the official openai client and LangChain over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from rag.api.app import create_app
from rag.assistant import Assistant
from tests.conftest import SEED_QUESTION, seeded_assistant
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    return seeded_assistant(tmp_path_factory, "responses-data")


@pytest.fixture(scope="module")
def server(assistant: Assistant) -> Iterator[LiveServer]:
    with LiveServer(create_app(assistant=assistant)) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0,
                       timeout=120) as client:
        yield client


def test_a_response_carries_each_marker_as_a_url_citation(client: openai.OpenAI,
                                                          assistant: Assistant) -> None:
    response = client.responses.create(model="extractive", input=SEED_QUESTION)
    expected = assistant.ask(SEED_QUESTION)
    assert response.status == "completed" and response.output_text == expected.text
    part = response.output[0].content[0]
    assert part.type == "output_text" and part.annotations
    for mark in part.annotations:
        assert mark.type == "url_citation"
        assert part.text[mark.start_index:mark.end_index] in {
            f"[{c.number}]" for c in expected.citations}
        assert mark.title == expected.citations[0].headline and mark.url
    assert response.usage is not None and response.usage.total_tokens > 0


def test_the_stream_joins_to_the_final_text(client: openai.OpenAI) -> None:
    deltas: list[str] = []
    kinds: list[str] = []
    final = None
    with client.responses.stream(model="extractive", input=SEED_QUESTION) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.annotation.added" in kinds
    assert "".join(deltas) == final.output_text and "Azerbaijan" in final.output_text


def test_a_follow_up_reads_the_conversation_and_errors_are_plain(client: openai.OpenAI) -> None:
    first = client.responses.create(model="extractive", input=SEED_QUESTION)
    follow = client.responses.create(model="extractive", input=[
        {"role": "user", "content": SEED_QUESTION},
        {"role": "assistant", "content": [{"type": "output_text", "text": first.output_text}]},
        {"role": "user", "content": [{"type": "input_text",
                                      "text": "What did Gates say about it?"}]},
    ])
    assert "Gates" in follow.output_text
    with pytest.raises(openai.NotFoundError, match="does not exist here"):
        client.responses.create(model="gpt-9", input=SEED_QUESTION)
    with pytest.raises(openai.UnprocessableEntityError, match="user's question"):
        client.responses.create(model="extractive", input=[
            {"role": "assistant", "content": "Hello"}])


def test_langchain_keeps_the_citations_as_structured_annotations(server: LiveServer) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model="extractive", base_url=f"{server.url}/v1", api_key="unused",
                      use_responses_api=True, max_retries=0, timeout=120)
    message = chat.invoke(SEED_QUESTION)
    blocks = [b for b in message.content if isinstance(b, dict) and b.get("type") == "text"]
    assert blocks and "Azerbaijan" in blocks[0]["text"]
    marks = blocks[0]["annotations"]
    assert marks and all(m["type"] == "url_citation" and m["title"] for m in marks)
    assert message.usage_metadata and message.usage_metadata["total_tokens"] > 0
    streamed = "".join(
        b.get("text", "") for chunk in chat.stream(SEED_QUESTION)
        for b in (chunk.content if isinstance(chunk.content, list) else [])
        if isinstance(b, dict))
    assert streamed == blocks[0]["text"]
