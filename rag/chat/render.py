"""What the chat page shows, as escaped markdown and HTML: answers, sources, ingest reports."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ingest.uploads import shown_name
from rag.answering.markers import MARKER, marker_numbers
from rag.chat.conversation import Exchange
from rag.records import Answer, ArticleInfo, Citation, IngestReport, Preview, Stage

GENERIC_ERROR = "Something went wrong while answering; please try again."
Message = dict[str, str]

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")


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
    for match in MARKER.finditer(answer.text):
        found = marker_numbers(match.group())
        if len(found) != 1 or found[0] not in numbers:
            continue
        number = found[0]
        parts.append(escape_markdown(answer.text[last:match.start()]))
        parts.append(f'<a href="#{cite_id(turn, number)}" title="Show source {number}">'
                     f"[{number}]</a>")
        last = match.end()
    parts.append(escape_markdown(answer.text[last:]))
    text = "".join(parts)
    searched = answer.standalone_question.strip()
    # A refusal already quotes what was searched: say it once.
    if searched != answer.question.strip() and searched not in answer.text:
        text += f"\n\n_Searched for:_ {escape_markdown(searched)}"
    as_of = f" · as of {answer.as_of.isoformat()}" if answer.as_of else ""
    return text + f"\n\n_Answered by {escape_markdown(answer.answerer)}{as_of}_"


def reply_markdown(exchange: Exchange, turn: int) -> str:
    """What the assistant's bubble shows for a finished exchange."""
    if exchange.answer is not None:
        return answer_markdown(exchange.answer, turn)
    return f"⚠️ {escape_markdown(exchange.error or GENERIC_ERROR)}"


def stage_markdown(stage: Stage) -> str:
    """The line that says what the assistant is doing while the answer is not yet there."""
    if stage.name == "searching":
        return "_Searching the articles…_"
    count = f"{stage.passages} passage{'' if stage.passages == 1 else 's'}"
    if stage.name == "reading":
        return f"_Reading {count}…_"
    return f"_Writing the answer from {count}; each sentence is checked before it is shown…_"


def preview_markdown(preview: Preview) -> str:
    """A preview as the page shows it, under the stage line, until the answer comes."""
    if preview.text:
        return ("_From the articles, while the model writes its answer:_\n\n"
                + escape_markdown(preview.text))
    return "Passages: " + "; ".join(
        escape_markdown(c.headline or "Untitled") +
        (f" ({c.published.isoformat()})" if c.published else "") for c in preview.citations)


def progress_markdown(stage: Stage, preview: Preview | None) -> str:
    """The stage line, then the preview once there is one."""
    if preview is None:
        return stage_markdown(stage)
    return f"{stage_markdown(stage)}\n\n{preview_markdown(preview)}"


def chat_messages(conversation: Sequence[Exchange], pending: tuple[str, str] | None = None,
                  preview: str = "") -> list[Message]:
    """The Chatbot value: every exchange, then the one being answered (question, text so far).

    Until the answer's text comes, ``preview`` (``progress_markdown``) stands in for it.
    """
    messages: list[Message] = []
    for turn, exchange in enumerate(conversation, start=1):
        messages.append({"role": "user", "content": escape_markdown(exchange.question)})
        messages.append({"role": "assistant", "content": reply_markdown(exchange, turn)})
    if pending is not None:
        question, text = pending
        messages.append({"role": "user", "content": escape_markdown(question)})
        waiting = preview or stage_markdown(Stage(name="searching"))
        messages.append({"role": "assistant",
                         "content": escape_markdown(text) if text else waiting})
    return messages


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
    return card_html([cite], turn, open_=open_)


def same_stretch(citations: Sequence[Citation]) -> list[list[Citation]]:
    """The citations in cards: passages of one article that overlap or touch share one."""
    cards: list[list[Citation]] = []
    for cite in citations:
        whole = len(cite.passage) == cite.end - cite.start  # offsets describe this text
        for card in cards:
            first = card[0]
            if whole and first.article_id == cite.article_id and all(
                    len(c.passage) == c.end - c.start for c in card) and \
                    cite.start <= max(c.end for c in card) and \
                    cite.end >= min(c.start for c in card):
                card.append(cite)
                break
        else:
            cards.append([cite])
    return cards


def _merged_text(card: Sequence[Citation]) -> tuple[str, int]:
    """The stretch of the article the card's passages cover, and where it starts in it."""
    start = min(c.start for c in card)
    end = max(c.end for c in card)
    chars = [""] * (end - start)
    for cite in card:
        for i, char in enumerate(cite.passage):
            chars[cite.start - start + i] = char
    return "".join(chars), start


