"""Picking an answerer by name: 'auto', 'extractive', a packaged local model, or 'openai'."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.answering.base import Answerer, ArticleTexts
from rag.embeddings import Embedder
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.answering.evidence import EvidenceScorer


def make_answerer(name: str, settings: Settings, embedder: Embedder, *,
                  scorer: EvidenceScorer | None = None,
                  articles: ArticleTexts | None = None) -> Answerer:
    """The answerer called ``name``: 'auto', 'extractive', a packaged local model, or 'openai'.

    ``scorer`` is shared with the caller's refusal gate, so one answer scores its passages once;
    ``articles`` gives the extractive answerer whole articles, to tell which a figure is about.
    """
    if name == "auto":
        from rag.llm.local_models import default_answerer

        name = default_answerer(settings)
    if name == "extractive":
        from rag.answering.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer(embedder, settings, scorer=scorer, articles=articles)
    from rag.answering.llm_answerer import LLMAnswerer
    from rag.llm.factory import make_chat_model

    return LLMAnswerer(name, make_chat_model(name, settings), embedder, settings, scorer=scorer)


def available_answerers(settings: Settings) -> list[str]:
    """Answerer names that can run here: extractive always, plus what is installed/configured."""
    from rag.llm.local_models import installed_models

    names = ["extractive", *installed_models(settings)]
    if settings.openai_base_url:
        names.append("openai")
    return names


def answerer_choices(settings: Settings) -> list[str]:
    """What a user may choose: what runs here, with the configured default listed first."""
    names = available_answerers(settings)
    if settings.answerer not in names:
        names.insert(0, settings.answerer)
    return names
