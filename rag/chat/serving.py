"""Serving the chat page safely: what Gradio may never serve, and the launch options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradio.utils import get_upload_folder

from rag.settings import Settings


def blocked_paths(settings: Settings) -> list[str]:
    """What Gradio must never serve: the data directory, ``.env``, the repository, cwd.

    A folder holding Gradio's own upload directory is left out (blocking it would refuse
    every upload); Gradio serves nothing outside its upload directory unless allowed anyway.
    """
    upload_dir = Path(get_upload_folder()).resolve()
    wanted = {settings.data_dir.resolve(), Path(".env").resolve(), Path.cwd().resolve()}
    repo = Path(__file__).resolve().parents[2]
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
