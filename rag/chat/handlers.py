"""The chat page's handlers: plain functions over the Assistant, testable without a browser."""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ingest.uploads import Upload
from rag.assistant import Assistant
from rag.chat.conversation import Exchange, history, restored
from rag.chat.render import (
    EMPTY_SOURCES,
    GENERIC_ERROR,
    Message,
    articles_html,
    chat_messages,
    escape_markdown,
    progress_markdown,
    report_markdown,
    sources_html,
)
from rag.errors import RagError
from rag.records import Answer, Preview, Stage
from rag.retrieval.relative_time import day_in_words

log = logging.getLogger(__name__)


def _day(text: str | None, today: dt.date, *, end: bool = False) -> str | None:
    """A date field as the Assistant takes it: words ('since March') become a day."""
    text = (text or "").strip()
    if not text:
        return None
    day = day_in_words(text, today, end=end)
    return day.isoformat() if day else text  # what names no day gets the Assistant's error


def filters_from(sources: str | None, since: str | None, until: str | None,
                 today: dt.date | None = None) -> dict[str, Any]:
    """The settings panel's filters as Assistant filters; the Assistant validates them.

    The date fields take a day (2025-03-01) or words ("since March", "last week", "March
    2025"): "from" is the first day of the period they name, "to" its last.
    """
    today = today or dt.date.today()
    wanted = [s.strip() for s in re.split(r"[,\n]", sources or "") if s.strip()]
    return {"sources": wanted or None, "published_from": _day(since, today),
            "published_to": _day(until, today, end=True)}


AskUpdate = tuple[str, list[Message], list[Exchange], str]


def ask(assistant: Assistant, message: str | None, conversation: Sequence[Exchange] | None,
        answerer: str | None = None, top_k: float | None = None, sources: str | None = None,
        since: str | None = None, until: str | None = None,
        stop: threading.Event | None = None) -> Iterator[AskUpdate]:
    """Answer ``message`` in the conversation, streaming; yields (textbox, chat, state, sources).

    Errors end as a message in the chat: a RagError's own sentence, anything else a generic one.
    Setting ``stop`` (the page's Stop button) ends the model's writing.
    """
    done = list(conversation or [])
    question = (message or "").strip()
    if not question:
        yield "", chat_messages(done), done, sources_html(done)
        return
    exchange = Exchange(question=question)
    text = ""
    stage = Stage(name="searching")
    found: Preview | None = None
    preview = progress_markdown(stage, found)
    yield "", chat_messages(done, (question, text)), done, sources_html(done)
    try:
        events = assistant.ask_with_stages(
            question, history(done), filters_from(sources, since, until),
            top_k=int(top_k) if top_k else None, answerer=answerer or None, stop=stop)
        for event in events:
            if isinstance(event, Answer):
                exchange.answer = event
            elif isinstance(event, (Stage, Preview)):
                if isinstance(event, Stage):
                    stage = event
                else:
                    found = event
                shown, preview = preview, progress_markdown(stage, found)
                if preview != shown:
                    yield "", chat_messages(done, (question, text), preview), done, \
                        sources_html(done)
            elif event:
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


def new_conversation() -> tuple[list[Message], list[Exchange], str, list[Any]]:
    """Forget the conversation: empty chat, state, sources and what the browser kept."""
    return [], [], EMPTY_SOURCES, []


def reopen(kept: Any) -> tuple[list[Message], list[Exchange], str]:
    """The conversation the browser kept (``saved``), shown again after a reload."""
    conversation = restored(kept)
    return chat_messages(conversation), conversation, sources_html(conversation)


def example_text(selected: gr.SelectData) -> str:
    """The question of the example the user clicked."""
    value = selected.value
    return str(value.get("text", "")) if isinstance(value, dict) else str(value)


def add_articles(assistant: Assistant, files: Sequence[str] | None) -> tuple[None, str]:
    """Add the files Gradio received (``Assistant.add_uploads``); returns (file box, report)."""
    if not files:
        return None, "Choose one or more article files to add."
    streams = [Path(name).open("rb") for name in files]
    try:
        report = assistant.add_uploads([Upload(Path(name).name, data)
                                        for name, data in zip(files, streams, strict=True)])
    except RagError as exc:
        return None, f"⚠️ {escape_markdown(str(exc))}"
    except Exception:
        log.exception("adding %d uploaded files failed", len(files))
        return None, "⚠️ The files could not be added; please try again."
    finally:
        for data in streams:
            data.close()
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


def articles_panel(assistant: Assistant) -> str:
    """The articles list, or one sentence when the index cannot be read."""
    try:
        return articles_html(assistant.articles())
    except RagError as exc:
        return f"<p>⚠️ {html.escape(str(exc))}</p>"
    except Exception:
        log.exception("listing the articles failed")
        return "<p>⚠️ The articles cannot be listed right now.</p>"


def forget_articles(assistant: Assistant, ids: str | None) -> tuple[str, str]:
    """Forget the articles whose ids (or unique starts) are given; (message, list)."""
    wanted = [part for part in re.split(r"[\s,]+", ids or "") if part]
    if not wanted:
        return "Give the id of an article from the list (its first 6 characters will do).", \
            articles_panel(assistant)
    try:
        gone = assistant.delete_articles(wanted)
    except RagError as exc:
        return f"⚠️ {escape_markdown(str(exc))}", articles_panel(assistant)
    except Exception:
        log.exception("deleting articles %s failed", wanted)
        return "⚠️ The articles could not be forgotten; please try again.", \
            articles_panel(assistant)
    names = "; ".join(escape_markdown(a.headline or a.article_id[:12]) for a in gone)
    return f"Forgot {len(gone)}: {names}", articles_panel(assistant)


def reread_articles(assistant: Assistant) -> tuple[str, str]:
    """Read every article from its files again and embed it anew; (report, list)."""
    try:
        report = assistant.reindex()
    except RagError as exc:
        return f"⚠️ {escape_markdown(str(exc))}", articles_panel(assistant)
    except Exception:
        log.exception("re-reading the articles failed")
        return "⚠️ The articles could not be read again; please try again.", \
            articles_panel(assistant)
    return report_markdown(report), articles_panel(assistant)
