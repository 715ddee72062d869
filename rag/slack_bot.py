"""The Slack bot: answers mentions and direct messages in their thread, with sources listed below.

When a language model answers, the articles' own sentences are posted first, within about a
second, and that message is edited into the model's checked answer when it is ready. The thread is
the conversation: earlier messages of the thread (``conversations.replies``)
become the history, so follow-ups keep their context. HTTP mode serves the Events API (bolt
verifies Slack's request signatures); Socket Mode connects out with an app-level token.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from rag.assistant import Assistant
from rag.errors import RagError
from rag.records import Answer, Citation, Preview, Turn
from rag.settings import Settings

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient
    from starlette.applications import Starlette

log = logging.getLogger(__name__)

HISTORY_MESSAGES = 20
MAX_TURN_CHARS = 20_000
_SECTION_CHARS = 2900  # Slack allows 3000 characters in a section's text
_MAX_EVENT_BYTES = 1_000_000
EMPTY_QUESTION = "Ask me a question about the news articles, and I'll answer with sources."
FAILED = "Sorry, something went wrong while answering; the error was logged."
WRITING = "_From the articles, while the full answer is written…_"


class EventDeduper:
    """Remembers recent Events API event ids so Slack's retries are answered only once."""

    def __init__(self, size: int = 10_000, ttl_s: float = 3600.0) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        """True the first time ``event_id`` is offered (within the TTL), False after."""
        now = time.monotonic()
        with self._lock:
            while self._seen and (len(self._seen) >= self.size
                                  or now - next(iter(self._seen.values())) > self.ttl_s):
                self._seen.popitem(last=False)
            if event_id in self._seen:
                return False
            self._seen[event_id] = now
            return True


# -- text in and out -------------------------------------------------------------------------------
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def question_text(text: str) -> str:
    """A Slack message as plain text: mentions dropped, links unwrapped, entities decoded."""
    text = _MENTION.sub("", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return html.unescape(text).strip()


def _escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _source_line(cite: Citation) -> str:
    headline = _escape((cite.headline or "Untitled").replace("|", "-")[:150])
    if cite.source.startswith(("http://", "https://")):
        first = f"<{cite.source}|{headline}>"
        where = cite.source.split("://", 1)[1].split("/", 1)[0]
    else:
        first = f"*{headline}*"
        where = PurePath(cite.source.split("#", 1)[0]).name  # no server paths in Slack
    parts = [f"[{cite.number}] {first}", _escape(where)]
    if cite.published:
        parts.append(cite.published.isoformat())
    if cite.also_published_by:
        parts.append(_escape(cite.also_published()))
    return " · ".join(p for p in parts if p)


def _sections(text: str) -> list[dict[str, Any]]:
    pieces: list[str] = []
    rest = _escape(text)
    while rest:
        cut = len(rest) if len(rest) <= _SECTION_CHARS else \
            (rest.rfind(" ", 0, _SECTION_CHARS) + 1 or _SECTION_CHARS)
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in pieces[:40]]


def _sources_block(citations: Sequence[Citation]) -> list[dict[str, Any]]:
    """The compact "Sources" list under a message (none when nothing is cited)."""
    if not citations:
        return []
    sources = "\n".join(_source_line(c) for c in citations)[:2900]
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": "*Sources*\n" + sources}]}]


