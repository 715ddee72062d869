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

from rag.answering.base import citation_for
from rag.answering.llm_answerer import LLMAnswerer
from rag.api.app import create_app
from rag.assistant import Assistant
from rag.chat.handlers import ask as page_ask
from rag.llm.chat_model import FakeChatModel
from rag.records import Answer, Preview, Stage
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
    # First, before the model writes: the sentence that answers, quoted and cited.
    preview = events[0]
    assert isinstance(preview, Preview) and "Azerbaijan" in preview.text and preview.citations
    assert "preview_ms" in answer.timings_ms
    assert answer.timings_ms["preview_ms"] <= answer.timings_ms["total_ms"]


def test_no_preview_when_the_articles_do_not_answer(assistant: Assistant) -> None:
    events = list(assistant.ask_stream("Who won the 2019 Tour de France?"))
    assert not any(isinstance(e, Preview) for e in events) and events[-1].refused


def test_server_sent_events(server: LiveServer) -> None:
    deltas: list[str] = []
    final: dict[str, Any] = {}
    kinds: list[str] = []
    with httpx.Client(base_url=server.url, timeout=60) as http, connect_sse(
            http, "POST", "/ask/stream", json={"question": SEED_QUESTION}) as source:
        for sse in source.iter_sse():
            kinds.append(sse.event)
            if sse.event == "delta":
                deltas.append(json.loads(sse.data)["text"])
            elif sse.event == "preview":
                assert "Azerbaijan" in Preview.model_validate_json(sse.data).text
            else:
                assert sse.event == "answer"
                final = json.loads(sse.data)
            assert len(deltas) < 500
    answer = Answer.model_validate(final)
    _checked(answer)
    assert deltas and "".join(deltas) == answer.text
    assert kinds[0] == "preview" and kinds[-1] == "answer"


@pytest.mark.parametrize("footnotes", [False, True])
def test_openai_stream(server: LiveServer, footnotes: bool) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0,
                       timeout=60) as client:
        chunks = list(client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": SEED_QUESTION}], stream=True,
            extra_body={"footnotes": footnotes}))
    joined = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1].model_extra or {}
    previews = [c.model_extra["preview"] for c in chunks if (c.model_extra or {}).get("preview")]
    assert len(previews) == 1 and "Azerbaijan" in previews[0]["text"]
    assert joined == last["final_text"]
    assert "Azerbaijan" in joined and "Oslo" not in joined
    assert ("\n\nSources:\n" in joined) is footnotes


def test_page_never_shows_text_the_answer_does_not_hold(assistant: Assistant) -> None:
    updates = list(page_ask(assistant, SEED_QUESTION, []))
    final_state = updates[-1][2]
    answer = final_state[-1].answer
    assert answer is not None
    _checked(answer)
    shown = [chat[-1]["content"] for _, chat, _, _ in updates[:-1]]
    assert all("Oslo" not in text for text in shown)
    assert any("_From the articles, while the model writes" in text and
               "Azerbaijan" in text for text in shown)


def test_a_real_model_streams_only_its_checked_answer(seeded: Assistant) -> None:
    require_model("smollm2-135m")
    events = list(seeded.ask_stream(SEED_QUESTION, answerer="smollm2-135m"))
    answer = events[-1]
    assert isinstance(answer, Answer) and answer.answerer == "smollm2-135m"
    assert "".join(e for e in events[:-1] if isinstance(e, str)) == answer.text
    assert answer.text  # an answer or a refusal, never nothing


def test_a_real_model_answer_goes_through_its_stages_in_order(seeded: Assistant) -> None:
    require_model("smollm2-135m")
    events = list(seeded.ask_with_stages(SEED_QUESTION, answerer="smollm2-135m"))
    stages = [(e.name, e.passages) for e in events if isinstance(e, Stage)]
    read = stages[1][1]  # the passages retrieved, at most top_k
    assert 1 <= read <= seeded.settings.top_k
    assert stages == [("searching", 0), ("reading", read), ("writing", read)]
    kinds = [type(e).__name__ for e in events]
    # Reading before the preview, writing after it, the checked text after that.
    assert kinds.index("Preview") == kinds.index("Stage") + 2
    assert kinds[kinds.index("Preview") + 1] == "Stage" and kinds[-1] == "Answer"
    assert not any(isinstance(e, Stage) for e in seeded.ask_stream(SEED_QUESTION,
                                                                   answerer="extractive"))
    quick = [e for e in seeded.ask_with_stages(SEED_QUESTION, answerer="extractive")
             if isinstance(e, Stage)]
    assert [e.name for e in quick] == ["searching"]


def test_a_preview_without_an_answering_sentence_names_what_is_read(
        assistant: Assistant) -> None:
    from rag.chat.render import preview_markdown

    passages = assistant.retrieve(SEED_QUESTION)
    cited = Preview(text="", citations=[citation_for(1, passages[0], 0, 20, 0.5)])
    shown = preview_markdown(cited)
    assert shown.startswith("Passages: ")
    assert "Bush, Putin meet" in shown
    answered = preview_markdown(Preview(text="Putin offered a site [1].", citations=[]))
    assert answered.startswith("_From the articles") and "Putin offered" in answered


def test_a_figure_question_is_answered_with_the_newest_dated_figure(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    import json as json_

    from rag.settings import Settings

    folder = tmp_path_factory.mktemp("figures")
    corpus = folder / "recall.jsonl"
    corpus.write_text("\n".join(json_.dumps(r) for r in [
        {"id": "may", "published": "2025-05-02", "title": "Brightline recalls Ember heaters",
         "text": "Brightline has recalled 38,500 Ember space heaters after reports of "
                 "overheating, the company said on Friday."},
        {"id": "july", "published": "2025-07-14", "title": "Brightline widens heater recall",
         "text": "Brightline has now recalled 112,000 Ember space heaters, nearly three times "
                 "the first figure, after more reports of overheating."},
    ]) + "\n")
    seeded = Assistant(Settings(data_dir=folder / "data", answerer="extractive"))
    seeded.ingest([corpus])
    model = FakeChatModel(default="Brightline recalled 38,500 Ember heaters [1].")  # stale
    llm = LLMAnswerer("fake", model, seeded.embedder, seeded.settings, scorer=seeded.scorer)
    assistant = Assistant(seeded.settings, embedder=seeded.embedder, answerer=llm)
    events = list(assistant.ask_stream("How many Ember space heaters has Brightline recalled?"))
    answer = events[-1]
    assert isinstance(answer, Answer) and not answer.refused
    assert answer.text.startswith("As of 14 July 2025:") and "112,000" in answer.text
    assert answer.answerer == "extractive" and model.calls == []  # the model was not asked
    assert "".join(e for e in events if isinstance(e, str)) == answer.text
