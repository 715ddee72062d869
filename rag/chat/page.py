"""The Gradio chat page: ask in a browser, see the answer stream in and the passages it cites."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr

from ingest.loaders import SUPPORTED_SUFFIXES
from rag.answering.factory import answerer_choices
from rag.assistant import Assistant
from rag.chat.conversation import Exchange, saved
from rag.chat.handlers import (
    add_articles,
    articles_panel,
    ask,
    example_text,
    forget_articles,
    new_conversation,
    reopen,
    reread_articles,
    status_markdown,
)
from rag.chat.render import EMPTY_SOURCES, SOURCES_CSS, SOURCES_JS
from rag.records import MAX_QUESTION_CHARS
from rag.settings import Settings

TITLE = "Ask the news"
EXAMPLES = (
    "What did Putin offer instead of the Czech radar?",
    "Where did Bush and Putin meet?",
    "How does the Kremlin view the US missile defence plans?",
)


def _size(count: int) -> str:
    """Bytes for people: 10 MB, 200 KB, 900 bytes."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"


def page_answerers(settings: Settings) -> tuple[list[str], str]:
    """The answerers the page offers, and the one chosen at first.

    'auto' is shown as the model it resolves to; the tiny test model is left out unless it is
    the configured one.
    """
    from rag.llm.local_models import TEST_MODEL, default_answerer

    chosen = default_answerer(settings) if settings.answerer == "auto" else settings.answerer
    names = [n for n in answerer_choices(settings) if n != "auto"]
    offered = [n for n in names if n != TEST_MODEL or n == chosen]
    if chosen not in offered:
        offered.insert(0, chosen)
    return offered, chosen


