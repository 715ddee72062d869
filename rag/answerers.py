"""The answer-generator seam: what every answerer (extractive or a language model) provides."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, Field

from rag.embeddings import Embedder
from rag.models import Citation, Passage, Turn
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.evidence import EvidenceScorer


class Draft(BaseModel):
    """An answerer's finished, citation-checked answer (the Assistant adds the question)."""

    text: str
    citations: list[Citation] = Field(default_factory=list)
    refused: bool = False
    supported_sentences: int = 0
    total_sentences: int = 0


class Answerer(Protocol):
    """Writes an answer from passages, streaming text, and finishes with a checked Draft."""

    name: str

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        """Rewrite a follow-up as a standalone question using the conversation."""
        ...

    def stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str | Draft]:
        """Yield pieces of answer text as they are written, then exactly one Draft."""
        ...


def make_answerer(name: str, settings: Settings, embedder: Embedder, *,
                  scorer: EvidenceScorer | None = None) -> Answerer:
    """The answerer called ``name``: 'auto', 'extractive', a packaged local model, or 'openai'.

    ``scorer`` is shared with the caller's refusal gate, so one answer scores its passages once.
    """
    if name == "auto":
        from rag.local_models import default_generator

        name = default_generator(settings)
    if name == "extractive":
        from rag.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer(embedder, settings, scorer=scorer)
    from rag.generation import make_llm_answerer

    return make_llm_answerer(name, settings, embedder, scorer=scorer)


def available_generators(settings: Settings) -> list[str]:
    """Answerer names that can run here: extractive always, plus what is installed/configured."""
    names = ["extractive"]
    try:
        from rag.local_models import installed_models
    except ImportError:
        installed_models = None  # type: ignore[assignment]
    if installed_models is not None:
        names.extend(installed_models(settings))
    if settings.openai_base_url:
        names.append("openai")
    return names