def answer_message(answer: Answer) -> dict[str, Any]:
    """``chat.postMessage`` arguments: the answer, then its sources as a compact list.

    A refusal (or an answer without citations) is a plain message with no blocks.
    """
    if answer.refused or not answer.citations:
        return {"text": answer.text}
    blocks = _sections(answer.text) + _sources_block(answer.citations)
    return {"text": answer.text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def preview_message(preview: Preview) -> dict[str, Any]:
    """``chat.postMessage`` arguments for the articles' sentences shown while the model writes."""
    blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": WRITING}]},
              *_sections(preview.text), *_sources_block(preview.citations)]
    return {"text": preview.text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def _edit(message: dict[str, Any]) -> dict[str, Any]:
    """``chat.update`` arguments from ``chat.postMessage`` ones: the blocks always replaced."""
    return {"text": message["text"], "blocks": message.get("blocks", [])}


def thread_history(client: WebClient, channel: str, thread_ts: str, before_ts: str,
                   bot_user_id: str | None, bot_id: str | None) -> list[Turn]:
    """The thread's messages before ``before_ts`` as turns: the bot's are the assistant's."""
    reply = client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
    turns: list[Turn] = []
    for message in reply.get("messages") or []:
        if float(message.get("ts", "0")) >= float(before_ts):
            continue
        mine = (bot_id is not None and message.get("bot_id") == bot_id) or \
            (bot_user_id is not None and message.get("user") == bot_user_id)
        text = message.get("text", "") if mine else question_text(message.get("text", ""))
        if text.strip():
            turns.append(Turn(role="assistant" if mine else "user",
                              content=text[:MAX_TURN_CHARS]))
    return turns[-HISTORY_MESSAGES:]


# -- the bolt app ----------------------------------------------------------------------------------
def _answerer(assistant: Assistant) -> Callable[..., None]:
    def answer_event(event: dict[str, Any], client: WebClient, context: Any) -> None:
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        question = question_text(event.get("text", ""))
        if not question:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=EMPTY_QUESTION)
            return
        first: str | None = None  # the ts of the preview, edited into the answer
        message: dict[str, Any] = {"text": FAILED}
        try:
            history = thread_history(client, channel, thread_ts, ts, context.bot_user_id,
                                     context.bot_id) if event.get("thread_ts") else []
            for item in assistant.ask_stream(question, history):
                if isinstance(item, Preview) and item.text and first is None:
                    posted = client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                                     **preview_message(item))
                    first = str(posted["ts"])
                elif isinstance(item, Answer):
                    message = answer_message(item)
        except RagError as exc:
            message = {"text": str(exc)}
        except Exception:
            log.exception("answering a Slack message failed")
            message = {"text": FAILED}
        if first is None:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message)
        else:
            client.chat_update(channel=channel, ts=first, **_edit(message))

    return answer_event


def build_app(settings: Settings, assistant: Assistant | None = None) -> App:
    """The bolt App: mentions and DMs answered in their thread, retries answered once."""
    try:
        from slack_bolt import App, BoltResponse
        from slack_sdk import WebClient
    except ImportError as exc:  # pragma: no cover - install problem
        raise RagError("The Slack bot needs slack-bolt: pip install 'newsrag[slack]'.") from exc
    if not settings.slack_bot_token:
        raise RagError("Set RAG_SLACK_BOT_TOKEN to the bot's xoxb- token.")
    if settings.slack_mode == "http" and not settings.slack_signing_secret:
        raise RagError("Set RAG_SLACK_SIGNING_SECRET: HTTP mode verifies every request from "
                       "Slack with it.")
    client_args: dict[str, Any] = {"token": settings.slack_bot_token}
    if settings.slack_api_url:
        client_args["base_url"] = settings.slack_api_url
    try:
        app = App(client=WebClient(**client_args),
                  signing_secret=settings.slack_signing_secret or "",
                  request_verification_enabled=settings.slack_mode == "http")
    except Exception as exc:
        raise RagError("Slack did not accept the bot token (auth.test failed).") from exc
    assistant = assistant or Assistant(settings)
    seen = EventDeduper()

    # Runs after bolt's signature check, so forged requests never reach it.
    @app.middleware
    def answer_once(body: dict[str, Any], next: Callable[[], None]) -> BoltResponse | None:  # noqa: A002
        event_id = body.get("event_id")
        if isinstance(event_id, str) and not seen.first_time(event_id):
            log.info("ignoring Slack's retry of %s", event_id)
            return BoltResponse(status=200, body="")
        next()
        return None

    answer_event = _answerer(assistant)
    app.event("app_mention")(answer_event)

    @app.event("message")
    def direct_message(event: dict[str, Any], client: WebClient, context: Any) -> None:
        if event.get("channel_type") == "im" and not event.get("subtype") \
                and not event.get("bot_id"):
            answer_event(event, client, context)

    return app


def create_asgi_app(settings: Settings, assistant: Assistant | None = None,
                    app: App | None = None) -> Starlette:
    """HTTP mode: ``POST /slack/events`` for the Events API and ``GET /health``."""
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from rag.api.middleware import BodyLimit

    bolt = app or build_app(settings, assistant)

    async def events(request: Request) -> Response:
        body = await request.body()
        response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    web = Starlette(routes=[Route("/slack/events", events, methods=["POST"]),
                            Route("/health", health, methods=["GET"])])
    web.add_middleware(BodyLimit, limit_for=lambda _path: _MAX_EVENT_BYTES)
    return web


def run(settings: Settings, port: int = 3000, host: str = "127.0.0.1") -> None:
    """Run the bot: HTTP mode on HOST:PORT (behind your HTTPS proxy), or Socket Mode."""
    from rag.process import start_service

    start_service(settings)
    if settings.slack_mode == "socket":
        if not settings.slack_app_token:
            raise RagError("Set RAG_SLACK_APP_TOKEN to an xapp- token for Socket Mode.")
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        SocketModeHandler(build_app(settings), settings.slack_app_token).start()
        return
    import uvicorn

    uvicorn.run(create_asgi_app(settings), host=host, port=port, log_level="info")
