"""The servers cap glibc malloc's arenas, so their request threads do not each keep their own.

`rag serve`, the chat page (app.py) and the Slack bot all answer on pools of request threads.

Each check runs in a fresh Python subprocess (an arena cap is process-wide and cannot be undone),
starts several threads that allocate at once, and counts the arenas glibc's own
``malloc_stats()`` reports on stderr. The control run without the cap shows the count would
differ. Skipped where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
THREADS = 6  # fewer than glibc's default limit of 8 arenas per core, even on one core

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc"
    or not hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_stats"),
    reason="arenas are a glibc malloc feature")

# Starts THREADS threads that hold allocations at the same time, then prints glibc's arena list.
_ALLOCATE = textwrap.dedent(f"""
    import ctypes, ctypes.util, sys, threading

    def allocate_in_threads():
        barrier = threading.Barrier({THREADS})

        def work():
            held = [bytearray(64 * 1024) for _ in range(50)]  # below mmap's threshold
            barrier.wait(timeout=30)
            held.clear()

        threads = [threading.Thread(target=work) for _ in range({THREADS})]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sys.stderr.flush()
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()
""")


def _arenas(script: str, tmp_path: Path, *args: str) -> int:
    """Run ``script`` in a fresh interpreter; the number of arenas its malloc_stats listed."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env.update(RAG_DATA_DIR=str(tmp_path / "data"), RAG_EMBEDDING_BACKEND="fake",
               PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", _ALLOCATE + textwrap.dedent(script), *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_limit_malloc_arenas_caps_the_arenas_threads_get(tmp_path: Path) -> None:
    script = """
        import sys
        from rag.process import limit_malloc_arenas
        if sys.argv[1] == "cap":
            assert limit_malloc_arenas(2) is True
        allocate_in_threads()
    """
    uncapped = _arenas(script, tmp_path, "none")
    capped = _arenas(script, tmp_path, "cap")
    assert uncapped > THREADS // 2  # the control: without the cap threads spread out
    assert capped <= 2


def test_an_environment_setting_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.process import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


def test_rag_serve_caps_arenas_before_its_request_threads_start(tmp_path: Path) -> None:
    # The real command line and app; only uvicorn's serving loop is replaced, by threads that
    # allocate the way the request pool's threads do.
    script = """
        import uvicorn
        from rag.cli import main

        uvicorn.run = lambda app, **kwargs: allocate_in_threads()
        raise SystemExit(main(["serve", "--no-chat", "--port", "1"]))
    """
    assert _arenas(script, tmp_path) <= 2


def test_the_chat_page_caps_arenas_before_gradio_starts(tmp_path: Path) -> None:
    # The real app.py over an empty seeds folder; only Gradio's launch is replaced.
    script = """
        import gradio
        import app

        gradio.Blocks.launch = lambda self, **kwargs: allocate_in_threads()
        raise SystemExit(app.main(["--port", "1", "--seeds", "no-seeds-here"]))
    """
    assert _arenas(script, tmp_path) <= 2


def test_the_slack_bot_caps_arenas_before_its_request_threads_start(tmp_path: Path) -> None:
    # The real run() and bolt app, against the fake Slack API on loopback (auth.test).
    script = f"""
        import sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        import uvicorn
        from fake_slack import BOT_TOKEN, FakeSlack
        from rag.settings import Settings
        from rag.slack_bot import run

        uvicorn.run = lambda app, **kwargs: allocate_in_threads()
        with FakeSlack() as slack:
            run(Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret="s",
                         slack_api_url=slack.api_url, slack_mode="http"), port=1)
    """
    assert _arenas(script, tmp_path) <= 2
