"""Embedders: the seam between text and vectors, and the two implementations the project ships."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.encoder_weights import offline, resolve_model_path
from rag.errors import ModelUnavailable
from rag.settings import DEFAULT_EMBEDDING_MODEL, Settings

log = logging.getLogger(__name__)
SMALL_BATCH = 64  # texts per call at or below which encoding uses one thread


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors; the same instance embeds chunks and queries."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dimension), rows L2-normalised."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from local files only, optionally int8-quantized."""

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, *, quantize: bool = True,
                 batch_size: int = 64) -> None:
        offline()
        import torch
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(model)
        if not Path(path).exists() and "/" not in path.strip("/"):
            log.info("embedding model %s is not a local path; trying the local HF cache", path)
        try:
            self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except Exception as exc:
            raise ModelUnavailable(
                f"The embedding model '{model}' could not be loaded from local files."
            ) from exc
        if quantize:
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            # Dynamic int8 on the linear layers: the encoder is the ingest bottleneck on CPU.
            self._model = torch.ao.quantization.quantize_dynamic(
                self._model, {torch.nn.Linear}, dtype=torch.qint8
            )
        self.name = f"{model}{'#int8' if quantize else ''}"
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed in length-sorted batches so padding is minimal."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        with self._lock:
            # Query-time work (a query; the sentences of a few passages) runs on one thread:
            # splitting small matrix products over cores costs more than it saves, and far
            # more when the cores are busy (bench: a query 19 ms on one thread vs 87 ms on two;
            # 40 sentences 192 vs 750 ms, load 9). Ingest batches (~256 chunks) use them all.
            threads = torch.get_num_threads()
            if len(texts) <= SMALL_BATCH:
                torch.set_num_threads(1)
            try:
                vectors = self._model.encode(
                    list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
            finally:
                torch.set_num_threads(threads)
        return np.asarray(vectors, dtype=np.float32)


_TOKEN = re.compile(r"\w+")


class FakeEmbedder:
    """Deterministic hashed bag-of-words vectors: fast, offline, for unit tests of the plumbing."""

    def __init__(self, dimension: int = 64) -> None:
        self.name = f"fake-{dimension}"
        self.dimension = dimension
        self.batch_independent = True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Each token adds one to a hashed dimension; rows are L2-normalised."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                digest = hashlib.blake2b(token.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


def _exportable(model_path: str) -> bool:
    """Whether ``model_path`` is a local model folder the ONNX export can read."""
    return (Path(model_path) / "model.safetensors").is_file()


_cache: dict[tuple[str, str, bool, int, int], Embedder] = {}
_cache_lock = threading.Lock()


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name; loaded once per process and shared."""
    key = (settings.embedding_backend, settings.embedding_model, settings.embedding_quantize,
           settings.embedding_batch_size, settings.embedding_threads)
    with _cache_lock:
        if key not in _cache:
            if settings.embedding_backend == "fake":
                _cache[key] = FakeEmbedder()
            elif settings.embedding_backend == "onnx" and _exportable(
                    path := resolve_model_path(settings.embedding_model)):
                from rag.onnx_embedder import OnnxEmbedder

                offline()
                _cache[key] = OnnxEmbedder(
                    path, settings.embedding_model,
                    model_dir=settings.model_dir, quantize=settings.embedding_quantize,
                    threads=settings.embedding_threads)
            else:
                _cache[key] = SentenceTransformerEmbedder(
                    settings.embedding_model, quantize=settings.embedding_quantize,
                    batch_size=settings.embedding_batch_size,
                )
        return _cache[key]

