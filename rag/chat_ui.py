"""The Gradio chat page: ask in a browser, see the answer stream in and the passages it cites.

``build_demo(assistant)`` returns the page; ``serve_options(settings)`` are the keyword
arguments to give ``Blocks.launch`` or ``gradio.mount_gradio_app`` so that the page looks right
and Gradio's file routes serve nothing from the data directory, ``.env`` or the repository.
The handlers (``ask``, ``add_articles``, ...) are plain functions, testable without a browser.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
from gradio.utils import get_upload_folder
from pydantic import BaseModel

from ingest.loaders import SUPPORTED_SUFFIXES
from rag.answerers import available_generators
from rag.assistant import Assistant
from rag.errors import RagError
from rag.models import MAX_QUESTION_CHARS, Answer, Citation, IngestReport, Turn
from rag.settings import Settings

log = logging.getLogger(__name__)

TITLE = "Ask the news"
EXAMPLES = (
    "What did Putin offer instead of the Czech radar?",
    "Where did Bush and Putin meet?",
    "How does the Kremlin view the US missile defence plans?",
)
GENERIC_ERROR = "Something went wrong while answering; please try again."
HISTORY_EXCHANGES = 6  # the follow-up context handed to the assistant
Message = dict[str, str]


class Exchange(BaseModel):
    """One question of the conversation and what came of it: an Answer or an error."""

    question: str
    answer: Answer | None = None
    error: str | None = None


# -- escaping ---------------------------------------------------------------------------------
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")
_MARKER = re.compile(r"\[(\d+)\]")


def escape_markdown(text: str) -> str:
    """Untrusted text as Chatbot markdown that renders literally: no HTML, no formatting."""
    return _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))


def cite_id(turn: int, number: int) -> str:
    """The element id of source ``number`` of the ``turn``-th answer (both 1-based)."""
    return f"cite-{turn}-{number}"


# -- the chat column --------------------------------------------------------------------------
def answer_markdown(answer: Answer, turn: int) -> str:
    """The answer as Chatbot markdown, each [n] marker a link that opens its source."""
    numbers = {c.number for c in answer.citations}
    parts: list[str] = []
    last = 0
    for match in _MARKER.finditer(answer.text):
        number = int(match.group(1))
        if number not in numbers:
            continue
        parts.append(escape_markdown(answer.text[last:match.start()]))
        parts.append(f'<a href="#{cite_id(turn, number)}" title="Show source {number}">'
                     f"[{number}]</a>")
        last = match.end()
    parts.append(escape_markdown(answer.text[last:]))
    text = "".join(parts)
    if answer.standalone_question.strip() != answer.question.strip():
        text += f"\n\n_Searched for:_ {escape_markdown(answer.standalone_question)}"
    return text


def reply_markdown(exchange: Exchange, turn: int) -> str:
    """What the assistant's bubble shows for a finished exchange."""
    if exchange.answer is not None:
        return answer_markdown(exchange.answer, turn)
    return f"⚠️ {escape_markdown(exchange.error or GENERIC_ERROR)}"


def chat_messages(conversation: Sequence[Exchange],
                  pending: tuple[str, str] | None = None) -> list[Message]:
    """The Chatbot value: every exchange, then the one being answered (question, text so far)."""
    messages: list[Message] = []
    for turn, exchange in enumerate(conversation, start=1):
        messages.append({"role": "user", "content": escape_markdown(exchange.question)})
        messages.append({"role": "assistant", "content": reply_markdown(exchange, turn)})
    if pending is not None:
        question, text = pending
        messages.append({"role": "user", "content": escape_markdown(question)})
        messages.append({"role": "assistant",
                         "content": escape_markdown(text) if text else "_Searching the articles…_"})
    return messages


def history(conversation: Sequence[Exchange]) -> list[Turn]:
    """The recent answered exchanges as turns, so a follow-up can be understood."""
    turns: list[Turn] = []
    for exchange in conversation[-HISTORY_EXCHANGES:]:
        if exchange.answer is not None:
            turns.append(Turn(role="user", content=exchange.question))
            turns.append(Turn(role="assistant", content=exchange.answer.text))
    return turns


# -- the sources panel ------------------------------------------------------------------------
EMPTY_SOURCES = ('<p class="empty">Sources appear here: every answer\'s numbered passages, '
                 "with the cited sentence highlighted.</p>")


