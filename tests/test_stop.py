"""Stopping an answer ends the model's writing at its next token and frees it at once: the
Python API (``ask_stream(stop=...)``), the page's Stop button in real Chromium, and the real
packaged model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from rag.answering.llm_answerer import LLMAnswerer
from rag.api.app import create_app
from rag.assistant import STOPPED, Assistant
from rag.llm.chat_model import FakeChatModel
from rag.records import Answer, Preview
from tests.conftest import SEED_QUESTION, require_model, seeded_assistant
from tests.live_server import LiveServer
from tests.test_browser import CHROMEDRIVER, _chromium

pytestmark = pytest.mark.slow


class Endless(FakeChatModel):
    """Writes "radar " for as long as it is read (at most 5,000 words), counting them."""

    written: int = 0
    closed: bool = False
    pause: float = 0.002  # seconds per word

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            for _ in range(5000):
                self.written += 1
                time.sleep(self.pause)
                if run_manager:  # as the llama.cpp model does for each token
                    run_manager.on_llm_new_token("radar ")
                yield ChatGenerationChunk(message=AIMessageChunk(content="radar "))
        finally:
            self.closed = True


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    return seeded_assistant(tmp_path_factory, "stop")


def _stop_after_preview(assistant: Assistant, answerer: str | None = None) -> Answer:
    stop = threading.Event()
    answer = None
    for event in assistant.ask_stream(SEED_QUESTION, stop=stop, answerer=answerer):
        if isinstance(event, Preview) or (isinstance(event, str) and event):
            stop.set()  # as the Stop button does, once the reader has seen something
        if isinstance(event, Answer):
            answer = event
    assert answer is not None
    return answer


def _with_endless(seeded: Assistant, pause: float | None = None) -> tuple[Assistant, Endless]:
    """The seeded assistant with an endless model writing, one word each ``pause`` seconds."""
    model = Endless()
    if pause is not None:
        model.pause = pause
    writer = LLMAnswerer("endless", model, seeded.embedder, seeded.settings,
                         scorer=seeded.scorer)
    return Assistant(seeded.settings, embedder=seeded.embedder, answerer=writer), model


def test_stop_ends_the_models_writing_at_its_next_token(seeded: Assistant) -> None:
    assistant, model = _with_endless(seeded)
    answer = _stop_after_preview(assistant)
    assert answer.stopped and answer.text == STOPPED and not answer.citations
    assert not answer.refused
    assert model.closed  # the generation was closed, not left suspended
    assert model.written <= 3, model.written
    unstopped = next(e for e in assistant.ask_stream(SEED_QUESTION, answerer="extractive")
                     if isinstance(e, Answer))
    assert not unstopped.stopped and "Azerbaijan" in unstopped.text


def test_a_stopped_real_model_is_free_for_the_next_question(seeded: Assistant) -> None:
    require_model("smollm2-135m")
    first = _stop_after_preview(seeded, "smollm2-135m")
    assert first.stopped and first.text == STOPPED
    done = threading.Event()
    answers: list[Answer] = []

    def ask_again() -> None:
        answers.append(seeded.ask(SEED_QUESTION, answerer="smollm2-135m"))
        done.set()

    threading.Thread(target=ask_again, daemon=True).start()
    assert done.wait(180), "the model stayed locked by the stopped answer"
    assert not answers[0].stopped and answers[0].answerer == "smollm2-135m"


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.skipif(not CHROMEDRIVER.exists(), reason="needs Debian's chromium-driver")
def test_the_pages_stop_button_ends_the_models_writing(
        seeded: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")
    model = Endless(pause=0.01)  # 50 s for its 5,000 words unless stopped
    settings = seeded.settings.model_copy(update={"answerer": "endless"})  # the page's pick
    writer = LLMAnswerer("endless", model, seeded.embedder, settings, scorer=seeded.scorer)
    assistant = Assistant(settings, embedder=seeded.embedder, answerer=writer)
    driver = _chromium(tmp_path)

    def chat() -> str:
        return str(driver.find_element(By.ID, "chat").text)

    try:
        with LiveServer(create_app(assistant=assistant, with_chat=True)) as server:
            driver.get(server.url + "/chat/")
            WebDriverWait(driver, 60, 0.3).until(
                lambda _: driver.find_elements(By.CSS_SELECTOR, "#question textarea"))
            driver.find_element(By.CSS_SELECTOR, "#question textarea").send_keys(SEED_QUESTION)
            driver.find_element(By.ID, "ask").click()
            WebDriverWait(driver, 60, 0.2).until(lambda _: "Azerbaijan" in chat())  # preview
            WebDriverWait(driver, 30, 0.1).until(lambda _: model.written > 0)  # writing
            assert not model.closed
            driver.find_element(By.ID, "stop").click()
            WebDriverWait(driver, 30, 0.2).until(lambda _: STOPPED in chat())
            assert model.closed and model.written < 2000, model.written
            assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()


def _wait_until(done: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.timeout(120)
def test_a_client_that_hangs_up_stops_the_models_writing(seeded: Assistant) -> None:
    # Real HTTP on loopback: the SSE client reads the preview and closes the connection.
    import httpx
    assistant, model = _with_endless(seeded, pause=0.004)  # 5,000 words: 20 s, unstopped
    with LiveServer(create_app(assistant=assistant)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        with client.stream("POST", "/ask/stream", json={"question": SEED_QUESTION}) as reply:
            assert reply.status_code == 200
            for line in reply.iter_lines():
                if line.startswith("event: preview"):
                    break
            # Hang up once the model is writing: before that, there is nothing to stop.
            _wait_until(lambda: model.written > 0)
            assert model.written > 0, "the model never started"
        _wait_until(lambda: model.closed)
        assert model.closed and model.written < 2500, model.written
        # The same through the openai client's stream, closed after the first chunk.
        from openai import OpenAI
        before = model.written
        model.closed = False
        openai = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        stream = openai.chat.completions.create(
            model="default", stream=True, messages=[{"role": "user", "content": SEED_QUESTION}])
        next(iter(stream))
        _wait_until(lambda: model.written > before)
        assert model.written > before, "the model never started"
        stream.close()
        _wait_until(lambda: model.closed)
        assert model.closed and model.written - before < 2500, model.written - before
