"""The HTTP API over a real uvicorn server on loopback, with the real embedding model and Chroma."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import SEED_QUESTION, SEEDS, SHARED, seeded_assistant
from httpx_sse import connect_sse
from live_server import LiveServer
from servers import free_port, server_process

from rag.answering.base import Draft
from rag.api.app import create_app
from rag.assistant import Assistant
from rag.errors import ModelUnavailable
from rag.records import Answer, IngestReport, Passage, Turn
from rag.settings import Settings
from rag.store import write_lock

pytestmark = pytest.mark.slow

FOLLOW_UP = "What did he offer instead?"  # refused alone; answered given the seed question
KEY = "test-key-123"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    return seeded_assistant(tmp_path_factory, "api-data")


@pytest.fixture(scope="module")
def server(assistant: Assistant) -> Iterator[LiveServer]:
    with LiveServer(create_app(assistant=assistant)) as live:
        yield live


@pytest.fixture(scope="module")
def strict(assistant: Assistant, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[LiveServer]:
    """A second app over the same store: API keys and small body limits."""
    settings = Settings(data_dir=assistant.settings.data_dir, answerer="extractive",
                        api_keys=f" {KEY} , other-key ", max_body_bytes=4_000,
                        max_upload_bytes=20_000)
    keyed = Assistant(settings, embedder=assistant.embedder)
    with LiveServer(create_app(assistant=keyed)) as live:
        yield live


def _client(server: LiveServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=120, **kwargs)


def _one_sentence(response: httpx.Response) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.endswith(".") and "\n" not in detail
    assert "Traceback" not in response.text and "File \"" not in response.text
    return detail


# -- asking ----------------------------------------------------------------------------------------
def test_health_reports_the_store_and_counts(server: LiveServer, assistant: Assistant) -> None:
    with _client(server) as http:
        body = http.get("/health").json()
    assert body["status"] == "ok"
    assert body["articles"] == 1
    assert body["chunks"] == assistant.stats()["chunks"] > 0
    assert "extractive" in body["answerers"]


def test_ask_returns_the_same_answer_as_the_python_api(server: LiveServer,
                                                       assistant: Assistant) -> None:
    with _client(server) as http:
        response = http.post("/ask", json={"question": SEED_QUESTION})
    assert response.status_code == 200, response.text
    answer = Answer.model_validate(response.json())
    assert "Azerbaijan" in answer.text and "[1]" in answer.text
    assert answer.citations and not answer.refused
    for cite in answer.citations:
        assert cite.quote in cite.passage and f"[{cite.number}]" in answer.text
    direct = assistant.ask(SEED_QUESTION)
    assert answer.text == direct.text
    assert answer.citations == direct.citations


def test_ask_uses_history_and_filters(server: LiveServer) -> None:
    with _client(server) as http:
        first = http.post("/ask", json={"question": SEED_QUESTION}).json()
        alone = http.post("/ask", json={"question": FOLLOW_UP}).json()
        history = [{"role": "user", "content": SEED_QUESTION},
                   {"role": "assistant", "content": first["text"]}]
        follow = http.post("/ask", json={"question": FOLLOW_UP, "history": history}).json()
        elsewhere = http.post("/ask", json={"question": SEED_QUESTION, "top_k": 2,
                                            "filters": {"sources": ["nowhere.example"]}}).json()
    assert alone["refused"]
    assert not follow["refused"] and "Azerbaijan" in follow["text"]
    assert SEED_QUESTION in follow["standalone_question"]
    assert elsewhere["refused"] and elsewhere["citations"] == []


@pytest.mark.parametrize("path", ["/ask/stream", "/ask?stream=true"])
def test_streaming_sends_deltas_then_the_whole_answer(server: LiveServer, path: str) -> None:
    events: list[tuple[str, Any]] = []
    with _client(server) as http, connect_sse(http, "POST", path,
                                              json={"question": SEED_QUESTION}) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for sse in source.iter_sse():
            events.append((sse.event, json.loads(sse.data)))
            assert len(events) < 1000
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"delta"}
    answer = Answer.model_validate(events[-1][1])
    assert "".join(data["text"] for _, data in events[:-1]) == answer.text
    assert "Azerbaijan" in answer.text and answer.citations


def test_streaming_rejects_bad_input_before_streaming(server: LiveServer) -> None:
    with _client(server) as http:
        response = http.post("/ask/stream", json={"question": "   "})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")
    assert _one_sentence(response) == "Please ask a question."


# -- bad requests ----------------------------------------------------------------------------------
def _chunked(size: int) -> Iterator[bytes]:
    yield b'{"question": "'
    for _ in range(size // 10_000):
        yield b"x" * 10_000
    yield b'"}'


BAD_REQUESTS = [
    ("malformed json", {"content": b'{"question": ', "headers": {"content-type":
                                                                  "application/json"}}, 400),
    ("missing question", {"json": {"history": []}}, 422),
    ("wrong type", {"json": {"question": SEED_QUESTION, "top_k": "many"}}, 422),
    ("out of range", {"json": {"question": SEED_QUESTION, "top_k": 99}}, 422),
    ("unknown field", {"json": {"question": SEED_QUESTION, "debug": True}}, 422),
    ("bad role", {"json": {"question": "x", "history": [{"role": "bot", "content": "x"}]}}, 422),
    ("bad date", {"json": {"question": "x", "filters": {"published_from": "soon"}}}, 422),
    ("not json", {"content": b"question=x", "headers": {"content-type": "text/plain"}}, 422),
    ("a list", {"json": [SEED_QUESTION]}, 422),
    ("too long", {"json": {"question": "why " * 600}}, 422),
    ("unknown generator", {"json": {"question": SEED_QUESTION, "generator": "gpt-9"}}, 422),
    ("huge body", {"json": {"question": "x" * 2_100_000}}, 413),
    ("huge chunked body", {"content": _chunked(2_100_000),
                           "headers": {"content-type": "application/json"}}, 413),
]


@pytest.mark.parametrize(("name", "request_kwargs", "status"), BAD_REQUESTS,
                         ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_a_clear_4xx(server: LiveServer, name: str,
                                      request_kwargs: dict[str, Any], status: int) -> None:
    if name == "huge chunked body":
        request_kwargs = {**request_kwargs, "content": _chunked(2_100_000)}
    with _client(server) as http:
        response = http.post("/ask", **request_kwargs)
    assert response.status_code == status, response.text
    _one_sentence(response)


def test_wrong_method_and_path_are_4xx(server: LiveServer) -> None:
    with _client(server) as http:
        assert http.get("/ask").status_code == 405
        assert http.get("/nothing-here").status_code == 404
        _one_sentence(http.get("/nothing-here"))


def test_api_keys_guard_everything_but_health(strict: LiveServer) -> None:
    question = {"question": SEED_QUESTION}
    with _client(strict) as http:
        assert http.get("/health").status_code == 200
        missing = http.post("/ask", json=question)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "API key" in _one_sentence(missing)
        assert http.post("/ask", json=question,
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.post("/ask", json=question,
                         headers={"Authorization": f"Basic {KEY}"}).status_code == 401
        assert http.post("/ask/stream", json=question).status_code == 401
        assert http.post("/ingest", files={"files": ("a.txt", b"x")}).status_code == 401
        assert http.get("/v1/models").status_code == 401
        assert http.post("/ask", json=question,
                         headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert http.post("/ask", json=question,
                         headers={"X-API-Key": "other-key"}).status_code == 200


def test_body_limits_follow_the_settings(strict: LiveServer, assistant: Assistant) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    with _client(strict, headers=auth) as http:
        big = http.post("/ask", json={"question": "x" * 5_000})
        assert big.status_code == 413
        assert "4000 bytes" in _one_sentence(big)
        upload = http.post("/ingest", files={"files": ("big.txt", b"word " * 8_000)})
        assert upload.status_code == 413, upload.text
        _one_sentence(upload)
        # Several files within the request limit but over the upload limit together.
        pieces = [("files", (f"p{i}.txt", b"word " * 1_500)) for i in range(4)]
        assert http.post("/ingest", files=pieces).status_code == 413
        uploads = assistant.settings.data_dir / "uploads"
        assert not any(uploads.glob("p*.txt"))  # all or nothing: no file was kept
        assert not any(uploads.glob(".*"))  # no staging or partial files left behind
        # The server still answers after refusing.
        assert http.post("/ask", json={"question": SEED_QUESTION}).status_code == 200


class FailingAnswerer:
    """An answerer that fails on purpose, the way a broken model or library would."""

    name = "failing"

    def __init__(self) -> None:
        self.mode = "crash"

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        return question

    def stream(self, question: str, passages: Sequence[Passage], *,
               stop: object = None) -> Iterator[str | Draft]:
        if self.mode == "unavailable":
            raise ModelUnavailable("The local model could not be loaded.")
        if self.mode == "midstream":
            yield "Half an answer "
        raise RuntimeError("/srv/secret/path token=abc123 exploded")


@pytest.fixture(scope="module")
def failing(assistant: Assistant) -> Iterator[tuple[LiveServer, FailingAnswerer]]:
    answerer = FailingAnswerer()
    settings = assistant.settings.model_copy(update={"answerer": answerer.name})
    broken = Assistant(settings, embedder=assistant.embedder, answerer=answerer)
    with LiveServer(create_app(assistant=broken)) as live:
        yield live, answerer


def test_failures_are_a_sentence_never_a_traceback(
        failing: tuple[LiveServer, FailingAnswerer]) -> None:
    server, answerer = failing
    question = {"question": SEED_QUESTION}
    with _client(server) as http:
        answerer.mode = "crash"
        crashed = http.post("/ask", json=question)
        assert crashed.status_code == 500
        assert _one_sentence(crashed) == ("Something went wrong on the server; "
                                          "the error was logged.")
        assert "secret" not in crashed.text and "RuntimeError" not in crashed.text
        answerer.mode = "unavailable"
        unavailable = http.post("/ask", json=question)
        assert unavailable.status_code == 503
        assert _one_sentence(unavailable) == "The local model could not be loaded."
        # A stream starts with the preview (the quoted sentences) before the model runs, so
        # a model that fails, even after writing half an answer, ends it with one `error`
        # event; what the model wrote was never checked and never appears.
        for mode in ("crash", "midstream"):
            answerer.mode = mode
            with connect_sse(http, "POST", "/ask/stream", json=question) as source:
                events = [(sse.event, sse.data) for sse in source.iter_sse()]
            assert [kind for kind, _ in events] == ["preview", "error"]
            assert json.loads(events[1][1])["detail"].startswith("Something went wrong")
            assert "Half an answer" not in str(events) and "secret" not in str(events)
        assert http.get("/health").status_code == 200  # the server lives on
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0,
                       timeout=60) as client:
        messages: list[Any] = [{"role": "user", "content": SEED_QUESTION}]
        stream = client.chat.completions.create(model="failing", messages=messages,
                                                stream=True)
        with pytest.raises(openai.APIError, match="Something went wrong"):
            for chunk in stream:
                assert "Half an answer" not in (chunk.choices[0].delta.content or "")
        answerer.mode = "crash"
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="failing", messages=messages)


def test_an_ingest_while_another_process_writes_is_a_409(server: LiveServer,
                                                         assistant: Assistant) -> None:
    with write_lock(assistant.settings), _client(server) as http:  # as `rag ingest` would
        response = http.post("/ingest", files={"files": ("late.txt", ARTICLE.encode())})
    assert response.status_code == 409
    assert "one process may write" in _one_sentence(response)


# -- ingest ----------------------------------------------------------------------------------------
ARTICLE = """Lighthouse keepers return to Nordhavn

