"""Several processes share one Chroma server (issue 8).

First the dirty markers that keep concurrent ingest runs apart, in this process against a
real ``chroma run`` (fake embedder: fast). Then two real ``rag serve`` processes (A and B),
each with its own data directory, the real embedding model and the extractive answerer,
sharing one collection on that server; every request is HTTP on 127.0.0.1. Their articles
are RGB news snippets from ``shared/eval/rgb`` (one chunk each) and the seed article.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import free_port, log_tail, stop, wait_ready

from ingest.pipeline import Ingestor, _Run
from rag.embeddings import FakeEmbedder
from rag.settings import Settings
from rag.store import DIRTY_PREFIX, RunMarker, Store
from tests.conftest import SEED_QUESTION, SEEDS, SHARED
from tests.test_ingest_crash import article_text, assert_whole, clean_run, read_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

RGB = SHARED / "eval" / "rgb"
SEED_FILE = next(SEEDS.glob("*.txt"))
STARTUP_S = 120  # two processes loading torch and the model on a busy 2-core machine
POLL_S = 30  # how long B may take to notice what A ingested


@dataclass
class Api:
    """One ``rag serve`` process: where it listens and where it keeps its state."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)

    def uploads(self) -> Path:
        return (self.data_dir / "uploads").resolve()

    def log_tail(self) -> str:
        return log_tail(self.log)


@dataclass
class Shared:
    """The Chroma server's port, the collection, and the two API processes on it."""

    chroma_port: int
    collection: str
    a: Api
    b: Api


def _env(data_dir: Path, chroma_port: int, collection: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(data_dir), RAG_CHROMA_MODE="http",
               RAG_CHROMA_HOST="127.0.0.1", RAG_CHROMA_PORT=str(chroma_port),
               RAG_COLLECTION=collection, RAG_GENERATOR="extractive", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def _start(name: str, root: Path, chroma_port: int, collection: str) -> Api:
    data_dir = root / f"api-{name}"
    data_dir.mkdir(parents=True)
    port = free_port()
    log = root / f"api-{name}.log"
    rag = Path(sys.executable).parent / "rag"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(rag), "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--no-chat"], env=_env(data_dir, chroma_port, collection),
                                cwd=root, stdout=out, stderr=subprocess.STDOUT)
    return Api(name, proc, f"http://127.0.0.1:{port}", data_dir, log)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory,
           chroma_server: tuple[str, int]) -> Iterator[Shared]:
    """Two API processes on the session's Chroma server, for this module; always stopped."""
    root = tmp_path_factory.mktemp("shared-chroma")
    chroma_port = chroma_server[1]
    collection = f"shared{time.monotonic_ns()}"
    apis: list[Api] = []
    try:
        for name in ("a", "b"):  # both start before either is waited for: they load in parallel
            apis.append(_start(name, root, chroma_port, collection))
        for api in apis:
            wait_ready(api.proc, f"{api.url}/health", api.log, timeout=STARTUP_S)
        yield Shared(chroma_port, collection, apis[0], apis[1])
    finally:
        for api in apis:
            stop(api.proc)


# -- helpers -----------------------------------------------------------------------------------
def _store_state(shared: Shared) -> dict[str, Any]:
    """Every chunk and source on the server, read by a fresh client in this process."""
    settings = Settings(chroma_mode="http", chroma_host="127.0.0.1",
                        chroma_port=shared.chroma_port, collection=shared.collection,
                        embedding_backend="fake")
    state: dict[str, Any] = read_store(Store(settings, FakeEmbedder()), -1, True)
    return state


