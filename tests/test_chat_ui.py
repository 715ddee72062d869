"""The chat page's handlers, called directly: real embedding model, real Chroma, no browser."""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path

import gradio as gr
import httpx
import pytest
from conftest import REPO, SEED_QUESTION, SEEDS, running_chroma
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import free_port

from rag.answering.base import Draft
from rag.answering.extractive import citation_for
from rag.answering.factory import available_answerers
from rag.assistant import Assistant
from rag.chat.conversation import Exchange
from rag.chat.handlers import add_articles, ask, example_text, new_conversation
from rag.chat.page import EXAMPLES, build_demo
from rag.chat.render import (
    GENERIC_ERROR,
    answer_markdown,
    citation_html,
    escape_markdown,
    sources_html,
)
from rag.chat.serving import serve_options
from rag.errors import ModelUnavailable
from rag.records import Answer, Citation, Passage, Turn
from rag.settings import Settings

pytestmark = pytest.mark.slow

HOSTILE = ("<script>window.__pwned=1</script> <img src=x onerror=alert(1)> **bold** "
           "[1](javascript:x)")


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    """One real Assistant (packaged model, embedded Chroma) over the seeds, for the module."""
    data = tmp_path_factory.mktemp("chat-ui") / "data"
    helper = Assistant(Settings(data_dir=data, answerer="extractive", chroma_mode="embedded"))
    report = helper.ingest([SEEDS])
    assert report.added >= 1
    return helper


def run(updates: Iterator[tuple[str, list[dict[str, str]], list[Exchange], str]]):
    """All updates of one ask, and the last one unpacked."""
    seen = list(updates)
    textbox, chat, state, sources = seen[-1]
    return seen, textbox, chat, state, sources


@pytest.fixture(scope="module")
def first_turn(assistant: Assistant):
    """The seed question asked once; tests continue from its conversation."""
    return run(ask(assistant, SEED_QUESTION, []))


# -- asking -----------------------------------------------------------------------------------
def test_seed_question_streams_an_answer_with_its_highlighted_source(first_turn) -> None:
    seen, textbox, chat, state, sources = first_turn
    # First the question shows with a placeholder, then text, then the finished answer.
    placeholder = seen[0][1][-1]
    assert placeholder["role"] == "assistant" and "Searching the articles" in placeholder["content"]
    assert len(seen) >= 3
    assert textbox == ""
    assert [m["role"] for m in chat] == ["user", "assistant"]
    answer = state[0].answer
    assert answer is not None and not answer.refused and answer.citations
    assert "Azerbaijan" in chat[1]["content"]
    # The [1] marker links to source 1 of answer 1, which the sources panel holds.
    assert '<a href="#cite-1-1"' in chat[1]["content"]
    assert 'id="cite-1-1"' in sources and " open" in sources
    cite = answer.citations[0]
    assert "Azerbaijan" in cite.quote
    marked = sources.split("<mark>", 1)[1].split("</mark>", 1)[0]
    assert "Azerbaijan" in marked
    assert cite.headline in sources and "000_98df9f2bcfa30ca5.txt" in sources
    assert "Searched for: “What did Putin offer instead of the Czech radar?”" in sources


def test_follow_up_keeps_the_conversation_and_shows_what_was_searched(
        assistant: Assistant, first_turn) -> None:
    state = first_turn[3]
    _, _, chat, state2, sources = run(ask(assistant, "What did Gates say about it?", state))
    assert len(state2) == 2 and len(state) == 1  # the earlier state is not mutated
    answer = state2[1].answer
    assert answer is not None
    assert answer.standalone_question != answer.question
    assert "Czech radar" in answer.standalone_question  # the follow-up got its context
    assert [m["role"] for m in chat] == ["user", "assistant"] * 2
    assert "Searched for:" in chat[3]["content"]
    # Both answers' sources are listed, newest first and open; its passage names Gates.
    assert sources.index('id="turn-2"') < sources.index('id="turn-1"')
    assert 'id="cite-2-1" open' in sources and 'id="cite-1-1">' in sources
    assert "Gates" in sources.split('id="turn-1"')[0]