The harbour town of Nordhavn has hired two lighthouse keepers for the first time since 1987,
the town council said on Tuesday. The keepers, Ingrid Solberg and Mats Vik, will maintain the
restored lamp and run guided tours for visitors during the summer season.
"""


def test_ingest_uploads_articles_that_can_then_be_asked(server: LiveServer,
                                                        assistant: Assistant) -> None:
    before = assistant.stats()
    files = [("files", ("../../etc/lighthouse.txt", ARTICLE.encode(), "text/plain")),
             ("files", ("tool.exe", b"MZ\x00\x01", "application/octet-stream")),
             ("files", ("broken.json", b"{not json", "application/json"))]
    with _client(server) as http:
        response = http.post("/ingest", files=files)
        assert response.status_code == 200, response.text
        report = IngestReport.model_validate(response.json())
        assert report.added == 1 and report.skipped == 2
        assert set(report.skipped_reasons) == {"tool.exe", "broken.json"}
        assert not any(str(assistant.settings.data_dir) in k for k in report.skipped_reasons)
        again = IngestReport.model_validate(http.post("/ingest", files=files[:1]).json())
        assert again.added == 0 and again.unchanged == 1
        answer = http.post("/ask", json={"question": "Who are the new lighthouse keepers of "
                                                     "Nordhavn?"}).json()
    assert "Solberg" in answer["text"]
    assert answer["citations"][0]["headline"] == "Lighthouse keepers return to Nordhavn"
    # The citation names the file, never the server's folders; it is stored in the uploads
    # folder (not ../../etc).
    assert answer["citations"][0]["source"] == "lighthouse.txt"
    stored = assistant.store.records([answer["citations"][0]["chunk_id"]])
    source = Path(next(iter(stored.values())).metadata["source"])
    assert source.parent == assistant.settings.data_dir / "uploads"
    assert assistant.stats()["articles"] == before["articles"] + 1


def test_ingest_needs_files(server: LiveServer) -> None:
    with _client(server) as http:
        response = http.post("/ingest")
    assert response.status_code == 422
    _one_sentence(response)


# -- the schema ------------------------------------------------------------------------------------
def test_openapi_schema_describes_the_api(server: LiveServer) -> None:
    with _client(server) as http:
        schema = http.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/ask", "/ask/stream", "/ingest", "/health", "/v1/chat/completions",
            "/v1/models"} <= set(paths)
    components = schema["components"]["schemas"]
    ask = components["AskRequest"]
    assert ask["required"] == ["question"] and ask["additionalProperties"] is False
    assert ask["properties"]["question"]["maxLength"] == 2000
    assert components["ChatCompletionRequest"]["additionalProperties"] is False
    ok = paths["/ask"]["post"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/Answer")
    assert "text/event-stream" in ok
    assert "text/event-stream" in paths["/ask/stream"]["post"]["responses"]["200"]["content"]
    assert {"401", "413", "422"} <= set(paths["/ask"]["post"]["responses"])
    upload = paths["/ingest"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert components["Citation"]["properties"]["quote"]["description"]


# -- many users at once (issue 8) ----------------------------------------------------------------
def _rgb_records(count: int) -> bytes:
    lines = (SHARED / "eval" / "rgb" / "corpus.jsonl").read_text().splitlines()[:count]
    return "\n".join(lines).encode()


def test_32_questions_at_once_while_an_ingest_writes(server: LiveServer,
                                                     assistant: Assistant) -> None:
    questions = [json.loads(line)["question"] for line in
                 (SHARED / "eval" / "rgb" / "questions.jsonl").read_text().splitlines()][:28]
    questions += [SEED_QUESTION, FOLLOW_UP, "Who are the new lighthouse keepers?", "Iran?"]
    assert len(questions) == 32
    chunks_before = assistant.stats()["chunks"]
    barrier = threading.Barrier(33, timeout=60)

    def ingest() -> httpx.Response:
        with _client(server) as http:
            barrier.wait()
            return http.post("/ingest", files={"files": ("rgb.jsonl", _rgb_records(120))})

    def ask(question: str) -> httpx.Response:
        with _client(server) as http:
            barrier.wait()
            return http.post("/ask", json={"question": question})

    with ThreadPoolExecutor(max_workers=33) as pool:
        writing = pool.submit(ingest)
        asked = [pool.submit(ask, q) for q in questions]
        with _client(server) as http:  # the service stays responsive under load
            health = http.get("/health")
        responses = [f.result(timeout=300) for f in asked]
        ingested = writing.result(timeout=300)

    assert health.status_code == 200
    assert ingested.status_code == 200, ingested.text
    assert IngestReport.model_validate(ingested.json()).added == 120
    assert [r.status_code for r in responses] == [200] * 32, [r.text for r in responses]
    cited = {}
    for response in responses:
        answer = Answer.model_validate(response.json())
        for cite in answer.citations:
            cited[cite.chunk_id] = cite.passage
            assert cite.quote == cite.passage[cite.quote_start:cite.quote_start + len(cite.quote)]
    assert cited, "some questions must have been answered"
    stored = assistant.store.chunks.get(ids=list(cited), include=["documents"])
    documents = dict(zip(stored["ids"], stored["documents"] or [], strict=True))
    assert documents == cited  # every citation is a stored chunk, word for word
    assert assistant.stats()["chunks"] > chunks_before


# -- the command and the chat page ----------------------------------------------------------------
def test_rag_serve_command_serves_the_api(tmp_path: Path) -> None:
    rag = str(Path(sys.executable).parent / "rag")
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "cli-data"),
           "RAG_EMBEDDING_BACKEND": "fake"}
    subprocess.run([rag, "ingest", "-q", str(SEEDS)], env=env, check=True, timeout=120,
                   capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server_process([rag, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-chat"],
                        ready_url=url + "/health", log=tmp_path / "serve.log", env=env), \
            httpx.Client(base_url=url, timeout=120) as http:
        assert http.get("/health").json()["articles"] == 1
        answer = http.post("/ask", json={"question": SEED_QUESTION}).json()
        assert "Azerbaijan" in answer["text"]
        assert http.get("/chat/").status_code == 404  # --no-chat
        # The server owns the embedded store: an outside ingest is refused, plainly.
        outside = subprocess.run([rag, "ingest", "-q", str(SEEDS)], env=env, timeout=120,
                                 capture_output=True, text=True)
        assert outside.returncode == 2 and "is using" in outside.stderr
        assert "Traceback" not in outside.stderr


def test_chat_page_is_mounted_in_the_same_server(assistant: Assistant) -> None:
    pytest.importorskip("rag.chat")
    settings = Settings(data_dir=assistant.settings.data_dir, answerer="extractive",
                        api_keys=KEY)
    keyed = Assistant(settings, embedder=assistant.embedder)
    with LiveServer(create_app(assistant=keyed, with_chat=True)) as live, \
            _client(live) as http:
        page = http.get("/chat/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert http.get("/", follow_redirects=False).headers["location"] == "/chat/"
        # With API keys set, the chat page takes a key as its password.
        assert http.get("/chat/config").status_code == 401
        assert http.post("/chat/login", data={"username": "me", "password": "nope"}
                         ).status_code >= 400
        assert http.post("/chat/login", data={"username": "me", "password": KEY}
                         ).status_code == 200
        assert http.get("/chat/config").status_code == 200
        assert http.get("/health").status_code == 200
        assert http.post("/ask", json={"question": SEED_QUESTION},
                         headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
