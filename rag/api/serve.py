"""``rag serve``: the API (and the chat page at /chat) under uvicorn."""

from __future__ import annotations

import ipaddress
import logging

from rag.settings import Settings

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
          with_chat: bool = True) -> None:
    """Run the API (and the chat page at /chat) with uvicorn until interrupted."""
    from rag.process import start_service

    start_service(settings)
    import uvicorn

    from rag.api.app import create_app

    if not _is_loopback(host) and not settings.api_key_set():
        log.warning("serving on %s without API keys: anyone who can reach it can ask and "
                    "ingest (set RAG_API_KEYS)", host)
    from rag.assistant import Assistant

    assistant = Assistant(settings)
    assistant.reembed()  # an index from an earlier encoder is brought up to date first
    app = create_app(assistant=assistant, with_chat=with_chat)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