def test_a_question_the_articles_do_not_answer_gets_a_plain_refusal(assistant: Assistant) -> None:
    _, _, chat, state, sources = run(ask(assistant, "Who won the 2022 World Cup?", []))
    answer = state[0].answer
    assert answer is not None and answer.refused and not answer.citations
    assert "don't say" in chat[1]["content"]
    assert "cite-" not in chat[1]["content"]
    assert "The indexed articles do not answer this." in sources


def test_empty_question_changes_nothing(assistant: Assistant, first_turn) -> None:
    state = first_turn[3]
    seen, _, chat, state2, _ = run(ask(assistant, "   ", state))
    assert len(seen) == 1 and state2 == list(state) and len(chat) == 2


def test_settings_are_passed_on_and_bad_filters_are_one_sentence(assistant: Assistant) -> None:
    _, _, _, state, _ = run(ask(assistant, SEED_QUESTION, [], "extractive", 1))
    answer = state[0].answer
    assert answer is not None and len(answer.citations) == 1
    # A source filter that matches nothing: nothing retrieved, so a refusal.
    _, _, _, state, _ = run(ask(assistant, SEED_QUESTION, [], "extractive", 4, "example.org"))
    assert state[0].answer is not None and state[0].answer.refused
    # The seed folder as the source filter finds the answer again.
    _, _, _, state, _ = run(ask(assistant, SEED_QUESTION, [], "extractive", 4, str(SEEDS)))
    assert state[0].answer is not None and not state[0].answer.refused
    # An undated article is outside any date range.
    _, _, _, state, _ = run(ask(assistant, SEED_QUESTION, [], None, None, "", "2007-01-01"))
    assert state[0].answer is not None and state[0].answer.refused
    # Words that name a period are a date range too; words that name none are an error.
    _, _, _, state, _ = run(ask(assistant, SEED_QUESTION, [], None, None, "", "last week"))
    assert state[0].answer is not None and state[0].answer.refused
    _, _, chat, state, sources = run(ask(assistant, SEED_QUESTION, [], None, None, "", "soon"))
    assert state[0].answer is None and state[0].error
    assert "filters are not valid" in chat[1]["content"] and "Traceback" not in chat[1]["content"]
    assert "could not be answered" in sources


