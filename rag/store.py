"""Opening the Chroma store, embedded or client/server, always with our own embedding function."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rag.embeddings import Embedder
from rag.errors import StoreLocked, StoreUnavailable
from rag.settings import Settings

log = logging.getLogger(__name__)

GENERATION_ID = "__generation__"
DIRTY_PREFIX = "__dirty__"  # ingest runs' markers; also the one marker older versions wrote
PAGE = 5000  # records per Chroma read when paging through a whole collection


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as stored: its id, text (when asked for) and metadata."""

    id: str
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def _chunk_number(chunk_id: str) -> int:
    """The position of a chunk in its article ("<article id>:<n>")."""
    tail = chunk_id.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def _chroma_embedding_function(embedder: Embedder) -> Any:
    """Adapt an Embedder to Chroma's EmbeddingFunction so Chroma never loads its own model."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class _Adapter(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's name
            return list(embedder.embed(list(input)))

        @staticmethod
        def name() -> str:
            return "rag-embedder"

        def get_config(self) -> dict[str, Any]:
            return {"model": embedder.name}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> _Adapter:  # pragma: no cover
            raise NotImplementedError("the rag package passes its embedder explicitly")

    return _Adapter()


class _ConstantEmbedding:
    """The manifest collection stores no vectors worth searching: one constant dimension."""

    @staticmethod
    def wrap() -> Any:
        from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

        class _Constant(EmbeddingFunction[Documents]):
            def __init__(self) -> None:
                pass

            def __call__(self, input: Documents) -> Embeddings:  # noqa: A002
                import numpy as np

                return [np.ones(1, dtype=np.float32) for _ in input]

            @staticmethod
            def name() -> str:
                return "rag-constant"

            def get_config(self) -> dict[str, Any]:
                return {}

            @staticmethod
            def build_from_config(config: dict[str, Any]) -> _Constant:  # pragma: no cover
                return _Constant()

        return _Constant()


def open_client(settings: Settings) -> Any:
    """A Chroma client for the configured mode; a clear error when it cannot be had."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_mode == "http":
            client = chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
            client.heartbeat()
            return client
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
    except Exception as exc:
        where = (
            f"the Chroma server at {settings.chroma_host}:{settings.chroma_port}"
            if settings.chroma_mode == "http"
            else f"the Chroma store in {settings.chroma_path}"
        )
        raise StoreUnavailable(f"Could not open {where}: {exc.__class__.__name__}.") from exc