def source_label(source: str) -> str:
    """A web source as a link, a file as its name (the full path on hover); all escaped."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https") and parts.netloc:
        shown = html.escape(parts.netloc + (parts.path if len(parts.path) > 1 else ""))
        return (f'<a href="{html.escape(source, quote=True)}" target="_blank" '
                f'rel="noopener noreferrer nofollow">{shown}</a>')
    name = Path(source).name or source
    return f'<span title="{html.escape(source, quote=True)}">{html.escape(name)}</span>'


def highlighted_passage(cite: Citation) -> str:
    """The passage, escaped, with the cited text in <mark>."""
    start = cite.quote_start
    if not cite.quote or cite.passage[start:start + len(cite.quote)] != cite.quote:
        start = cite.passage.find(cite.quote) if cite.quote else -1
    if start < 0:
        return html.escape(cite.passage)
    end = start + len(cite.quote)
    return (html.escape(cite.passage[:start]) + "<mark>" + html.escape(cite.passage[start:end])
            + "</mark>" + html.escape(cite.passage[end:]))


def citation_html(cite: Citation, turn: int, *, open_: bool) -> str:
    """One numbered source: headline, source and date; the passage when opened."""
    date = cite.published.isoformat() if cite.published else "undated"
    return (
        f'<details class="cite" id="{cite_id(turn, cite.number)}"{" open" if open_ else ""}>'
        f'<summary><span class="num">[{cite.number}]</span> '
        f'<span class="headline">{html.escape(cite.headline or "Untitled")}</span>'
        f'<span class="meta">{source_label(cite.source)} · {date}</span></summary>'
        f'<blockquote class="passage">{highlighted_passage(cite)}</blockquote></details>'
    )


def exchange_sources_html(exchange: Exchange, turn: int, *, latest: bool) -> str:
    """The sources of one answer, under the question that was searched."""
    head = f'<div class="turn" id="turn-{turn}"><div class="asked">Answer {turn}'
    answer = exchange.answer
    if answer is None:
        return head + ' · no sources: it could not be answered.</div></div>'
    head += (f' · by {html.escape(answer.generator)}</div>'
             f'<div class="searched">Searched for: “{html.escape(answer.standalone_question)}”'
             "</div>")
    if answer.refused or not answer.citations:
        return head + '<p class="none">The indexed articles do not answer this.</p></div>'
    body = "".join(citation_html(c, turn, open_=latest) for c in answer.citations)
    return head + body + "</div>"


def sources_html(conversation: Sequence[Exchange]) -> str:
    """Every answer's sources, newest first; the newest opened."""
    if not conversation:
        return EMPTY_SOURCES
    count = len(conversation)
    return "".join(exchange_sources_html(conversation[turn - 1], turn, latest=turn == count)
                   for turn in range(count, 0, -1))


SOURCES_CSS = """
.empty, .none { color: var(--body-text-color-subdued); }
.turn { margin-bottom: 1.2em; }
.asked { font-weight: 600; }
.searched { color: var(--body-text-color-subdued); font-size: 0.9em; margin-bottom: 0.4em; }
.cite { border: 1px solid var(--border-color-primary); border-radius: 6px;
        padding: 0.3em 0.6em; margin: 0.35em 0; }
.cite summary { cursor: pointer; }
.cite .num { font-weight: 700; }
.cite .headline { font-weight: 600; }
.cite .meta { display: block; color: var(--body-text-color-subdued); font-size: 0.85em; }
.cite .passage { white-space: pre-wrap; margin: 0.5em 0 0.2em; padding-left: 0.6em;
                 border-left: 3px solid var(--border-color-primary); font-size: 0.92em; }
.cite mark { background: #fde68a; color: #111; padding: 0 1px; }
.cite.flash { outline: 2px solid var(--color-accent); }
"""

# Markers in the chat are links to #cite-T-N: open that source and bring it into view instead
# of navigating. Registered once per page, on the document, because the links live in the
# Chatbot and the sources in this panel.
SOURCES_JS = """
if (!window.__newsragCitations) {
  window.__newsragCitations = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a[href*="#cite-"]');
    if (!link) return;
    const target = document.getElementById(link.getAttribute('href').split('#').pop());
    if (!target) return;
    event.preventDefault();
    event.stopPropagation();
    target.open = true;
    target.scrollIntoView({block: 'nearest'});
    target.classList.add('flash');
    setTimeout(() => target.classList.remove('flash'), 1500);
  }, true);
}
"""