class BrokenAnswerer:
    """An answerer whose model is gone (or that fails unexpectedly)."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        return question

    def stream(self, question: str, passages: Sequence[Passage], *,
               stop: object = None) -> Iterator[str | Draft]:
        yield "Partial "
        raise self.error


class PiecewiseAnswerer:
    """Writes in pieces, as a language model streams tokens; its check keeps two sentences."""

    name = "piecewise"

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        return question

    def stream(self, question: str, passages: Sequence[Passage], *,
               stop: object = None) -> Iterator[str | Draft]:
        yield from ["Putin offered ", "a radar site ", "in Azerbaijan <b>now</b> [1]. ",
                    "An unchecked claim. "]
        passage = next(p for p in passages if "Seeking" in p.text)
        start = passage.text.index("Seeking")
        cite = citation_for(1, passage, start, passage.text.index(".", start) + 1, 1.0)
        yield Draft(text="Putin offered a radar site in Azerbaijan <b>now</b>. [1] It was "
                    "in Azerbaijan. [1]", citations=[cite], supported_sentences=2,
                    total_sentences=2)


def test_the_page_shows_the_checked_answer_sentence_by_sentence(assistant: Assistant) -> None:
    writer = Assistant(assistant.settings, embedder=assistant.embedder,
                       answerer=PiecewiseAnswerer())
    seen, _, chat, state, sources = run(ask(writer, SEED_QUESTION, [], "piecewise"))
    shown = [update[1][-1]["content"] for update in seen]
    # The stages, the extractive preview under them while the model writes, then the model's
    # checked answer.
    assert shown[0] == "_Searching the articles…_"
    k = int(re.fullmatch(r"_Reading (\d+) passages…_", shown[1]).group(1))
    assert 1 <= k <= assistant.settings.top_k
    assert shown[2].startswith(f"_Reading {k} passages…_\n\n_From the articles, while the model "
                               "writes its answer:_")
    assert "Azerbaijan" in shown[2]
    assert shown[3].startswith(f"_Writing the answer from {k} passages; each sentence is checked")
    assert "Azerbaijan" in shown[3]
    shown = shown[3:]
    assert shown[1] == "Putin offered a radar site in Azerbaijan &lt;b&gt;now&lt;/b&gt;\\. \\[1\\] "
    assert shown[2].endswith("It was in Azerbaijan\\. \\[1\\]")
    assert not any("unchecked" in text or text == "Putin offered " for text in shown)
    assert shown[-1].endswith('<a href="#cite-1-1" title="Show source 1">[1]</a>'
                              "\n\n_Answered by piecewise_")
    assert state[0].answer is not None and state[0].answer.answerer == "piecewise"
    assert "by piecewise" in sources and "<mark>Seeking to ease the tension" in sources


def test_a_missing_model_is_a_message_in_the_chat(assistant: Assistant) -> None:
    broken = Assistant(assistant.settings, embedder=assistant.embedder, answerer=BrokenAnswerer(
        "tiny-llm", ModelUnavailable("The model tiny-llm is not installed.")))
    seen, _, chat, state, _ = run(ask(broken, SEED_QUESTION, [], "tiny-llm"))
    # What it wrote before failing was never checked, so it was never shown.
    assert not any("Partial" in update[1][-1]["content"] for update in seen)
    assert state[0].error == "The model tiny-llm is not installed."
    assert "The model tiny\\-llm is not installed\\." in chat[1]["content"]


def test_an_unexpected_failure_is_logged_and_shown_as_one_generic_sentence(
        assistant: Assistant, caplog: pytest.LogCaptureFixture) -> None:
    broken = Assistant(assistant.settings, embedder=assistant.embedder, answerer=BrokenAnswerer(
        "flaky", RuntimeError("socket closed at /srv/secret/path")))
    with caplog.at_level(logging.ERROR, logger="rag.chat.handlers"):
        _, _, chat, state, _ = run(ask(broken, SEED_QUESTION, []))
    assert state[0].error == GENERIC_ERROR
    assert "secret" not in chat[1]["content"] and "Traceback" not in chat[1]["content"]
    assert "socket closed" in caplog.text  # the details go to the log, not to the user


@pytest.mark.timeout(180)
def test_a_store_that_goes_away_is_a_message_in_the_chat(
        assistant: Assistant, tmp_path: Path) -> None:
    with running_chroma(tmp_path / "chroma") as (server, port):
        remote = Assistant(Settings(data_dir=tmp_path / "data", chroma_mode="http",
                                    chroma_host="127.0.0.1", chroma_port=port),
                           embedder=assistant.embedder)
        remote.ingest([SEEDS])
        _, _, _, state, _ = run(ask(remote, SEED_QUESTION, []))
        assert state[0].answer is not None and not state[0].answer.refused
        server.terminate()
        server.wait(timeout=30)
        _, _, chat, state, _ = run(ask(remote, "And how did Gates respond?", state))
        assert state[1].answer is None and state[1].error
        assert chat[-1]["content"].startswith("⚠️") and "Traceback" not in chat[-1]["content"]


def test_the_example_questions_are_answered_from_the_seeds(assistant: Assistant) -> None:
    assert SEED_QUESTION in EXAMPLES
    for question in EXAMPLES:
        answer = assistant.ask(question)
        assert not answer.refused and answer.citations, question


def test_clicking_an_example_asks_its_text() -> None:
    selected = gr.SelectData(None, {"index": 0, "value": {"text": SEED_QUESTION}})
    assert example_text(selected) == SEED_QUESTION
    assert new_conversation()[:2] == ([], []) and new_conversation()[3] == []


# -- uploads ----------------------------------------------------------------------------------
def test_uploaded_articles_are_reported_and_answer_at_once(
        assistant: Assistant, tmp_path: Path) -> None:
    article = tmp_path / "skerryvore.txt"
    article.write_text(f"Lighthouse keepers return to Skerryvore {HOSTILE}\n\n"
                       "The Northern Lighthouse Board said two keepers will return to the "
                       "Skerryvore lighthouse for the summer, the first time since it was "
                       "automated in 1972. The keepers will repair the lamp and count seabirds.\n",
                       encoding="utf-8")
    cleared, report = add_articles(assistant, [str(article)])
    assert cleared is None
    assert report.startswith("**Added 1**") and "answer questions now" in report
    assert (assistant.settings.data_dir / "uploads" / "skerryvore.txt").is_file()
    _, _, chat, state, sources = run(
        ask(assistant, "When will the keepers return to the Skerryvore lighthouse?", []))
    answer = state[0].answer
    assert answer is not None and not answer.refused
    assert answer.citations[0].headline.startswith("Lighthouse keepers return to Skerryvore")
    # The article's markup is shown as text, never as HTML.
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in sources
    assert "<script" not in sources and "<img" not in sources
    assert "skerryvore.txt" in sources and str(tmp_path) not in sources
    # Uploading the same file again changes nothing.
    assert add_articles(assistant, [str(article)])[1].startswith("**Added 0**, updated 0, "
                                                                  "unchanged 1")


def test_a_batch_over_the_cap_is_refused_whole_and_unusable_files_are_named(
        assistant: Assistant, tmp_path: Path) -> None:
    small = Assistant(assistant.settings.model_copy(update={"max_upload_bytes": 500}),
                      embedder=assistant.embedder)
    before = small.stats()
    big = tmp_path / "big.txt"
    big.write_text("Headline\n\n" + "word " * 200, encoding="utf-8")
    empty = tmp_path / "empty.md"
    empty.write_text("", encoding="utf-8")
    binary = tmp_path / "scan.pdf"
    binary.write_bytes(b"%PDF-1.4\x00\x01\x02")
    # The page applies the API's policy: the batch together may hold max_upload_bytes.
    _, report = add_articles(small, [str(big), str(empty)])
    assert report == "⚠️ The uploaded files are larger than the limit of 500 bytes\\."
    assert small.stats() == before
    assert not (small.settings.data_dir / "uploads" / "big.txt").exists()
    _, report = add_articles(small, [str(empty), str(binary)])
    assert "**Added 0**" in report and "skipped 2" in report
    assert "empty\\.md: file is empty" in report
    assert "scan\\.pdf: file is not a readable PDF" in report
    assert small.stats() == before
    assert str(tmp_path) not in report and str(small.settings.data_dir) not in report
    assert add_articles(small, [])[1].startswith("Choose one or more")


# -- rendering --------------------------------------------------------------------------------
class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


@settings(max_examples=60, deadline=None)
@given(headline=st.text(), passage=st.text(min_size=1), source=st.text(min_size=1),
       cut=st.integers(min_value=0, max_value=50))
def test_article_text_never_becomes_markup(headline: str, passage: str, source: str,
                                           cut: int) -> None:
    start = min(cut, len(passage) - 1)
    cite = Citation(number=1, chunk_id="a:0", article_id="a", headline=headline + HOSTILE,
                    source=source, passage=passage + HOSTILE, quote=passage[start:],
                    quote_start=start, start=0, end=len(passage), score=1.0)
    parser = _Tags()
    parser.feed(citation_html(cite, 1, open_=True))
    assert parser.tags <= {"details", "summary", "span", "blockquote", "mark", "a"}
    assert parser.attrs <= {"class", "id", "open", "title", "href", "target", "rel"}
    answer = Answer(question=headline or "q", standalone_question=headline or "q",
                    text=passage + HOSTILE + " [1]", citations=[cite])
    text = answer_markdown(answer, 1)
    parser = _Tags()
    parser.feed(text)
    assert parser.tags <= {"a"} and parser.attrs <= {"href", "title"}


def test_markdown_escaping_keeps_the_text_literal() -> None:
    assert escape_markdown("1. *a* <b>&") == "1\\. \\*a\\* &lt;b&gt;&amp;"
    source = "javascript:alert(1)"
    cite = Citation(number=1, chunk_id="a:0", article_id="a", headline="h", source=source,
                    passage="p", quote="p", quote_start=0, start=0, end=1, score=1.0)
    assert "href" not in citation_html(cite, 1, open_=False)  # only http(s) sources link
    web = cite.model_copy(update={"source": 'https://example.org/a?x="><script>'})
    assert 'href="https://example.org/a?x=&quot;&gt;&lt;script&gt;"' in citation_html(
        web, 1, open_=False)
    assert sources_html([]).startswith('<p class="empty">')


# -- the page ---------------------------------------------------------------------------------
def test_the_page_offers_the_examples_the_answerers_and_the_routes(assistant: Assistant) -> None:
    demo = build_demo(assistant)
    config = demo.get_config_file()
    props = [c.get("props", {}) for c in config["components"]]
    chatbot = next(p for p in props if p.get("elem_id") == "chat")
    assert [e["text"] for e in chatbot["examples"]] == list(EXAMPLES)
    generator = next(p for p in props if p.get("elem_id") == "answerer")
    assert generator["value"] == "extractive"
    assert [choice[0] for choice in generator["choices"]] == [
        n for n in available_answerers(assistant.settings) if n != "smollm2-135m"]
    api = {d.get("api_name") for d in config["dependencies"]}
    assert {"ask", "add_articles"} <= api


def test_serve_options_block_the_data_directory_env_and_repository(assistant: Assistant) -> None:
    options = serve_options(assistant.settings)
    blocked = options["blocked_paths"]
    assert str(assistant.settings.data_dir.resolve()) in blocked
    assert str((Path.cwd() / ".env").resolve()) in blocked
    assert str(SEEDS.parent.resolve()) in blocked
    assert options["allowed_paths"] == [] and options["max_file_size"] == \
        assistant.settings.max_upload_bytes
    from gradio.utils import get_upload_folder

    upload = Path(get_upload_folder()).resolve()
    assert not any(upload.is_relative_to(p) for p in blocked if not p.endswith(".env"))


@pytest.mark.timeout(120)
def test_mounted_in_fastapi_it_answers_and_refuses_private_files(assistant: Assistant) -> None:
    import fastapi
    import uvicorn

    app = gr.mount_gradio_app(fastapi.FastAPI(), build_demo(assistant), path="/chat",
                              **serve_options(assistant.settings))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}/chat"
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 30
            while not server.started:
                assert time.monotonic() < deadline and thread.is_alive()
                time.sleep(0.1)
            assert client.get(base + "/").status_code == 200
            sqlite = assistant.settings.chroma_path / "chroma.sqlite3"
            assert sqlite.is_file()
            response = client.get(f"{base}/gradio_api/file={sqlite}")
            assert response.status_code == 403 and b"SQLite format" not in response.content
            event = client.post(base + "/gradio_api/call/ask",
                                json={"data": [SEED_QUESTION, "extractive", 4, "", "", ""]})
            event.raise_for_status()
            stream = client.get(f"{base}/gradio_api/call/ask/{event.json()['event_id']}")
            assert "event: complete" in stream.text and "Azerbaijan" in stream.text
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# -- app.py -----------------------------------------------------------------------------------
def test_app_reports_an_unreachable_store_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("app", REPO / "app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    monkeypatch.setenv("RAG_CHROMA_MODE", "http")
    monkeypatch.setenv("RAG_CHROMA_PORT", str(free_port()))  # nothing listens there
    assert app.main(["--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: Could not open the Chroma server at 127.0.0.1:")
    assert not any("Traceback" in line for line in err)


def test_the_picker_shows_the_resolved_model_and_never_the_test_model(data_dir: Path) -> None:
    from rag.chat.page import page_answerers
    from rag.llm.local_models import TEST_MODEL, default_answerer

    settings = Settings(data_dir=data_dir, answerer="auto")
    offered, chosen = page_answerers(settings)
    assert chosen == default_answerer(settings) and chosen != "auto"
    assert "auto" not in offered and TEST_MODEL not in offered
    assert offered[0] == "extractive" and chosen in offered
    # Configured on purpose (as the tests do), the test model is still what answers.
    offered, chosen = page_answerers(Settings(data_dir=data_dir, answerer=TEST_MODEL))
    assert chosen == TEST_MODEL and TEST_MODEL in offered


def test_each_answer_names_its_model_and_a_refusal_names_the_search_once() -> None:
    from rag.chat.render import answer_markdown
    from rag.records import Answer

    searched = "What did Putin offer instead of the Czech radar, and did Bush accept it?"
    refused = Answer(question="Did he accept it?", standalone_question=searched,
                     text=f"The indexed articles don't say. Nothing in them answers: “{searched}”",
                     refused=True, answerer="qwen2.5-coder-1.5b")
    shown = answer_markdown(refused, 1)
    assert shown.count("Czech radar") == 1
    assert shown.endswith("_Answered by qwen2\\.5\\-coder\\-1\\.5b_")
    answered = refused.model_copy(update={"text": "He offered Gabala.", "refused": False})
    shown = answer_markdown(answered, 1)
    assert "_Searched for:_" in shown and shown.count("Czech radar") == 1


def test_overlapping_passages_of_one_article_share_one_card() -> None:
    from rag.chat.render import exchange_sources_html
    from rag.records import Answer, Citation

    article = ("One. The council met on Monday. It voted 5-4 for the line. "
               "The cost is $1.4 billion. Work starts in May.")

    def cite(number: int, aid: str, start: int, end: int, quote: str) -> Citation:
        passage = article[start:end]
        return Citation(number=number, chunk_id=f"{aid}:{start}", article_id=aid,
                        headline=f"Headline {aid}", source=f"{aid}.txt", passage=passage,
                        quote=quote, quote_start=passage.index(quote), start=start, end=end,
                        score=1.0)

    first = cite(1, "a", 0, 59, "It voted 5-4 for the line.")
    second = cite(2, "a", 32, len(article), "The cost is $1.4 billion.")  # overlaps the first
    other = cite(3, "b", 0, 31, "The council met on Monday.")
    answer = Answer(question="q", standalone_question="q", text="x [1] y [2] z [3]",
                    citations=[first, second, other])
    shown = exchange_sources_html(Exchange(question="q", answer=answer), 1, latest=True)
    assert shown.count('<details class="cite"') == 2
    assert 'id="cite-1-1"' in shown and 'id="cite-1-2"' in shown and 'id="cite-1-3"' in shown
    card = shown.split('<details')[1]
    assert "<mark>It voted 5-4 for the line.</mark>" in card
    assert "<mark>The cost is $1.4 billion.</mark>" in card
    assert card.count("The council met on Monday.") == 1  # the overlap shown once
    assert "Work starts in May." in card


def test_the_articles_panel_lists_forgets_and_rereads(fake_settings, seeds_copy) -> None:
    from rag.chat.handlers import articles_panel, forget_articles, reread_articles

    assistant = Assistant(fake_settings)
    assistant.ingest([seeds_copy])
    shown = articles_panel(assistant)
    article = assistant.articles()[0]
    assert article.article_id[:12] in shown and "Bush, Putin meet" in shown
    note, _ = forget_articles(assistant, "")
    assert note.startswith("Give the id")
    note, _ = forget_articles(assistant, "zzzzzzzz")
    assert note.startswith("⚠️") and "\n" not in note
    note, _ = reread_articles(assistant)
    assert "**Added 1**" in note and assistant.stats()["articles"] == 1
    note, shown = forget_articles(assistant, article.article_id[:8])
    assert note.startswith("Forgot 1") and "No articles are indexed yet." in shown
    assert assistant.stats()["chunks"] == 0