class Store:
    """The chunk collection and its manifest of sources, in one Chroma database.

    Readers ask the methods below. The two collections (``chunks``, ``sources``) are open to
    the ingest pipeline, the store's one writer, which keeps them consistent.
    """

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.client = open_client(settings)
        try:
            self.chunks = self.client.get_or_create_collection(
                settings.collection,
                embedding_function=_chroma_embedding_function(embedder),
                metadata={"hnsw:space": "cosine", "embedder": embedder.name},
            )
            self.sources = self.client.get_or_create_collection(
                f"{settings.collection}__sources",
                embedding_function=_ConstantEmbedding.wrap(),
            )
        except Exception as exc:
            raise StoreUnavailable(
                f"Could not open the collection '{settings.collection}': {exc}"
            ) from exc
        stored = (self.chunks.metadata or {}).get("embedder")
        if stored and stored != embedder.name and self.chunks.count():
            log.warning("the index was built with %s, not %s: searches are poor until "
                        "`rag ingest` embeds it again", stored, embedder.name)

    # -- reading ----------------------------------------------------------------------------
    def count(self) -> int:
        """How many chunks are stored."""
        return int(self.chunks.count())

    def chunk_pages(self, *, text: bool = False) -> Iterator[list[StoredChunk]]:
        """Every stored chunk with its metadata (and text), a page at a time."""
        include = ["documents", "metadatas"] if text else ["metadatas"]
        offset = 0
        while True:
            got = self.chunks.get(include=include, limit=PAGE, offset=offset)
            docs = got.get("documents") or [""] * len(got["ids"])
            yield [StoredChunk(cid, doc or "", dict(meta or {})) for cid, doc, meta in
                   zip(got["ids"], docs, got["metadatas"] or [], strict=True)]
            if len(got["ids"]) < PAGE:
                return
            offset += PAGE

    def all_chunks(self, *, text: bool = True) -> list[StoredChunk]:
        """Every stored chunk, in one list."""
        return [chunk for page in self.chunk_pages(text=text) for chunk in page]

    def manifest(self) -> dict[str, dict[str, Any]]:
        """Every tracked source (a file, or a record in one) by key: its path and article id."""
        out: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            got = self.sources.get(include=["metadatas"], limit=PAGE, offset=offset)
            for rid, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
                if rid != GENERATION_ID and not rid.startswith(DIRTY_PREFIX) and meta:
                    out[str(meta["key"])] = dict(meta)
            if len(got["ids"]) < PAGE:
                return out
            offset += PAGE

    def stats(self) -> dict[str, int]:
        """How much is indexed: distinct articles and chunks."""
        articles = {str(m["article_id"]) for m in self.manifest().values() if "article_id" in m}
        return {"articles": len(articles), "chunks": self.count()}

    def records(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """The stored chunks of ``ids`` (text and metadata), by id; missing ids are left out."""
        if not ids:
            return {}
        got = self.chunks.get(ids=list(ids), include=["documents", "metadatas"])
        return {cid: StoredChunk(cid, doc or "", dict(meta or {})) for cid, doc, meta in
                zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)}

    def article_text(self, article_id: str) -> str:
        """Every stored chunk of one article, joined in the article's order ("" if none)."""
        got = self.chunks.get(where={"article_id": article_id}, include=["documents"])
        ids, docs = got["ids"], got["documents"] or []
        return "\n".join(doc or "" for _, doc in sorted(
            zip(ids, docs, strict=True), key=lambda item: _chunk_number(item[0])))

    def documents(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored text of each chunk of ``ids``, by id."""
        return {cid: chunk.text for cid, chunk in self.records(ids).items()}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored embedding of each chunk of ``ids``, by id."""
        if not ids:
            return {}
        got = self.chunks.get(ids=list(ids), include=["embeddings"])
        return {cid: np.asarray(vector, dtype=np.float32)
                for cid, vector in zip(got["ids"], got["embeddings"], strict=True)}

    def nearest(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None, *,
                records: bool = False) -> list[tuple[StoredChunk, float]]:
        """The ``n`` chunks nearest to ``vector`` under ``where``, with cosine similarities.

        Without ``records`` only ids come back (no text or metadata is read).
        """
        count = self.count()
        if count == 0:
            return []
        include: list[Any] = ["documents", "metadatas", "distances"] if records \
            else ["distances"]
        got = self.chunks.query(query_embeddings=[vector], n_results=min(n, count), where=where,
                                include=include)
        ids = got["ids"][0]
        docs = (got.get("documents") or [[""] * len(ids)])[0]
        metas = (got.get("metadatas") or [[{}] * len(ids)])[0]
        return [(StoredChunk(cid, doc or "", dict(meta or {})), 1.0 - float(dist))
                for cid, doc, meta, dist in zip(ids, docs, metas, (got["distances"] or [[]])[0],
                                                strict=True)]

    # -- change stamps --------------------------------------------------------------------------
    def generation(self) -> str:
        """A stamp that changes whenever the indexed content changes (for derived caches)."""
        got = self.sources.get(ids=[GENERATION_ID], include=["metadatas"])
        metas = got.get("metadatas") or []
        if metas and metas[0]:
            return str(metas[0].get("value", ""))
        return ""

    def bump_generation(self) -> None:
        """Mark the content as changed."""
        self.sources.upsert(
            ids=[GENERATION_ID], documents=[""], metadatas=[{"value": uuid.uuid4().hex}]
        )


_claimed: dict[str, tuple[int, threading.Lock]] = {}
_claimed_lock = threading.Lock()


def _lock_path(settings: Settings) -> str:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return str((settings.data_dir / "write.lock").resolve())


def _flock(path: str, settings: Settings) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StoreLocked(
            f"Another process (an ingest, or a running chat or API server) is using "
            f"{settings.data_dir}, and only one process may write it: add articles through the "
            "running server instead (`rag ingest --server http://127.0.0.1:8000 PATH`, or the "
            "page's upload), or stop it first."
        ) from exc
    return fd


def claim_store(settings: Settings) -> None:
    """Make this long-running process the embedded store's only writer for its whole life.

    Embedded Chroma caches its index in each process: a server that keeps reading while
    another process writes sees deleted chunks and then fails. So servers claim the store and
    ingest through themselves; a `rag ingest` from outside gets StoreLocked instead.
    """
    if settings.chroma_mode != "embedded":
        return
    path = _lock_path(settings)
    with _claimed_lock:
        if path not in _claimed:
            _claimed[path] = (_flock(path, settings), threading.Lock())


@contextmanager
def write_lock(settings: Settings) -> Iterator[None]:
    """Only one process writes an embedded store; on a server, runs' markers keep them apart.

    With a Chroma server several processes may ingest at once: each run's ``RunMarker`` tells
    the others that its unrecorded chunks are in flight, not a crash's leftovers.
    """
    if settings.chroma_mode != "embedded":
        yield
        return
    path = _lock_path(settings)
    with _claimed_lock:
        claimed = _claimed.get(path)
    if claimed is not None:  # this process owns the store: its own writers take turns
        with claimed[1]:
            yield
        return
    fd = _flock(path, settings)
    try:
        yield
    finally:
        os.close(fd)


# -- dirty markers: one per ingest run --------------------------------------------------------
MarkerState = Literal["running", "sweeping", "failed"]


@dataclass(frozen=True)
class Marker:
    """Another run's dirty marker as read from the store."""

    id: str
    state: str
    dead: bool


class RunMarker:
    """One ingest run's dirty marker: in the manifest collection while the run may leave orphans.

    Each run writes its own (``__dirty__:<uuid>``) before it stores anything and deletes only
    that one when it finishes, so runs in several processes on one Chroma server never take
    each other's in-flight chunks for a crash's leftovers, and one run ending never hides
    another's crash. A marker is dead when its run failed, its heartbeat is older than
    ``ingest_lease_seconds``, it is the single marker older versions wrote, or (embedded Chroma,
    whose file lock admits one writer) it is simply not this run's.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.id = f"{DIRTY_PREFIX}:{uuid.uuid4().hex}"
        self.lease = store.settings.ingest_lease_seconds
        self.exclusive = store.settings.chroma_mode == "embedded"
        self._beaten = 0.0
        self.beat()

    def beat(self, state: MarkerState = "running", *, force: bool = True) -> None:
        """Write the marker with a fresh heartbeat (unless ``force`` is off and one is recent)."""
        now = time.time()
        if not force and now - self._beaten < self.lease / 10:
            return
        self.store.sources.upsert(ids=[self.id], documents=[""], metadatas=[{
            "kind": "dirty", "state": state, "heartbeat": now,
            "host": socket.gethostname(), "pid": os.getpid(),
        }])
        self._beaten = now

    def others(self) -> list[Marker]:
        """Every other run's marker, each judged dead or alive now."""
        now = time.time()
        got = self.store.sources.get(where={"kind": "dirty"}, include=["metadatas"])
        out = []
        for mid, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
            if mid == self.id or not meta:
                continue
            state = str(meta.get("state", "running"))
            beat = float(meta.get("heartbeat", 0.0))  # type: ignore[arg-type]
            dead = self.exclusive or state == "failed" or now - beat > self.lease
            out.append(Marker(mid, state, dead))
        if self.store.sources.get(ids=[DIRTY_PREFIX], include=[])["ids"]:
            out.append(Marker(DIRTY_PREFIX, "legacy", True))
        return out

    def drop(self, ids: list[str]) -> None:
        """Delete other runs' markers (dead ones, after their leftovers were swept)."""
        if ids:
            self.store.sources.delete(ids=ids)

    def remove(self) -> None:
        """Delete this run's marker: it finished cleanly and leaves nothing to sweep."""
        self.store.sources.delete(ids=[self.id])

    def fail(self) -> None:
        """Mark this run dead at once (it stops part-way), so the next run sweeps; best effort."""
        try:
            self.beat("failed")
        except Exception:  # the store may be what failed; the lease then marks it dead
            log.warning("could not mark the failed ingest run %s", self.id, exc_info=True)