# -- handlers ---------------------------------------------------------------------------------
def filters_from(sources: str | None, since: str | None, until: str | None) -> dict[str, Any]:
    """The settings panel's filters as Assistant filters; the Assistant validates them."""
    wanted = [s.strip() for s in re.split(r"[,\n]", sources or "") if s.strip()]
    return {"sources": wanted or None, "published_from": (since or "").strip() or None,
            "published_to": (until or "").strip() or None}


AskUpdate = tuple[str, list[Message], list[Exchange], str]


def ask(assistant: Assistant, message: str | None, conversation: Sequence[Exchange] | None,
        generator: str | None = None, top_k: float | None = None, sources: str | None = None,
        since: str | None = None, until: str | None = None) -> Iterator[AskUpdate]:
    """Answer ``message`` in the conversation, streaming; yields (textbox, chat, state, sources).

    Errors end as a message in the chat: a RagError's own sentence, anything else a generic one.
    """
    done = list(conversation or [])
    question = (message or "").strip()
    if not question:
        yield "", chat_messages(done), done, sources_html(done)
        return
    exchange = Exchange(question=question)
    text = ""
    yield "", chat_messages(done, (question, text)), done, sources_html(done)
    try:
        events = assistant.ask_stream(question, history(done), filters_from(sources, since, until),
                                      top_k=int(top_k) if top_k else None,
                                      generator=generator or None)
        for event in events:
            if isinstance(event, Answer):
                exchange.answer = event
            else:
                text += event
                yield "", chat_messages(done, (question, text)), done, sources_html(done)
    except RagError as exc:
        exchange.error = str(exc)
    except Exception:
        log.exception("answering %r failed", question)
        exchange.error = GENERIC_ERROR
    if exchange.answer is None and exchange.error is None:
        exchange.error = GENERIC_ERROR
    done.append(exchange)
    yield "", chat_messages(done), done, sources_html(done)


def new_conversation() -> tuple[list[Message], list[Exchange], str]:
    """Forget the conversation: empty chat, state and sources."""
    return [], [], EMPTY_SOURCES


def example_text(selected: gr.SelectData) -> str:
    """The question of the example the user clicked."""
    value = selected.value
    return str(value.get("text", "")) if isinstance(value, dict) else str(value)


def _shown(where: str) -> str:
    """A skipped file's name without the server's directories (records keep their #id)."""
    path, sep, record = where.partition("#")
    return Path(path).name + sep + record


def report_markdown(report: IngestReport) -> str:
    """The ingest counts and every skipped file's reason, for people."""
    lines = [f"**Added {report.added}**, updated {report.updated}, unchanged {report.unchanged}, "
             f"skipped {report.skipped} ({report.chunks_added} passages indexed)."]
    if report.added or report.updated:
        lines.append("New articles answer questions now.")
    for where, reason in report.skipped_reasons.items():
        lines.append(f"- skipped {escape_markdown(_shown(where))}: {escape_markdown(reason)}")
    return "\n".join(lines)


def add_articles(assistant: Assistant, files: Sequence[str] | None) -> tuple[None, str]:
    """Ingest uploaded files (copied into the data directory); returns (file box, report)."""
    if not files:
        return None, "Choose one or more article files to add."
    cap = assistant.settings.max_upload_bytes
    uploads = assistant.settings.data_dir / "uploads"
    too_big: dict[str, str] = {}
    copies: list[Path] = []
    try:
        uploads.mkdir(parents=True, exist_ok=True)
        for name in files:
            path = Path(name)
            size = path.stat().st_size
            if size > cap:
                too_big[path.name] = f"file is {size:,} bytes, over the {cap:,}-byte upload limit"
                continue
            copy = uploads / path.name
            shutil.copyfile(path, copy)
            copies.append(copy)
        report = assistant.ingest(copies) if copies else IngestReport()
    except RagError as exc:
        return None, f"⚠️ {escape_markdown(str(exc))}"
    except Exception:
        log.exception("adding %d uploaded files failed", len(files))
        return None, "⚠️ The files could not be added; please try again."
    report.skipped += len(too_big)
    report.skipped_reasons.update(too_big)
    return None, report_markdown(report)


def status_markdown(assistant: Assistant) -> str:
    """One line about what is indexed, or why the index cannot be read."""
    try:
        stats = assistant.stats()
    except RagError as exc:
        return f"⚠️ {escape_markdown(str(exc))}"
    except Exception:
        log.exception("reading the index statistics failed")
        return "⚠️ The index cannot be read right now."
    articles = f"{stats['articles']} indexed article" + ("" if stats["articles"] == 1 else "s")
    return (f"Answers come only from {articles} ({stats['chunks']} passages), "
            "each with numbered sources.")