def _records() -> list[dict[str, Any]]:
    """RGB snippets with distinct texts (a text in two files would be stored once)."""
    seen: set[str] = set()
    out = []
    for line in (RGB / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["text"] not in seen:
            seen.add(row["text"])
            out.append(row)
    return out


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")


def _ingest(api: Api, http: httpx.Client, name: str, body: bytes) -> dict[str, Any]:
    response = http.post("/ingest", files=[("files", (name, body, "application/jsonl"))])
    assert response.status_code == 200, f"{response.text}\n{api.log_tail()}"
    report: dict[str, Any] = response.json()
    return report


def _ask(api: Api, http: httpx.Client, question: str) -> dict[str, Any]:
    response = http.post("/ask", json={"question": question})
    assert response.status_code == 200, f"{response.text}\n{api.log_tail()}"
    answer: dict[str, Any] = response.json()
    return answer


def _cites_seed(answer: dict[str, Any], path: Path) -> bool:
    # The servers run in the folder above their data directories (ROOT/api-x/uploads/FILE),
    # and a citation shows a file relative to the server's working directory.
    shown = str(path.relative_to(path.parents[2]))
    return not answer["refused"] and any(
        c["source"] == shown and "Azerbaijan" in c["passage"] for c in answer["citations"])


# -- dirty markers, in this process -------------------------------------------------------------
@pytest.fixture(params=["embedded", "http"])
def fake(request: pytest.FixtureRequest, data_dir: Path) -> Settings:
    """Fake embedder; embedded Chroma, or a fresh collection on the session's chroma server."""
    if request.param == "embedded":
        return Settings(data_dir=data_dir, embedding_backend="fake")
    return _on_server(request, data_dir)


@pytest.fixture
def server(request: pytest.FixtureRequest, data_dir: Path) -> Settings:
    """Fake embedder, a fresh collection on the session's chroma server."""
    return _on_server(request, data_dir)


def _on_server(request: pytest.FixtureRequest, data_dir: Path) -> Settings:
    host, port = request.getfixturevalue("chroma_server")
    return Settings(data_dir=data_dir, embedding_backend="fake", chroma_mode="http",
                    chroma_host=host, chroma_port=port, collection=f"m{time.monotonic_ns()}")


def _articles(folder: Path, seeds: range) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in seeds:
        path = folder / f"a{i}.txt"
        path.write_text(article_text(i), encoding="utf-8")
        paths.append(path.resolve())
    return paths


def _leave_orphans(ingestor: Ingestor, paths: list[Path]) -> set[str]:
    """What a run killed between storing chunks and recording them leaves: unrecorded chunks."""
    ingestor.run(paths)
    manifest = ingestor._manifest()
    keys = [key for key, meta in manifest.items() if Path(str(meta["path"])) in set(paths)]
    ingestor._forget(keys)
    return {str(manifest[key]["article_id"]) for key in keys}


def _plant(store: Store, mid: str, state: str, age: float) -> None:
    """Another run's marker, written as RunMarker writes it, ``age`` seconds old."""
    store.sources.upsert(ids=[mid], documents=[""], metadatas=[{
        "kind": "dirty", "state": state, "heartbeat": time.time() - age, "host": "elsewhere",
        "pid": 1}])


def _markers(store: Store) -> set[str]:
    return {i for i in store.sources.get(include=[])["ids"] if i.startswith(DIRTY_PREFIX)}


def _article_ids(store: Store) -> set[str]:
    return {str(m["article_id"]) for m in store.chunks.get(include=["metadatas"])["metadatas"]
            or [] if m}


def test_an_old_single_marker_store_still_recovers(fake: Settings, tmp_path: Path) -> None:
    ingestor = Ingestor(fake, FakeEmbedder())
    ingestor.run(_articles(tmp_path / "kept", range(3)))
    orphans = _leave_orphans(ingestor, _articles(tmp_path / "lost", range(10, 13)))
    # What older versions wrote when they started a run, and left behind when killed.
    ingestor.store.sources.upsert(ids=[DIRTY_PREFIX], documents=[""], metadatas=[{"v": 1}])
    assert len(orphans) == 3 and orphans <= _article_ids(ingestor.store)

    report = ingestor.run(_articles(tmp_path / "new", range(20, 22)))
    assert report.added == 2
    assert not orphans & _article_ids(ingestor.store)
    assert len(_article_ids(ingestor.store)) == 5
    assert _markers(ingestor.store) == set()


def test_a_run_sweeps_a_dead_run_s_leftovers_but_not_a_live_run_s(server: Settings,
                                                                   tmp_path: Path) -> None:
    ingestor = Ingestor(server, FakeEmbedder())
    in_flight = _leave_orphans(ingestor, _articles(tmp_path / "flight", range(3)))
    live, stale = f"{DIRTY_PREFIX}:live", f"{DIRTY_PREFIX}:stale"
    _plant(ingestor.store, live, "running", age=5)
    _plant(ingestor.store, stale, "running", age=server.ingest_lease_seconds + 5)

    ingestor.run(_articles(tmp_path / "one", range(10, 12)))
    # A live run is writing: its unrecorded chunks stay, and so does the dead run's marker.
    assert len(in_flight) == 3 and in_flight <= _article_ids(ingestor.store)
    assert _markers(ingestor.store) == {live, stale}

    # The live run ends without recording them (it failed): now they are swept.
    _plant(ingestor.store, live, "failed", age=1)
    ingestor.run(_articles(tmp_path / "two", range(20, 22)))
    assert not in_flight & _article_ids(ingestor.store)
    assert len(_article_ids(ingestor.store)) == 4
    assert _markers(ingestor.store) == set()


def test_a_failed_run_marks_itself_dead_at_once(server: Settings, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ingestor = Ingestor(server, FakeEmbedder())
    paths = _articles(tmp_path / "a", range(4))

    def broken(self: _Run, *args: Any, **kwargs: Any) -> None:
        raise OSError("the disk went away")

    with monkeypatch.context() as patch:
        patch.setattr(_Run, "finish", broken)
        with pytest.raises(OSError):
            ingestor.run(paths)
    (failed,) = _markers(ingestor.store)
    meta = ingestor.store.sources.get(ids=[failed], include=["metadatas"])["metadatas"][0]
    assert meta["state"] == "failed"
    assert _article_ids(ingestor.store)  # chunks stored, never recorded

    report = ingestor.run(paths)  # long before the lease is over
    assert report.added == 4
    assert _markers(ingestor.store) == set()
    assert _article_ids(ingestor.store) == {str(m["article_id"])
                                            for m in ingestor._manifest().values()}


def test_a_run_waits_while_another_sweeps(server: Settings, tmp_path: Path) -> None:
    ingestor = Ingestor(server, FakeEmbedder())
    sweeper = f"{DIRTY_PREFIX}:sweeper"
    _plant(ingestor.store, sweeper, "sweeping", age=0)
    paths = _articles(tmp_path / "a", range(3))
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(ingestor.run, paths)
        deadline = time.monotonic() + 30
        while len(_markers(ingestor.store)) < 2:  # the run has registered ...
            assert time.monotonic() < deadline and not job.done()
            time.sleep(0.02)
        for _ in range(20):  # ... and stores nothing while the sweep goes on
            assert not _article_ids(ingestor.store)
            assert not job.done()
            time.sleep(0.05)
        ingestor.store.sources.delete(ids=[sweeper])
        assert job.result(timeout=60).added == 3
    assert len(_article_ids(ingestor.store)) == 3
    assert _markers(ingestor.store) == set()


def test_a_release_keeps_an_article_another_process_has_started_citing(
        server: Settings, tmp_path: Path) -> None:
    first = tmp_path / "first.txt"
    first.write_text(article_text(1), encoding="utf-8")
    one = Ingestor(server, FakeEmbedder())
    one.run([first])
    # Process two's run reads the manifest (the text is cited by one file) ...
    two = Ingestor(server, FakeEmbedder(), Store(server, FakeEmbedder()))
    run = _Run(two, two._manifest(), RunMarker(two.store))
    # ... process one then stores a copy of the text under another name ...
    copy = tmp_path / "copy.txt"
    copy.write_text(article_text(1), encoding="utf-8")
    assert one.run([copy]).unchanged == 1
    # ... and process two's run edits the first file, releasing the old text.
    first.write_text(article_text(1, version=1), encoding="utf-8")
    run.file(first.resolve())
    run.flush()
    assert run.report.updated == 1
    cited = {str(m["article_id"]) for m in one._manifest().values()}
    assert len(cited) == 2
    assert cited == _article_ids(one.store)  # the copy's article kept its chunks


# -- two API processes ----------------------------------------------------------------------------
def test_an_article_ingested_through_a_is_answered_and_cited_by_b(shared: Shared) -> None:
    a, b = shared.a, shared.b
    with a.client() as http_a, b.client() as http_b:
        before = _ask(b, http_b, SEED_QUESTION)  # B has built its BM25 index without it
        assert not _cites_seed(before, a.uploads() / SEED_FILE.name)

        report = _ingest(a, http_a, SEED_FILE.name, SEED_FILE.read_bytes())
        assert (report["added"], report["skipped"]) == (1, 0)
        assert report["chunks_added"] > 1

        deadline = time.monotonic() + POLL_S
        while True:
            answer = _ask(b, http_b, SEED_QUESTION)
            if _cites_seed(answer, a.uploads() / SEED_FILE.name):
                break
            assert time.monotonic() < deadline, f"B never cited A's article: {answer}"
            time.sleep(0.5)

    assert "Azerbaijan" in answer["text"]
    chunks = _store_state(shared)["chunks"]
    for citation in answer["citations"]:
        assert chunks[citation["chunk_id"]]["doc"] == citation["passage"]


def _chunk_collection(shared: Shared) -> Any:
    """The shared chunk collection, opened by this process (to watch what is stored)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host="127.0.0.1", port=shared.chroma_port,
                                 settings=ChromaSettings(anonymized_telemetry=False))
    return client.get_collection(shared.collection)


def test_concurrent_ingests_through_a_and_b_lose_nothing(shared: Shared,
                                                        tmp_path: Path) -> None:
    """Each process ingests its own files while the other is storing: both end fully stored.

    The second ingest starts once the first has stored chunks it has not yet recorded in the
    manifest, so it meets a run in flight; if it took those chunks for a crash's leftovers
    it would delete them. Then the same the other way round.
    """
    rows = _records()[:160]
    size = len(rows) // 4
    parts = [rows[i * size:(i + 1) * size] for i in range(4)]
    a, b = shared.a, shared.b
    rounds = [((a, "a0.jsonl", parts[0]), (b, "b0.jsonl", parts[1])),
              ((b, "b1.jsonl", parts[2]), (a, "a1.jsonl", parts[3]))]
    chunks = _chunk_collection(shared)

    def ingest(api: Api, name: str, part: list[dict[str, Any]]) -> dict[str, Any]:
        with api.client() as http:
            return _ingest(api, http, name, _jsonl(part))

    reports = []
    with ThreadPoolExecutor(2) as pool:
        for (first, first_name, first_rows), (second, second_name, second_rows) in rounds:
            urls = [row["url"] for row in first_rows]
            leader = pool.submit(ingest, first, first_name, first_rows)
            deadline = time.monotonic() + 120
            while not chunks.get(where={"source": {"$in": urls}}, limit=1, include=[])["ids"]:
                assert not leader.done(), f"{first_name} finished before it was seen storing"
                assert time.monotonic() < deadline, "the first ingest stored nothing"
                time.sleep(0.02)
            follower = pool.submit(ingest, second, second_name, second_rows)
            reports += [leader.result(timeout=240), follower.result(timeout=240)]
    assert [(r["added"], r["skipped"]) for r in reports] == [(size, 0)] * 4

    # The reference: one clean run over the same files (as saved by each process) in a fresh
    # embedded store. Chunk ids and texts do not depend on the embedder.
    paths = [api.uploads() / name for pair in rounds for api, name, _ in pair]
    _, reference = clean_run(tmp_path / "clean", paths)
    assert len(reference["sources"]) == len(rows)

    state = _store_state(shared)
    assert_whole(state)
    mine = {str(p) for p in paths}
    sources = {k: v for k, v in state["sources"].items() if v["path"] in mine}
    urls = {row["url"] for row in rows}
    stored = {k: v for k, v in state["chunks"].items() if v["source"] in urls}
    assert sources == reference["sources"]
    missing = set(reference["chunks"]) - set(stored)
    assert not missing, f"{len(missing)} of {len(reference['chunks'])} chunks were lost"
    assert stored == reference["chunks"]
    # No source anywhere points at an article without chunks, and no chunk is an orphan.
    live = {str(m["article_id"]) for m in state["sources"].values()}
    assert live == {str(c["article_id"]) for c in state["chunks"].values()}


def test_questions_to_a_and_b_during_an_ingest_get_answers_that_cite_stored_chunks(
        shared: Shared) -> None:
    rows = _records()[160:240]
    half = len(rows) // 2
    questions = [json.loads(line) for line in
                 (RGB / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = {row["id"] for row in rows}
    asked = [q["question"] for q in questions if set(q["gold_ids"]) & texts][:6]
    asked += [SEED_QUESTION, "Who acquired WhatsApp?"]
    done = threading.Event()
    answers: list[dict[str, Any]] = []

    def ingest(api: Api, part: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            with api.client() as http:
                return _ingest(api, http, f"during-{api.name}.jsonl", _jsonl(part))
        finally:
            done.set()

    def ask_while_ingesting(api: Api) -> None:
        with api.client() as http:
            for i in range(40):  # bounded: a few rounds of questions while the ingest runs
                answers.append(_ask(api, http, asked[i % len(asked)]))
                if done.is_set() and i >= len(asked):
                    return

    with ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(ingest, shared.a, rows[:half]), pool.submit(ingest, shared.b,
                                                                        rows[half:]),
                pool.submit(ask_while_ingesting, shared.a),
                pool.submit(ask_while_ingesting, shared.b)]
        for job in jobs:
            job.result(timeout=240)

    assert len(answers) >= 2 * len(asked)
    chunks = _store_state(shared)["chunks"]
    cited = [c for answer in answers for c in answer["citations"]]
    assert cited, "no answer cited anything"
    for citation in cited:
        stored = chunks.get(citation["chunk_id"])
        assert stored is not None, f"{citation['chunk_id']} is not stored"
        assert stored["doc"] == citation["passage"]
        assert stored["article_id"] == citation["article_id"]
