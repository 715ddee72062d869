"""The README's Python examples run as written (against a loopback server where they need one)."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import re
import shlex
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from rag.api.app import create_app
from tests.conftest import REPO, SEEDS, seeded_assistant
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def _run(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    return out.getvalue()


def test_the_python_api_example(tmp_path: Path) -> None:
    code = next(b for b in BLOCKS if "from rag import Assistant" in b)
    shutil.copytree(SEEDS, tmp_path / "seeds")  # the example ingests "seeds/" from here
    printed = _run(code)
    assert printed.count("Azerbaijan") >= 3  # the answer, its quote, the follow-up
    assert "Bush, Putin meet over differences on missile defence" in printed


def test_the_openai_client_example(tmp_path_factory: pytest.TempPathFactory) -> None:
    code = next(b for b in BLOCKS if "from openai import OpenAI" in b)
    assistant = seeded_assistant(tmp_path_factory, "readme-openai")
    with LiveServer(create_app(assistant=assistant)) as server:
        printed = _run(code.replace("http://127.0.0.1:8000", server.url))
    assert printed.count("Azerbaijan") >= 2  # the completion and the stream
    assert "Bush, Putin meet over differences on missile defence" in printed



def test_the_langchain_example(tmp_path_factory: pytest.TempPathFactory) -> None:
    code = next(b for b in BLOCKS if "from langchain_openai import ChatOpenAI" in b)
    assistant = seeded_assistant(tmp_path_factory, "readme-langchain")
    with LiveServer(create_app(assistant=assistant)) as server:
        printed = _run(code.replace("http://127.0.0.1:8000", server.url))
    assert "Kennebunkport" in printed  # the answer ...
    assert "Bush, Putin meet over differences on missile defence" in printed  # ... its source

# -- the curl examples ------------------------------------------------------------------------
HTTP_BLOCK = next(b for b in re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(),
                                        re.S) if "curl -s http://127.0.0.1:8000/health" in b)
INLINE_CURL = re.search(r"With curl: `(curl [^`]*)`", (REPO / "README.md").read_text(), re.S)
ARTICLE = ("Dockers end their strike\n\nDockers at Port Vellan returned to work on Monday after "
           "the harbour board agreed to hire forty more crane drivers, the union said.\n")
FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Vellan Gazette</title><link>http://gazette.example/</link>
<item><title>Ferry timetable changes</title><link>http://gazette.example/ferry</link>
<pubDate>Tue, 05 Mar 2024 09:00:00 GMT</pubDate><description>The island ferry will sail
every forty minutes from the first of May, the operator announced.</description></item>
</channel></rss>"""
PAGE = (b"<html><head><title>Lighthouse reopens</title></head><body><article><h1>Lighthouse "
        b"reopens</h1><p>The old lighthouse on Cape Marren reopened to visitors after a two-year "
        b"restoration paid for by the county, the keeper said on Friday.</p></article></body>"
        b"</html>")


def _commands(block: str) -> list[str]:
    """The shell commands of a README block: comments dropped, continued lines joined."""
    commands, pending = [], ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        try:
            shlex.split(pending)
        except ValueError:  # a quote is still open
            continue
        if not line.rstrip().endswith("\\"):
            commands.append(pending.strip())
            pending = ""
    return commands


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        self.send_response(200 if self.path == "/news/article.html" else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


def _curl(command: str, server: str, cwd: Path) -> tuple[int, str]:
    """Run one README curl command against ``server``: its HTTP status and body."""
    assert command.startswith("curl "), command
    command = command.replace("http://127.0.0.1:8000", server)
    command = "curl --max-time 120 -w '\\n%{http_code}' " + command[len("curl "):]
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode == 0, (command, done.stderr)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_the_curl_examples(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert shutil.which("curl"), "curl is installed by scripts/setup.sh --test"
    monkeypatch.chdir(REPO)  # the server runs in the checkout, as the README has it
    commands = _commands(HTTP_BLOCK)
    assert INLINE_CURL is not None
    commands.append(" ".join(INLINE_CURL.group(1).split()).replace(
        '"content": "..."', '"content": "What did Putin offer instead of the Czech radar?"'))
    assert len(commands) == 10, commands
    (tmp_path / "article.txt").write_text(ARTICLE)
    (tmp_path / "feed.rss").write_text(FEED)
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=site.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    assistant = seeded_assistant(tmp_path_factory, "readme-curl")
    texts: list[str] = []
    doomed = ""
    try:
        with LiveServer(create_app(assistant=assistant)) as server:
            for command in commands:
                command = command.replace("https://example.com",
                                          f"http://127.0.0.1:{site.server_address[1]}")
                if "-X DELETE" in command:  # the README's id is an example: use a real one
                    doomed = next(a.article_id for a in assistant.articles()
                                  if a.headline == "Dockers end their strike")
                    command = command.replace("3f9a2c", doomed[:8])
                status, body = _curl(command, server.url, tmp_path)
                assert status == 200, (command, body)
                assert "Traceback" not in body
                texts.append(body)
    finally:
        site.shutdown()
        site.server_close()
    health, ask, ask_history, stream, upload, by_url, listing, deleted, reindexed, chat = texts
    assert json.loads(health)["status"] == "ok"
    for body in (ask, ask_history):
        answer = json.loads(body)
        assert "Azerbaijan" in answer["text"] and answer["citations"], body
    assert "event: answer" in stream and "Azerbaijan" in stream
    assert json.loads(upload)["added"] == 2  # the article and the feed's one entry
    assert json.loads(by_url)["added"] == 1
    assert len(json.loads(listing)) == 4
    assert json.loads(deleted)["article_id"] == doomed
    assert json.loads(reindexed)["chunks_added"] > 0
    assert "Azerbaijan" in json.loads(chat)["choices"][0]["message"]["content"]
    assert {a.headline for a in assistant.articles()} == {
        "Bush, Putin meet over differences on missile defence, Iran", "Ferry timetable changes",
        "Lighthouse reopens"}