def card_html(card: Sequence[Citation], turn: int, *, open_: bool) -> str:
    """One card: its numbers, headline, source and date; the passage(s), quotes marked."""
    first = card[0]
    date = first.published.isoformat() if first.published else "undated"
    if first.also_published_by:
        date += f" · {html.escape(first.also_published())}"
    if len(card) == 1:
        passage = highlighted_passage(first)
    else:
        text, offset = _merged_text(card)
        marks = sorted((c.start + c.quote_start - offset,
                        c.start + c.quote_start - offset + len(c.quote)) for c in card)
        parts, at = [], 0
        for start, end in marks:
            start = max(start, at)
            if end <= start:
                continue
            parts += [html.escape(text[at:start]), "<mark>", html.escape(text[start:end]),
                      "</mark>"]
            at = end
        passage = "".join(parts) + html.escape(text[at:])
    # Each number links here: the card holds the first's id, a span inside the others'.
    numbers = f'<span class="num">[{first.number}]</span>' + "".join(
        f'<span class="num" id="{cite_id(turn, c.number)}">[{c.number}]</span>'
        for c in card[1:])
    return (
        f'<details class="cite" id="{cite_id(turn, first.number)}"{" open" if open_ else ""}>'
        f'<summary>{numbers} '
        f'<span class="headline">{html.escape(first.headline or "Untitled")}</span>'
        f'<span class="meta">{source_label(first.source)} · {date}</span></summary>'
        f'<blockquote class="passage">{passage}</blockquote></details>'
    )


def exchange_sources_html(exchange: Exchange, turn: int, *, latest: bool) -> str:
    """The sources of one answer, under the question that was searched."""
    head = f'<div class="turn" id="turn-{turn}"><div class="asked">Answer {turn}'
    answer = exchange.answer
    if answer is None:
        return head + ' · no sources: it could not be answered.</div></div>'
    head += (f' · by {html.escape(answer.answerer)}</div>'
             f'<div class="searched">Searched for: “{html.escape(answer.standalone_question)}”'
             "</div>")
    if answer.refused or not answer.citations:
        return head + '<p class="none">The indexed articles do not answer this.</p></div>'
    body = "".join(card_html(card, turn, open_=latest)
                   for card in same_stretch(answer.citations))
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
.articles { font-size: 0.85em; border-collapse: collapse; width: 100%; }
.articles td, .articles th { padding: 0.15em 0.4em; text-align: left; vertical-align: top; }
.articles .aid { font-family: monospace; }
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
    const found = document.getElementById(link.getAttribute('href').split('#').pop());
    if (!found) return;
    const target = found.closest('details') || found;  // a merged card holds several numbers
    event.preventDefault();
    event.stopPropagation();
    target.open = true;
    target.scrollIntoView({block: 'nearest'});
    target.classList.add('flash');
    setTimeout(() => target.classList.remove('flash'), 1500);
  }, true);
}
"""


ARTICLES_SHOWN = 200  # the newest; `rag articles` and GET /articles list them all


def articles_html(articles: Sequence[ArticleInfo]) -> str:
    """The indexed articles, newest first: id, date, headline and where each came from."""
    if not articles:
        return '<p class="empty">No articles are indexed yet.</p>'
    rows = "".join(
        f'<tr><td class="aid">{html.escape(a.article_id[:12])}</td>'
        f'<td>{a.published.isoformat() if a.published else "undated"}</td>'
        f'<td>{html.escape(a.headline or "Untitled")}</td>'
        f"<td>{source_label(a.source)}</td></tr>" for a in articles[:ARTICLES_SHOWN])
    more = (f'<p class="none">and {len(articles) - ARTICLES_SHOWN} older ones</p>'
            if len(articles) > ARTICLES_SHOWN else "")
    return (f'<table class="articles"><thead><tr><th>id</th><th>published</th><th>headline</th>'
            f"<th>source</th></tr></thead><tbody>{rows}</tbody></table>{more}")


def report_markdown(report: IngestReport) -> str:
    """The ingest counts and every skipped file's reason, for people."""
    lines = [f"**Added {report.added}**, updated {report.updated}, unchanged {report.unchanged}, "
             f"skipped {report.skipped} ({report.chunks_added} passages indexed)."]
    if report.added or report.updated:
        lines.append("New articles answer questions now.")
    for where, reason in report.skipped_reasons.items():
        lines.append(f"- skipped {escape_markdown(shown_name(where))}: {escape_markdown(reason)}")
    return "\n".join(lines)
