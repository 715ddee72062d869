"""A small fake of Slack's Web API on loopback: records posts, serves threads and auth.test.

Point ``slack_sdk.WebClient(base_url=fake.api_url)`` at it. Only the methods the bot uses are
served; anything else answers ``{"ok": false, "error": "unknown_method"}`` as Slack would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_TOKEN = "xoxb-test-token"
BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0000001"


class FakeSlack:
    """Slack's Web API, in memory: ``posts`` records chat.postMessage calls, in order, and
    ``updates`` the chat.update calls that edited them."""

    def __init__(self, token: str = BOT_TOKEN) -> None:
        self.token = token
        self.posts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._ts = time.time()
        self._lock = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk's WebClient (it must end with a slash)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- what tests use ---------------------------------------------------------------------
    def next_ts(self) -> str:
        """A fresh, increasing Slack timestamp."""
        with self._lock:
            self._ts += 1.0
            return f"{self._ts:.6f}"

    def add_message(self, channel: str, text: str, *, user: str = "UHUMAN01",
                    thread_ts: str | None = None, ts: str | None = None) -> dict[str, Any]:
        """Put a human's message in a channel (or thread), as Slack would store it."""
        ts = ts or self.next_ts()
        message = {"type": "message", "user": user, "text": text, "ts": ts,
                   "thread_ts": thread_ts or ts}
        with self._lock:
            self.threads.setdefault((channel, thread_ts or ts), []).append(message)
        return message

    def wait_for_posts(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Block until ``count`` messages were posted (or the timeout); return all posts."""
        return self._wait_for(self.posts, count, timeout)

    def wait_for_updates(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Block until ``count`` messages were edited (or the timeout); return all edits."""
        return self._wait_for(self.updates, count, timeout)

    def _wait_for(self, records: list[dict[str, Any]], count: int,
                  timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(records) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return list(records)

    def methods(self) -> list[str]:
        """The Web API methods called so far, in order."""
        with self._lock:
            return [name for name, _ in self.calls]

    # -- the API ----------------------------------------------------------------------------
    def _call(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        with self._lock:
            self.calls.append((method, params))
        if token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.replies": self._replies,
        }.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(params)

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "newsbot",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel") or not (params.get("text") or params.get("blocks")):
            return {"ok": False, "error": "no_text"}
        ts = self.next_ts()
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts,
                   "text": params.get("text", ""), "blocks": blocks or [],
                   "thread_ts": params.get("thread_ts") or ts}
        with self._lock:
            self.posts.append({**params, "blocks": blocks, "ts": ts})
            self.threads.setdefault((params["channel"], message["thread_ts"]), []).append(message)
            self._lock.notify_all()
        return {"ok": True, "channel": params["channel"], "ts": ts, "message": message}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        """Edit one of the bot's messages in place, as Slack does (it keeps its ts)."""
        if not (params.get("text") or params.get("blocks")):
            return {"ok": False, "error": "no_text"}
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        with self._lock:
            found = [m for (channel, _), messages in self.threads.items()
                     if channel == params.get("channel")
                     for m in messages if m["ts"] == params.get("ts") and "bot_id" in m]
            if not found:
                return {"ok": False, "error": "message_not_found"}
            found[0].update(text=params.get("text", ""), blocks=blocks or [])
            self.updates.append({**params, "blocks": blocks})
            self._lock.notify_all()
        return {"ok": True, "channel": params["channel"], "ts": params["ts"],
                "text": params.get("text", "")}

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            messages = self.threads.get((str(params.get("channel")), str(params.get("ts"))))
            if messages is None:
                return {"ok": False, "error": "thread_not_found"}
            ordered = sorted(messages, key=lambda m: float(m["ts"]))
        return {"ok": True, "messages": ordered, "has_more": False}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _respond(self) -> None:
                url = urlsplit(self.path)
                params: dict[str, Any] = dict(parse_qsl(url.query))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                kind = self.headers.get("Content-Type", "")
                if raw and kind.startswith("application/json"):
                    params.update(json.loads(raw))
                elif raw:
                    params.update(parse_qsl(raw.decode()))
                auth = self.headers.get("Authorization", "")
                token = auth[7:] if auth.startswith("Bearer ") else params.get("token")
                method = url.path.removeprefix("/api/")
                body = json.dumps(fake._call(method, params, token)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _respond
            do_POST = _respond

        return Handler
