"""Which language model runs: a packaged local GGUF (llama.cpp) or an OpenAI-compatible server."""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from rag.errors import ModelUnavailable
from rag.settings import Settings

_models: dict[tuple[Any, ...], BaseChatModel] = {}
_models_lock = threading.Lock()


def make_chat_model(name: str, settings: Settings) -> BaseChatModel:
    """The chat model called ``name``: a packaged local model (loaded once) or 'openai'."""
    if name == "openai":
        return _openai_model(settings)
    from rag.llm.chat_model import LlamaCppChatModel
    from rag.llm.local_models import MODELS, ensure_model, runtime_installed

    if name not in MODELS:
        known = ", ".join(["extractive", "auto", "openai", *MODELS])
        raise ModelUnavailable(f"There is no answerer called '{name}' (known: {known}).")
    if not runtime_installed():
        raise ModelUnavailable(
            "llama-cpp-python is not installed, so local models cannot run (install the 'llm' "
            "extra, or use the extractive answerer).")
    path = ensure_model(name, settings)
    key = (path, min(settings.llm_context, MODELS[name].n_ctx), settings.llm_threads,
           settings.max_new_tokens)
    with _models_lock:
        if key not in _models:
            _models[key] = LlamaCppChatModel(
                model_path=path, n_ctx=key[1], n_threads=settings.llm_threads,
                max_tokens=settings.max_new_tokens).load()
        return _models[key]


def _openai_model(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    if not settings.openai_base_url and not settings.openai_api_key:
        raise ModelUnavailable("The 'openai' answerer needs RAG_OPENAI_BASE_URL (a compatible "
                               "server) or RAG_OPENAI_API_KEY.")
    extra: dict[str, Any] = {}
    if settings.openai_base_url:
        # Servers other than OpenAI's (llama.cpp, vLLM, Ollama) read max_tokens, which
        # langchain-openai now sends as max_completion_tokens.
        extra["extra_body"] = {"max_tokens": settings.max_new_tokens}
    return ChatOpenAI(
        model=settings.openai_model, base_url=settings.openai_base_url,
        api_key=SecretStr(settings.openai_api_key or "not-needed"), temperature=0,
        max_completion_tokens=settings.max_new_tokens, timeout=120, max_retries=1, streaming=True,
        **extra)
