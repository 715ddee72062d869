"""The OpenAI-compatible endpoint, driven by the official ``openai`` client over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conftest import SEED_QUESTION, seeded_assistant
from live_server import LiveServer

from rag.api.app import create_app
from rag.assistant import Assistant
from rag.records import Citation

pytestmark = pytest.mark.slow

FOLLOW_UP = "What did he offer instead?"
KEY = "sk-local-test"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    return seeded_assistant(tmp_path_factory, "openai-data", api_keys=KEY)


@pytest.fixture(scope="module")
def server(assistant: Assistant) -> Iterator[LiveServer]:
    with LiveServer(create_app(assistant=assistant)) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0,
                       timeout=120) as client:
        yield client


def _citations(extra: dict[str, Any] | None) -> list[Citation]:
    assert extra is not None and "citations" in extra
    return [Citation.model_validate(c) for c in extra["citations"]]


def test_models_are_default_then_the_answerers(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids[:2] == ["default", "extractive"]


def test_model_default_is_the_configured_answerer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": SEED_QUESTION}])
    assert completion.model == "default"
    assert "Azerbaijan" in (completion.choices[0].message.content or "")
    assert _citations(completion.model_extra)


def test_completion_carries_the_answer_and_structured_citations(
        client: openai.OpenAI, assistant: Assistant) -> None:
    completion = client.chat.completions.create(
        model="extractive", messages=[{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": SEED_QUESTION}])
    content = completion.choices[0].message.content or ""
    assert completion.choices[0].finish_reason == "stop"
    assert "Azerbaijan" in content and "[1]" in content
    citations = _citations(completion.model_extra)
    direct = assistant.ask(SEED_QUESTION)
    assert content == direct.text and citations == direct.citations
    assert completion.model_extra is not None and completion.model_extra["refused"] is False


def test_streaming_sends_deltas_and_citations_on_the_last_chunk(
        client: openai.OpenAI, assistant: Assistant) -> None:
    stream = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": SEED_QUESTION}], stream=True)
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
        assert len(chunks) < 1000
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1
    assert all(c.model_extra is None or "citations" not in c.model_extra for c in chunks[:-1])
    direct = assistant.ask(SEED_QUESTION)
    assert text == direct.text
    assert _citations(chunks[-1].model_extra) == direct.citations


def test_earlier_messages_are_the_history(client: openai.OpenAI, assistant: Assistant) -> None:
    first = assistant.ask(SEED_QUESTION)
    history = [{"role": "user", "content": SEED_QUESTION},
               {"role": "assistant", "content": first.text}]
    completion = client.chat.completions.create(
        model="extractive", messages=[*history, {"role": "user", "content": FOLLOW_UP}])  # type: ignore[list-item]
    content = completion.choices[0].message.content
    assert content == assistant.ask(FOLLOW_UP, history).text
    assert "Azerbaijan" in (content or "")
    alone = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": FOLLOW_UP}])
    assert alone.model_extra is not None and alone.model_extra["refused"] is True
    assert _citations(alone.model_extra) == []


def test_text_parts_and_extension_fields(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="extractive", temperature=0.2, max_tokens=100,
        messages=[{"role": "user", "content": [{"type": "text", "text": SEED_QUESTION}]}],
        extra_body={"filters": {"sources": ["nowhere.example"]}, "top_k": 3})
    assert completion.model_extra is not None and completion.model_extra["refused"] is True


def test_errors_are_openai_errors(client: openai.OpenAI, server: LiveServer) -> None:
    user = [{"role": "user", "content": SEED_QUESTION}]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=user)  # type: ignore[arg-type]
    assert "does not exist here" in missing.value.message
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.UnprocessableEntityError) as last:
        client.chat.completions.create(model="extractive", messages=[
            *user, {"role": "assistant", "content": "ok"}])  # type: ignore[list-item]
    assert "last message" in last.value.message
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="extractive", messages=user, n=2)  # type: ignore[arg-type]
    with pytest.raises(openai.UnprocessableEntityError) as image:
        client.chat.completions.create(model="extractive", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}}]}])
    assert "content" in image.value.message
    with pytest.raises(openai.UnprocessableEntityError) as tools:
        client.chat.completions.create(model="extractive", messages=user,  # type: ignore[arg-type]
                                       tools=[{"type": "function", "function": {"name": "f"}}])
    assert "'tools' is not allowed" in tools.value.message
    with pytest.raises(openai.UnprocessableEntityError, match="too long"):
        client.chat.completions.create(model="extractive", stream=True, messages=[
            {"role": "user", "content": "why " * 600}])
    wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong", max_retries=0,
                          timeout=30)
    with wrong, pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_malformed_json_is_an_openai_style_400(server: LiveServer) -> None:
    response = httpx.post(f"{server.url}/v1/chat/completions", content=b"{nope",
                          headers={"content-type": "application/json",
                                   "authorization": f"Bearer {KEY}"}, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "The request body is not valid JSON."
    assert error["type"] == "invalid_request_error"


def test_annotations_point_at_each_marker_and_usage_is_filled(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": SEED_QUESTION}])
    message = completion.choices[0].message
    content = message.content or ""
    citations = {c.number: c for c in _citations(completion.model_extra)}
    assert message.annotations, "the citations travel as OpenAI annotations too"
    for note in message.annotations:
        span = note.url_citation
        extra = span.model_extra or {}
        assert content[span.start_index:span.end_index] == f"[{extra['number']}]"
        cite = citations[extra["number"]]
        assert span.title == cite.headline and span.url == cite.source
        assert extra["quote"] == cite.quote
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 10
    assert completion.usage.prompt_tokens > completion.usage.completion_tokens  # passages read
    assert completion.usage.total_tokens == (completion.usage.prompt_tokens
                                             + completion.usage.completion_tokens)


def test_footnotes_append_the_sources_for_text_only_clients(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": SEED_QUESTION}])
    noted = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": SEED_QUESTION}],
        extra_body={"footnotes": True})
    text = noted.choices[0].message.content or ""
    assert text.startswith(plain.choices[0].message.content or "")
    notes = text.split("\n\nSources:\n", 1)[1].splitlines()
    citations = _citations(noted.model_extra)
    assert len(notes) == len(citations)
    for line, cite in zip(notes, citations, strict=True):
        assert line.startswith(f"[{cite.number}] {cite.headline} ({cite.source}")
        assert cite.quote in line

    stream = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": SEED_QUESTION}],
        stream=True, extra_body={"footnotes": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_langchain_chat_openai_gets_usage_footnotes_and_the_same_text(
        server: LiveServer, assistant: Assistant) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{server.url}/v1", api_key=KEY, model="extractive",  # type: ignore[arg-type]
                     max_retries=0, timeout=120, stream_usage=True)
    direct = assistant.ask(SEED_QUESTION)
    reply = llm.invoke(SEED_QUESTION)
    assert reply.content == direct.text
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 10

    streamed = None
    for piece in llm.stream(SEED_QUESTION):
        streamed = piece if streamed is None else streamed + piece
    assert streamed is not None and streamed.content == direct.text
    assert streamed.usage_metadata is not None and streamed.usage_metadata["total_tokens"] > 0

    noted = llm.bind(extra_body={"footnotes": True}).invoke(SEED_QUESTION)
    assert isinstance(noted.content, str)
    for cite in direct.citations:  # a text-only client still sees every source
        assert f"[{cite.number}] {cite.headline}" in noted.content
