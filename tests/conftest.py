"""Every test gets its own data directory; nothing reaches the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SHARED = REPO.parent / "shared"
SEED_QUESTION = "What did Putin offer instead of the Czech radar?"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """RAG_DATA_DIR points into the test's temp dir; no stray .env is read."""
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("RAG_") and name != "RAG_DATA_DIR":
            monkeypatch.delenv(name)
    # The default 'auto' would load the 1.5B language model in every test: tests that want a
    # language model name it.
    monkeypatch.setenv("RAG_GENERATOR", "extractive")
    return path


def require_model(name: str) -> None:
    """Skip when a packaged language model cannot run here; under CI that is a failure."""
    from rag.llm.local_models import installed_models
    from rag.settings import Settings

    if name not in installed_models(Settings()):
        message = (f"{name} or llama-cpp-python is not installed "
                   "(scripts/setup.sh --test installs both)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def seeded_assistant(factory: pytest.TempPathFactory, name: str, **settings: Any) -> Any:
    """An Assistant over a new store (real embedder, extractive unless told) holding seeds/."""
    from rag.assistant import Assistant
    from rag.settings import Settings

    assistant = Assistant(Settings(**{"data_dir": factory.mktemp(name),
                                      "answerer": "extractive", **settings}))
    assistant.ingest([SEEDS])
    return assistant


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    """A writable copy of seeds/ that a test may edit or delete."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def fake_settings(data_dir: Path):  # type: ignore[no-untyped-def]
    """Settings with the fast deterministic embedder, for plumbing tests."""
    from rag.settings import Settings

    return Settings(data_dir=data_dir, embedding_backend="fake")


@pytest.fixture
def real_settings(data_dir: Path):  # type: ignore[no-untyped-def]
    """Settings with the real packaged embedding model."""
    from rag.settings import Settings

    return Settings(data_dir=data_dir)


@contextmanager
def running_chroma(path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A real `chroma run` on a free loopback port (the process and its port); always stopped."""
    from servers import free_port, server_process

    port = free_port()
    path.mkdir(parents=True, exist_ok=True)
    chroma = Path(sys.executable).parent / "chroma"
    with server_process([str(chroma), "run", "--path", str(path / "db"), "--host", "127.0.0.1",
                         "--port", str(port)],
                        ready_url=f"http://127.0.0.1:{port}/api/v2/heartbeat",
                        log=path / "server.log", timeout=60) as proc:
        yield proc, port


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` server on loopback for the session."""
    with running_chroma(tmp_path_factory.mktemp("chroma-server")) as (_, port):
        yield "127.0.0.1", port
