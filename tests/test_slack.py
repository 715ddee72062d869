"""The Slack bot over real HTTP: signed Events API requests in, a fake Slack Web API out.

Slack's servers cannot be reached here, so the bolt app's WebClient points at ``FakeSlack``; the
requests are signed exactly as Slack signs them (v0, HMAC-SHA256 over ``v0:ts:body``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import REPO, SEED_QUESTION, SEEDS, seeded_assistant
from fake_slack import BOT_TOKEN, BOT_USER_ID, TEAM_ID, FakeSlack
from live_server import LiveServer

from rag.assistant import Assistant
from rag.errors import RagError
from rag.settings import Settings
from rag.slack_bot import EventDeduper, answer_message, build_app, create_asgi_app, question_text
from rag.slack_bot import run as run_bot

pytestmark = pytest.mark.slow

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FOLLOW_UP = "What did he offer instead?"
UNANSWERABLE = "Who won the 2022 football world cup?"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    return seeded_assistant(tmp_path_factory, "slack-data")


@pytest.fixture(scope="module")
def settings(slack: FakeSlack, assistant: Assistant) -> Settings:
    return Settings(data_dir=assistant.settings.data_dir, answerer="extractive",
                    slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET,
                    slack_api_url=slack.api_url, slack_mode="http")


@pytest.fixture(scope="module")
def bot(settings: Settings, assistant: Assistant) -> Iterator[LiveServer]:
    with LiveServer(create_asgi_app(settings, assistant)) as live:
        yield live


# -- speaking like Slack ---------------------------------------------------------------------------
def sign(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    """The headers Slack sends: a v0 HMAC-SHA256 signature over ``v0:timestamp:body``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/json"}


