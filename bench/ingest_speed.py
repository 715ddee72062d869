"""Indexing speed: our ingest pipeline vs the naive langchain pipeline vs our bare encoder.

The synthetic corpus (>= 3 MB of article text) is cut into slices; each slice is indexed by each
pipeline in turn (naive, ours, bare encoder), each into a fresh store, so every ratio compares
runs seconds apart on the same text. Totals are over the whole corpus; ratios are also given
per slice, with their median, and by process CPU time, which other processes on a shared machine
disturb less than wall time.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import naive
from bench.corpus import write_corpus
from rag.embeddings import FakeEmbedder


class TimedEmbedder:
    """Our embedder, recording every text it embeds and the time spent in it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.texts: list[str] = []
        self.seconds = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed and record."""
        started = time.perf_counter()
        out = self.inner.embed(texts)
        self.seconds += time.perf_counter() - started
        self.texts.extend(texts)
        return out  # type: ignore[no-any-return]


def _timed_langchain(inner: Any) -> Any:
    """The naive pipeline's embeddings, timing its encoder calls."""
    from langchain_core.embeddings import Embeddings

    class Timed(Embeddings):
        def __init__(self) -> None:
            self.seconds = 0.0

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            started = time.perf_counter()
            out = inner.embed_documents(texts)
            self.seconds += time.perf_counter() - started
            return out  # type: ignore[no-any-return]

        def embed_query(self, text: str) -> list[float]:
            return inner.embed_query(text)  # type: ignore[no-any-return]

    return Timed()


def _slices(corpus: Path, parts: int, folder: Path) -> list[tuple[Path, int]]:
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for i in range(parts):
        path = folder / f"slice-{i}.jsonl"
        mine = lines[i::parts]
        path.write_text("\n".join(mine) + "\n", encoding="utf-8")
        out.append((path, sum(len(json.loads(line)["text"]) for line in mine)))
    return out


def run_ours(path: Path, embedder: Any, folder: Path) -> dict[str, Any]:
    """Index one slice with ``ingest.pipeline.Ingestor`` into a fresh store."""
    from ingest.pipeline import Ingestor
    from rag.settings import Settings
    from rag.store import Store

    timed = TimedEmbedder(embedder)
    started, cpu = time.perf_counter(), time.process_time()
    settings = Settings(data_dir=folder)
    report = Ingestor(settings, timed, Store(settings, timed)).run([path])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
            "chunks": report.chunks_added, "encoder_seconds": timed.seconds, "texts": timed.texts}


def run_naive(path: Path, embedding: Any, folder: Path) -> dict[str, Any]:
    """Index one slice the naive way into a fresh store."""
    timed = _timed_langchain(embedding)
    started, cpu = time.perf_counter(), time.process_time()
    _, chunks = naive.build(path, folder, timed)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "chunks": chunks,
            "encoder_seconds": timed.seconds}


def run_bare(texts: Sequence[str], embedder: Any) -> dict[str, Any]:
    """Our encoder alone on exactly the texts our pipeline embedded, in one call."""
    started, cpu = time.perf_counter(), time.process_time()
    embedder.embed(list(texts))
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "chunks": len(texts)}


def bench_ingest(total_chars: int, parts: int, work: Path) -> dict[str, Any]:
    """The three pipelines over a synthetic corpus of ``total_chars``, slice by slice."""
    from rag.embeddings import make_embedder
    from rag.settings import Settings

    corpus = work / "ingest-corpus.jsonl"
    n_articles, chars = write_corpus(corpus, total_chars)
    settings = Settings(data_dir=work / "unused")
    ours_embedder = make_embedder(settings)
    naive_embedding = naive.embeddings()
    ours_embedder.embed(["warm up"])
    naive_embedding.embed_documents(["warm up"])

    runs: list[dict[str, Any]] = []
    for i, (path, slice_chars) in enumerate(_slices(corpus, parts, work)):
        row: dict[str, Any] = {"slice": i, "chars": slice_chars}
        # The texts our pipeline embeds, from an untimed pass with the fast fake embedder.
        with tempfile.TemporaryDirectory(dir=work) as folder:
            texts = run_ours(path, FakeEmbedder(), Path(folder))["texts"]
        # Rotate the order slice by slice, so no pipeline always runs in another's wake.
        order = ["naive", "ours", "bare"][i % 3:] + ["naive", "ours", "bare"][:i % 3]
        row["order"] = order
        for name in order:
            with tempfile.TemporaryDirectory(dir=work) as folder:
                if name == "naive":
                    row[name] = run_naive(path, naive_embedding, Path(folder))
                elif name == "ours":
                    row[name] = run_ours(path, ours_embedder, Path(folder))
                else:
                    row[name] = run_bare(texts, ours_embedder)
            row[name].pop("texts", None)
        for name in ("naive", "ours", "bare"):
            row[name]["chars_per_s"] = round(slice_chars / row[name]["seconds"], 1)
        row["speedup_vs_naive"] = round(row["naive"]["seconds"] / row["ours"]["seconds"], 3)
        row["over_bare_encoder"] = round(row["ours"]["seconds"] / row["bare"]["seconds"] - 1, 3)
        runs.append(row)
        print(f"  ingest slice {i}: naive {row['naive']['chars_per_s']:.0f} chars/s, ours "
              f"{row['ours']['chars_per_s']:.0f}, bare encoder {row['bare']['chars_per_s']:.0f}",
              flush=True)

    totals: dict[str, Any] = {}
    for name in ("naive", "ours", "bare"):
        seconds = sum(r[name]["seconds"] for r in runs)
        cpu = sum(r[name]["cpu_seconds"] for r in runs)
        chunks = sum(r[name]["chunks"] for r in runs)
        totals[name] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                        "chunks": chunks, "chars_per_s": round(chars / seconds, 1),
                        "chars_per_cpu_s": round(chars / cpu, 1),
                        "chunks_per_s": round(chunks / seconds, 1)}
        if name != "bare":
            encoder = sum(r[name]["encoder_seconds"] for r in runs)
            totals[name]["encoder_seconds"] = round(encoder, 2)
            totals[name]["over_own_encoder"] = round(seconds / encoder - 1, 3)
    return {
        "corpus": {"articles": n_articles, "chars": chars, "bytes": corpus.stat().st_size,
                   "slices": parts, "made_by": "bench.corpus.write_corpus (seed 7)"},
        "totals": totals,
        "speedup_vs_naive": round(totals["ours"]["chars_per_s"] / totals["naive"]["chars_per_s"],
                                  3),
        "over_bare_encoder": round(totals["ours"]["seconds"] / totals["bare"]["seconds"] - 1, 3),
        "cpu_speedup_vs_naive": round(totals["naive"]["cpu_seconds"]
                                      / totals["ours"]["cpu_seconds"], 3),
        "cpu_over_bare_encoder": round(totals["ours"]["cpu_seconds"]
                                       / totals["bare"]["cpu_seconds"] - 1, 3),
        "median_slice_speedup_vs_naive": statistics.median(r["speedup_vs_naive"] for r in runs),
        "median_slice_over_bare_encoder": statistics.median(r["over_bare_encoder"] for r in runs),
        "slices": runs,
        "goal": {"speedup_vs_naive": ">= 1.5", "over_bare_encoder": "<= 0.20"},
    }
