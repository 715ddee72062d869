"""The README's Python examples run as written (against a loopback server where they need one)."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
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