def envelope(event: dict[str, Any], event_id: str | None = None) -> bytes:
    """An Events API ``event_callback`` as Slack posts it."""
    return json.dumps({
        "token": "deprecated-verification-token", "team_id": TEAM_ID, "api_app_id": "A0000001",
        "type": "event_callback", "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }).encode()


def mention(slack: FakeSlack, channel: str, text: str,
            thread_ts: str | None = None) -> dict[str, Any]:
    """A human mentions the bot: the message is stored in the fake, the event is returned."""
    stored = slack.add_message(channel, f"<@{BOT_USER_ID}> {text}", thread_ts=thread_ts)
    event = {"type": "app_mention", "user": "UHUMAN01", "text": stored["text"],
             "ts": stored["ts"], "channel": channel, "event_ts": stored["ts"]}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def deliver(bot: LiveServer, body: bytes, headers: dict[str, str] | None = None,
            timestamp: int | None = None) -> httpx.Response:
    headers = headers if headers is not None else sign(body, timestamp or int(time.time()))
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=30)


def answered(slack: FakeSlack, already: int, timeout: float = 90) -> dict[str, Any]:
    posts = slack.wait_for_posts(already + 1, timeout=timeout)
    assert len(posts) == already + 1, "the bot did not answer"
    return posts[-1]


def _context_text(post: dict[str, Any]) -> str:
    blocks = [b for b in post["blocks"] if b["type"] == "context"]
    assert len(blocks) == 1
    return "\n".join(e["text"] for e in blocks[0]["elements"])


# -- the conversation ------------------------------------------------------------------------------
def test_url_verification_is_answered(bot: LiveServer) -> None:
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"}).encode()
    response = deliver(bot, body)
    assert response.status_code == 200 and "c-123" in response.text


def test_mention_gets_a_threaded_answer_with_sources(bot: LiveServer, slack: FakeSlack,
                                                     assistant: Assistant) -> None:
    before = len(slack.posts)
    event = mention(slack, "C0000001", SEED_QUESTION)
    assert deliver(bot, envelope(event)).status_code == 200
    post = answered(slack, before)
    assert post["channel"] == "C0000001" and post["thread_ts"] == event["ts"]
    direct = assistant.ask(SEED_QUESTION)
    assert post["text"] == direct.text  # the same answer as the Python API
    sections = [b["text"]["text"] for b in post["blocks"] if b["type"] == "section"]
    assert "Azerbaijan" in " ".join(sections) and "[1]" in " ".join(sections)
    sources = _context_text(post)
    assert sources.startswith("*Sources*")
    assert "[1] *Bush, Putin meet over differences on missile defence, Iran*" in sources
    assert "000_98df9f2bcfa30ca5.txt" in sources and str(SEEDS) not in sources
    assert sources.count("\n[") == len(direct.citations)


def test_follow_up_in_the_thread_uses_the_history(bot: LiveServer, slack: FakeSlack,
                                                  assistant: Assistant) -> None:
    assert assistant.ask(FOLLOW_UP).refused  # on its own the follow-up cannot be answered
    before = len(slack.posts)
    first = mention(slack, "C0000002", SEED_QUESTION)
    deliver(bot, envelope(first))
    first_answer = answered(slack, before)
    calls_before = slack.methods().count("conversations.replies")
    follow = mention(slack, "C0000002", FOLLOW_UP, thread_ts=first["ts"])
    assert deliver(bot, envelope(follow)).status_code == 200
    post = answered(slack, before + 1)
    assert post["thread_ts"] == first["ts"]
    assert slack.methods().count("conversations.replies") == calls_before + 1
    history = [{"role": "user", "content": SEED_QUESTION},
               {"role": "assistant", "content": first_answer["text"]}]
    expected = assistant.ask(FOLLOW_UP, history)
    assert not expected.refused and post["text"] == expected.text
    assert "Azerbaijan" in post["text"]


def test_direct_messages_are_answered_and_bot_messages_ignored(bot: LiveServer,
                                                               slack: FakeSlack) -> None:
    before = len(slack.posts)
    stored = slack.add_message("D0000001", SEED_QUESTION)
    dm = {"type": "message", "channel_type": "im", "channel": "D0000001", "user": "UHUMAN01",
          "text": SEED_QUESTION, "ts": stored["ts"], "event_ts": stored["ts"]}
    from_bot = {**dm, "ts": slack.next_ts(), "bot_id": "BOTHER01", "user": "UOTHER01"}
    edited = {**dm, "ts": slack.next_ts(), "subtype": "message_changed"}
    in_channel = {**dm, "ts": slack.next_ts(), "channel_type": "channel", "channel": "C0000009"}
    for event in (from_bot, edited, in_channel, dm):
        assert deliver(bot, envelope(event)).status_code == 200
    post = answered(slack, before)
    assert post["channel"] == "D0000001" and post["thread_ts"] == stored["ts"]
    assert "Azerbaijan" in post["text"]
    # One more valid event flushes the queue: nothing else was answered in between.
    sentinel = mention(slack, "C0000003", SEED_QUESTION)
    deliver(bot, envelope(sentinel))
    answered(slack, before + 1)
    assert [p["channel"] for p in slack.posts[before:]] == ["D0000001", "C0000003"]


def test_when_the_articles_do_not_say_the_reply_is_plain(bot: LiveServer,
                                                         slack: FakeSlack) -> None:
    before = len(slack.posts)
    deliver(bot, envelope(mention(slack, "C0000004", UNANSWERABLE)))
    post = answered(slack, before)
    assert post["text"].startswith("The indexed articles don't say")
    assert not post.get("blocks")


def test_an_empty_mention_gets_a_hint(bot: LiveServer, slack: FakeSlack) -> None:
    before = len(slack.posts)
    deliver(bot, envelope(mention(slack, "C0000005", "  ")))
    assert "Ask me a question" in answered(slack, before)["text"]


# -- security and retries --------------------------------------------------------------------------
def test_bad_signatures_and_stale_requests_get_401_and_no_answer(bot: LiveServer,
                                                                 slack: FakeSlack) -> None:
    before = len(slack.posts)
    event_id = "EvFORGED0001"
    body = envelope(mention(slack, "C0000006", SEED_QUESTION), event_id)
    now = int(time.time())
    forged = sign(body, now, secret="not-the-secret")
    tampered_body = body.replace(SEED_QUESTION.encode(), b"What is the admin password?")
    stale = now - 5 * 60 - 30
    attempts = [
        deliver(bot, body, forged),
        deliver(bot, tampered_body, sign(body, now)),
        deliver(bot, body, timestamp=stale),
        deliver(bot, body, {"Content-Type": "application/json"}),
        deliver(bot, body, {**sign(body, now), "X-Slack-Signature": "v0=" + "0" * 64}),
    ]
    assert [r.status_code for r in attempts] == [401] * 5
    # A genuine delivery of the same event id is still answered: the forgeries left no trace.
    assert deliver(bot, body).status_code == 200
    post = answered(slack, before)
    assert post["channel"] == "C0000006"
    assert len(slack.posts) == before + 1


def test_slack_retries_of_the_same_event_are_answered_once(bot: LiveServer,
                                                           slack: FakeSlack) -> None:
    before = len(slack.posts)
    event = mention(slack, "C0000007", SEED_QUESTION)
    body = envelope(event, "EvRETRIED001")
    assert deliver(bot, body).status_code == 200
    for retry in (1, 2, 3):
        headers = {**sign(body, int(time.time())), "X-Slack-Retry-Num": str(retry),
                   "X-Slack-Retry-Reason": "http_timeout"}
        assert deliver(bot, body, headers).status_code == 200
    answered(slack, before)
    sentinel = mention(slack, "C0000008", SEED_QUESTION)
    deliver(bot, envelope(sentinel))
    answered(slack, before + 1)
    threads = [p["thread_ts"] for p in slack.posts[before:]]
    assert threads.count(event["ts"]) == 1 and threads.count(sentinel["ts"]) == 1


def test_oversized_event_bodies_are_refused(bot: LiveServer) -> None:
    body = b"{" + b" " * 1_100_000 + b"}"
    assert deliver(bot, body).status_code == 413


# -- pieces ----------------------------------------------------------------------------------------
def test_configuration_errors_are_one_sentence(slack: FakeSlack, tmp_path: Any) -> None:
    base = {"data_dir": tmp_path, "embedding_backend": "fake", "slack_api_url": slack.api_url}
    with pytest.raises(RagError, match="RAG_SLACK_BOT_TOKEN"):
        build_app(Settings(**base))
    with pytest.raises(RagError, match="RAG_SLACK_SIGNING_SECRET"):
        build_app(Settings(**base, slack_bot_token=BOT_TOKEN))
    with pytest.raises(RagError, match="auth.test"):
        build_app(Settings(**base, slack_bot_token="xoxb-wrong", slack_signing_secret=SECRET))
    with pytest.raises(RagError, match="RAG_SLACK_APP_TOKEN"):
        run_bot(Settings(**base, slack_bot_token=BOT_TOKEN, slack_mode="socket"))


def test_socket_mode_needs_no_signing_secret(slack: FakeSlack, tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, embedding_backend="fake", slack_mode="socket",
                        slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url)
    app = build_app(settings)
    assert app.client.base_url == slack.api_url


def test_question_text_and_message_formatting(assistant: Assistant) -> None:
    assert question_text(f"<@{BOT_USER_ID}> what about <https://x.org/a|this> &amp; that?") \
        == "what about this & that?"
    answer = assistant.ask(SEED_QUESTION)
    url_answer = answer.model_copy(update={"citations": [c.model_copy(update={
        "source": "https://news.example/a?b=1", "headline": "A <b> & c"})
        for c in answer.citations]})
    message = answer_message(url_answer)
    sources = _context_text(message)
    assert "<https://news.example/a?b=1|A &lt;b&gt; &amp; c>" in sources
    assert "news.example" in sources
    refused = answer_message(assistant.ask(UNANSWERABLE))
    assert set(refused) == {"text"}


METHOD_SCOPES = {"auth.test": set(), "chat.postMessage": {"chat:write"},
                 "conversations.replies": {"channels:history", "groups:history", "im:history",
                                           "mpim:history"}}


def test_the_manifest_grants_what_the_bot_uses(bot: LiveServer, slack: FakeSlack) -> None:
    import yaml

    before = len(slack.posts)
    root = slack.add_message("C0000010", "Anyone following the radar story?")
    deliver(bot, envelope(mention(slack, "C0000010", SEED_QUESTION, thread_ts=root["ts"])))
    answered(slack, before)

    manifest = yaml.safe_load((REPO / "docs" / "slack-app-manifest.yaml").read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention", "message.im"}
    assert {"app_mentions:read", "im:history"} <= scopes  # to receive those two events
    used = set(slack.methods())
    assert used == set(METHOD_SCOPES)
    for method in used:
        assert METHOD_SCOPES[method] <= scopes, method
    assert scopes == {"app_mentions:read", "im:history"}.union(*METHOD_SCOPES.values())


def test_deduper_forgets_old_ids() -> None:
    seen = EventDeduper(size=2)
    assert seen.first_time("a") and not seen.first_time("a")
    assert seen.first_time("b") and seen.first_time("c")
    assert seen.first_time("a")  # pushed out by size


def test_a_models_answer_edits_the_articles_sentences_posted_first(
        slack: FakeSlack, assistant: Assistant, settings: Settings) -> None:
    # The preview is posted at once; the fake model's checked answer then replaces it in place.
    from rag.answering.llm_answerer import LLMAnswerer
    from rag.llm.chat_model import FakeChatModel
    from rag.slack_bot import WRITING

    model = FakeChatModel()
    writer = LLMAnswerer("fake", model, assistant.embedder, assistant.settings)
    with_model = Assistant(assistant.settings, embedder=assistant.embedder, answerer=writer)
    model.enqueue("Putin offered the use of a Russian radar site in Azerbaijan [1].")
    with LiveServer(create_asgi_app(settings, with_model)) as live:
        posts, edits = len(slack.posts), len(slack.updates)
        event = mention(slack, "C0000009", SEED_QUESTION)
        assert deliver(live, envelope(event)).status_code == 200
        first = answered(slack, posts)
        assert WRITING in json.dumps(first["blocks"], ensure_ascii=False)
        assert "Azerbaijan" in first["text"]
        assert first["thread_ts"] == event["ts"]
        done = slack.wait_for_updates(edits + 1, timeout=90)
    assert len(done) == edits + 1, "the preview was never replaced"
    edit = done[-1]
    assert edit["ts"] == first["ts"] and edit["channel"] == "C0000009"
    assert edit["text"] == "Putin offered the use of a Russian radar site in Azerbaijan. [1]"
    assert WRITING not in json.dumps(edit["blocks"], ensure_ascii=False)
    assert _context_text(edit).startswith("*Sources*")
    assert len(slack.posts) == posts + 1  # one message in the thread, edited, not two
    thread = slack.threads[("C0000009", event["ts"])]
    assert [m["text"] for m in thread if "bot_id" in m] == [edit["text"]]
