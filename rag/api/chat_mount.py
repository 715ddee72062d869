"""The Gradio chat page mounted inside the API server, at /chat."""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
from typing import Any

from fastapi import FastAPI

from rag.api.middleware import CHAT_PATH
from rag.assistant import Assistant

log = logging.getLogger(__name__)


def mount_chat(app: FastAPI, assistant: Assistant) -> bool:
    """Mount the chat at /chat when ``rag.chat`` can be imported; API keys become passwords."""
    if importlib.util.find_spec("gradio") is None:
        log.warning("gradio is not installed; serving the API without the chat page")
        return False
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from rag.chat import build_demo, serve_options

    keys = assistant.settings.api_key_set()

    def login(_user: str, password: str) -> bool:
        return any(secrets.compare_digest(password.encode(), key.encode()) for key in keys)

    options: dict[str, Any] = serve_options(assistant.settings)
    gr.mount_gradio_app(app, build_demo(assistant), path=CHAT_PATH,
                        auth=login if keys else None, **options)
    return True