def build_demo(assistant: Assistant) -> gr.Blocks:
    """The chat page over ``assistant``; launch or mount it with ``serve_options``."""
    settings = assistant.settings
    choices, chosen = page_answerers(settings)
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as demo:
        conversation = gr.State([])
        # The same conversation in the browser's storage: a reload shows it again.
        kept = gr.BrowserState([], storage_key="newsrag-conversation")
        gr.Markdown(f"# {TITLE}")
        status = gr.Markdown(elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    elem_id="chat", label="Conversation", height=560,
                    examples=[{"text": q} for q in EXAMPLES],
                    placeholder="Ask a question about the indexed news articles.",
                    latex_delimiters=[], feedback_options=None, buttons=["copy"],
                    group_consecutive_messages=False,
                )
                with gr.Row():
                    textbox = gr.Textbox(
                        elem_id="question", show_label=False, scale=6, autofocus=True,
                        placeholder="Ask about the articles, e.g. " + EXAMPLES[0],
                        max_length=MAX_QUESTION_CHARS, submit_btn=False,
                    )
                    send = gr.Button("Ask", elem_id="ask", variant="primary", scale=1)
                    halt = gr.Button("Stop", elem_id="stop", variant="stop", scale=1)
                    fresh = gr.Button("New conversation", elem_id="new-conversation",
                                      variant="secondary", scale=1)
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(EMPTY_SOURCES, elem_id="sources", css_template=SOURCES_CSS,
                                  js_on_load=SOURCES_JS, max_height=560, autoscroll=False)
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    answerer = gr.Dropdown(choices, value=chosen, label="Answered by",
                                            info="extractive quotes the articles; models write",
                                            elem_id="answerer")
                    top_k = gr.Slider(1, 20, value=settings.top_k, step=1, label="Passages",
                                      info="how many passages the answer is written from",
                                      elem_id="top-k")
                    source_filter = gr.Textbox(
                        label="Only these sources", elem_id="source-filter",
                        placeholder="sites or folders, comma-separated (e.g. reuters.com)")
                    with gr.Row():
                        since = gr.Textbox(label="Published from", elem_id="since",
                                           placeholder="YYYY-MM-DD, or since March")
                        until = gr.Textbox(label="Published to", elem_id="until",
                                           placeholder="YYYY-MM-DD, or last month")
                with gr.Accordion("Add articles", open=True, elem_id="add-articles"):
                    files = gr.File(
                        label=f"Upload articles ({', '.join(SUPPORTED_SUFFIXES)}; "
                              f"up to {_size(settings.max_upload_bytes)} in all)",
                        file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                        elem_id="upload", height=120)
                    report = gr.Markdown(elem_id="ingest-report")
                with gr.Accordion("Indexed articles", open=False, elem_id="articles-panel"):
                    listing = gr.HTML(elem_id="articles", css_template=SOURCES_CSS,
                                      max_height=320)
                    with gr.Row():
                        forget_ids = gr.Textbox(show_label=False, scale=3,
                                                placeholder="article id(s) to forget",
                                                elem_id="forget-ids")
                        forget = gr.Button("Forget", elem_id="forget", scale=1)
                    reread = gr.Button("Read all again from their files", elem_id="reread",
                                       size="sm")
                    articles_note = gr.Markdown(elem_id="articles-note")

        # The Stop button of each browser session: it ends the model's writing of the answer
        # that session is waiting for.
        stops: dict[str, threading.Event] = {}

        def on_ask(message: str, state: list[Exchange], chosen: str, k: float, src: str,
                   since_: str, until_: str, request: gr.Request) -> Iterator[tuple[Any, ...]]:
            session = request.session_hash or ""
            stop = stops[session] = threading.Event()
            try:
                # The browser keeps the conversation with the same update that shows it.
                for update in ask(assistant, message, state, chosen, k, src, since_, until_,
                                  stop=stop):
                    yield (*update, saved(update[2]))
            finally:
                if stops.get(session) is stop:
                    del stops[session]

        def on_stop(request: gr.Request) -> None:
            stop = stops.get(request.session_hash or "")
            if stop is not None:
                stop.set()

        def on_upload(paths: list[str] | None) -> tuple[None, str, str, str]:
            cleared, text = add_articles(assistant, paths)
            return cleared, text, status_markdown(assistant), articles_panel(assistant)

        def on_forget(ids: str) -> tuple[str, str, str, str]:
            note, shown = forget_articles(assistant, ids)
            return "", note, shown, status_markdown(assistant)

        def on_reread() -> tuple[str, str, str]:
            note, shown = reread_articles(assistant)
            return note, shown, status_markdown(assistant)

        def on_load() -> str:
            return status_markdown(assistant)

        ask_inputs = [textbox, conversation, answerer, top_k, source_filter, since, until]
        ask_outputs = [textbox, chatbot, conversation, sources, kept]
        textbox.submit(on_ask, ask_inputs, ask_outputs, api_name="ask")
        send.click(on_ask, ask_inputs, ask_outputs, api_visibility="private")
        halt.click(on_stop, None, None, queue=False, api_visibility="private")
        chatbot.example_select(example_text, None, textbox, api_visibility="private").then(
            on_ask, ask_inputs, ask_outputs, api_visibility="private")
        cleared = [chatbot, conversation, sources, kept]
        chatbot.clear(new_conversation, None, cleared, api_visibility="private")
        fresh.click(new_conversation, None, cleared, api_visibility="private")
        forget_ids.submit(on_forget, forget_ids, [forget_ids, articles_note, listing, status],
                          api_visibility="private")
        forget.click(on_forget, forget_ids, [forget_ids, articles_note, listing, status],
                     api_visibility="private")
        reread.click(on_reread, None, [articles_note, listing, status], api_visibility="private")
        files.upload(on_upload, files, [files, report, status, listing], api_name="add_articles")
        demo.load(on_load, None, status, api_visibility="private")
        demo.load(lambda: articles_panel(assistant), None, listing, api_visibility="private")
        demo.load(reopen, kept, [chatbot, conversation, sources], api_visibility="private")
    return demo