# -- the page ---------------------------------------------------------------------------------
def _size(count: int) -> str:
    """Bytes for people: 10 MB, 200 KB, 900 bytes."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"


def generator_choices(settings: Settings) -> tuple[list[str], str]:
    """The answerers to offer and the default: the configured one, listed even if missing."""
    choices = available_generators(settings)
    if settings.generator not in choices:
        choices.insert(0, settings.generator)
    return choices, settings.generator


def build_demo(assistant: Assistant) -> gr.Blocks:
    """The chat page over ``assistant``; launch or mount it with ``serve_options``."""
    settings = assistant.settings
    choices, default = generator_choices(settings)
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as demo:
        conversation = gr.State([])
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
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(EMPTY_SOURCES, elem_id="sources", css_template=SOURCES_CSS,
                                  js_on_load=SOURCES_JS, max_height=560, autoscroll=False)
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    generator = gr.Dropdown(choices, value=default, label="Answered by",
                                            info="extractive quotes the articles; models write",
                                            elem_id="generator")
                    top_k = gr.Slider(1, 20, value=settings.top_k, step=1, label="Passages",
                                      info="how many passages the answer is written from",
                                      elem_id="top-k")
                    source_filter = gr.Textbox(
                        label="Only these sources", elem_id="source-filter",
                        placeholder="sites or folders, comma-separated (e.g. reuters.com)")
                    with gr.Row():
                        since = gr.Textbox(label="Published from", placeholder="YYYY-MM-DD",
                                           elem_id="since")
                        until = gr.Textbox(label="Published to", placeholder="YYYY-MM-DD",
                                           elem_id="until")
                with gr.Accordion("Add articles", open=True, elem_id="add-articles"):
                    files = gr.File(
                        label=f"Upload articles ({', '.join(SUPPORTED_SUFFIXES)}; "
                              f"up to {_size(settings.max_upload_bytes)} each)",
                        file_count="multiple", file_types=list(SUPPORTED_SUFFIXES),
                        elem_id="upload", height=120)
                    report = gr.Markdown(elem_id="ingest-report")

        def on_ask(message: str, state: list[Exchange], gen: str, k: float, src: str,
                   since_: str, until_: str) -> Iterator[AskUpdate]:
            yield from ask(assistant, message, state, gen, k, src, since_, until_)

        def on_upload(paths: list[str] | None) -> tuple[None, str, str]:
            cleared, text = add_articles(assistant, paths)
            return cleared, text, status_markdown(assistant)

        def on_load() -> str:
            return status_markdown(assistant)

        ask_inputs = [textbox, conversation, generator, top_k, source_filter, since, until]
        ask_outputs = [textbox, chatbot, conversation, sources]
        textbox.submit(on_ask, ask_inputs, ask_outputs, api_name="ask")
        send.click(on_ask, ask_inputs, ask_outputs, api_visibility="private")
        chatbot.example_select(example_text, None, textbox, api_visibility="private").then(
            on_ask, ask_inputs, ask_outputs, api_visibility="private")
        chatbot.clear(new_conversation, None, [chatbot, conversation, sources],
                      api_visibility="private")
        files.upload(on_upload, files, [files, report, status], api_name="add_articles")
        demo.load(on_load, None, status, api_visibility="private")
    return demo


# -- serving safely ---------------------------------------------------------------------------
def blocked_paths(settings: Settings) -> list[str]:
    """What Gradio must never serve: the data directory, ``.env``, the repository, cwd.

    A folder holding Gradio's own upload directory is left out (blocking it would refuse
    every upload); Gradio serves nothing outside its upload directory unless allowed anyway.
    """
    upload_dir = Path(get_upload_folder()).resolve()
    wanted = {settings.data_dir.resolve(), Path(".env").resolve(), Path.cwd().resolve()}
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        wanted |= {repo, repo / ".env"}
    return sorted(str(p) for p in wanted if p.name == ".env" or not upload_dir.is_relative_to(p))


def serve_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch`` and ``gradio.mount_gradio_app`` alike."""
    return {
        "allowed_paths": [],
        "blocked_paths": blocked_paths(settings),
        "max_file_size": settings.max_upload_bytes,
        "show_error": False,
        "ssr_mode": False,
        "run_history": False,
        "footer_links": ["api", "settings"],
    }
