"""One place for every setting: env prefix ``RAG_``, a ``.env`` file, and one data directory."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """All configuration of the assistant; ``RAG_DATA_DIR`` moves every piece of state."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    data_dir: Path = Field(default=Path(".data"), description="Index, manifests and caches.")

    # Store
    chroma_mode: Literal["embedded", "http"] = "embedded"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8001
    collection: str = "news"

    # Embeddings
    embedding_model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="all-MiniLM-L6-v2 (packaged weights), another model name, or a local path.",
    )
    embedding_backend: Literal["onnx", "sentence-transformers", "fake"] = Field(
        default="onnx",
        description="onnx: the model exported once to ONNX Runtime (fast, no torch at run time); "
                    "sentence-transformers: torch; fake: hashed words, for tests.")
    embedding_quantize: bool = Field(
        default=True, description="int8 weights for the encoder's linear layers.")
    embedding_threads: int = Field(
        default_factory=lambda: min(2, os.cpu_count() or 1), ge=1,
        description="Texts the ONNX encoder embeds at once when ingesting.")
    embedding_batch_size: int = 64
    sentence_cache_size: int = Field(
        default=100_000, ge=0, description=(
            "Sentence vectors kept between questions (about 1.6 KB each, least recently used "
            "out first); 0 turns the cache off. Only for an encoder whose vectors do not "
            "depend on the batch (the ONNX one)."))

    # Ingest
    max_file_bytes: int = Field(default=20_000_000, description="Files above this are skipped.")
    chunk_chars: int = Field(
        default=1200, ge=200,
        description="Longest chunk, in characters (sentences are never split unless longer).")
    chunk_overlap_sentences: int = 1
    ingest_lease_seconds: float = Field(
        default=600, gt=0,
        description="With a Chroma server: an ingest run silent this long is taken for dead and "
                    "its leftovers are swept (runs refresh their heartbeat far more often).")

    # Retrieval
    top_k: int = Field(
        default=6, ge=1, le=20,
        description="Passages handed to the answerer (a language model sees their best sentences "
                    "within llm_prompt_chars). Dev set, 6 vs 4: generated answers 0.700 vs 0.671 "
                    "right, refusals 0.533 vs 0.433; extractive 0.614 vs 0.529, refusals 0.167 "
                    "vs 0.267.")
    candidates: int = Field(default=40, ge=1, description="Candidates per retriever before fusion.")
    max_chunks_per_article: int = 2
    rrf_k: int = 60
    article_weight: float = Field(
        default=1.0, ge=0,
        description="Weight of the article-level BM25 ranking in the fusion (0: off).")
    recency_weight: float = Field(
        default=2.0, ge=0,
        description="Weight of the candidates' articles newest first in the rerank, for "
                    "questions that ask for a figure (0: off).")
    rerank_depth: int = Field(
        default=12, ge=0, le=40,
        description="Candidates reranked by their best sentence before the top k are kept "
                    "(0: no reranking).")
    rerank_weight: float = Field(
        default=2.0, ge=0,
        description="Weight of the best-sentence ranking against the retriever's (0: off).")

    # Answering
    answerer: str = Field(
        default="auto",
        # RAG_GENERATOR is the name this setting had before; it still works.
        validation_alias=AliasChoices("RAG_ANSWERER", "RAG_GENERATOR"),
        description="Who writes the answers: auto (the default local model if installed, else "
                    "extractive), extractive, a packaged local model name, or 'openai' for a "
                    "compatible server. Env: RAG_ANSWERER (or the older RAG_GENERATOR).",
    )
    relevance_threshold: float = Field(
        default=0.5, description="Below this best-sentence score no answerer is called: refuse."
    )
    answer_floor: float = Field(
        default=0.5,
        description="A model's answer is refused unless a sentence it rests on scores this "
                    "against the question, as the extractive answerer scores sentences "
                    "(0 turns the check off).",
    )
    refusal_threshold: float = Field(
        default=0.64,
        description="The extractive answerer refuses unless an answering sentence scores this "
                    "(calibrated on the dev set with `rag eval`).",
    )
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"
    max_new_tokens: int = 256
    llm_threads: int = Field(
        default_factory=lambda: min(4, max(1, (os.cpu_count() or 2) - 1)),
        description="llama.cpp threads; default: every core but one, at most 4. On a busy "
                    "machine, threads that must wait for a core stall generation (measured: "
                    "0.3 tokens/s with 2 threads on 2 cores at load 4, vs 16 with 1).",
    )
    llm_context: int = 4096
    llm_prompt_chars: int = Field(
        default=1000,
        description="Passage text a language model sees; sets time to first token (full-length "
                    "news on an idle 2-core machine: 1000 -> 3.9-4.9 s, 800 -> 3.7 s; 800 "
                    "answered 0.629 of the dev set right vs 0.700).")
    llm_passage_order: Literal["relevance", "date"] = Field(
        default="date",
        description="The order a language model reads its passages in: by publication date "
                    "(oldest first, undated first of all; newsroom, default model: 0.762 right "
                    "vs 0.730 best first, 0.095 vs 0.111 wrong) or best first.")
    model_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "newsrag" / "models",
        description="Assembled, verified model weights (outside data_dir: shared by indexes).",
    )

    # Services
    api_keys: str | None = Field(default=None, description="Comma-separated keys; unset = open.")
    max_body_bytes: int = 2_000_000
    max_upload_bytes: int = 10_000_000
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_mode: Literal["http", "socket"] = "http"
    slack_api_url: str | None = Field(default=None, description="Tests point Slack's client here.")

    @cached_property
    def chroma_path(self) -> Path:
        """Where the embedded Chroma store lives."""
        return self.data_dir / "chroma"

    @cached_property
    def cache_dir(self) -> Path:
        """Derived caches (lexical index, models) that can always be rebuilt."""
        return self.data_dir / "cache"

    def api_key_set(self) -> frozenset[str]:
        """The accepted API keys; empty means the API is open."""
        if not self.api_keys:
            return frozenset()
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())
