"""The ingest run: files -> articles -> chunks -> embeddings -> Chroma, idempotently."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.chunking import chunk_text, embedded_text
from ingest.fetch import is_url, load_url
from ingest.fingerprint import signature
from ingest.loaders import SUPPORTED_SUFFIXES, Article, Loaded, Skip, load_file
from ingest.reembed import reembed
from rag.embeddings import Embedder, make_embedder
from rag.records import IngestReport
from rag.settings import Settings
from rag.store import RunMarker, Store, write_lock

log = logging.getLogger(__name__)

_SWEEP_WAIT_S = 0.5


def article_id(text: str) -> str:
    """Content address of an article: the same text from two files is one article."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def site_of(source: str) -> str:
    """The site of a URL, or the folder of a path: what a source filter can also match."""
    if "://" in source:
        return source.split("://", 1)[1].split("/", 1)[0].lower()
    return str(Path(source).parent)


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], dict[str, str]]:
    """Files under ``paths`` (recursively), and reasons for paths that cannot be read.

    URLs are the ingest run's to fetch (``urls_in``); one that reaches here is reported.
    """
    files: list[Path] = []
    problems: dict[str, str] = {}
    for raw in paths:
        if is_url(raw):
            problems[str(raw)] = "a URL is fetched only by an ingest into the local index"
            continue
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    child = Path(root) / name
                    if child.suffix.lower() in SUPPORTED_SUFFIXES:
                        files.append(child.resolve())
                    else:
                        problems[str(child)] = f"unsupported file type '{child.suffix or name}'"
        elif path.is_file():
            files.append(path.resolve())
        else:
            problems[str(path)] = "no such file or folder"
    return files, problems


def urls_in(paths: Iterable[str | Path]) -> tuple[list[str], list[str | Path]]:
    """The http(s) URLs among ingest arguments, and the paths: each kept in its order."""
    urls: list[str] = []
    rest: list[str | Path] = []
    for raw in paths:
        if is_url(raw):
            urls.append(str(raw))
        else:
            rest.append(raw)
    return urls, rest


@dataclass
class _Pending:
    article: Article
    aid: str
    old: str | None


class Ingestor:
    """Keeps the chunk collection equal to the articles in the files it is shown."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 store: Store | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or make_embedder(settings)
        self.store = store or Store(settings, self.embedder)

    # -- manifest ---------------------------------------------------------------------------
    def _manifest(self) -> dict[str, dict[str, Any]]:
        """Key -> {article_id, path} for every tracked source."""
        return self.store.manifest()

    def _sweep_orphans(self, live: set[str], marker: RunMarker | None = None) -> int:
        """Delete chunks of articles no source refers to (left by an interrupted run)."""
        orphans: set[str] = set()
        for page in self.store.chunk_pages():
            if marker is not None:
                marker.beat("sweeping", force=False)
            orphans.update(str(c.metadata["article_id"]) for c in page
                           if c.metadata and c.metadata.get("article_id") not in live)
        for aid in orphans:
            self.store.chunks.delete(where={"article_id": aid})
        return len(orphans)

    def _has_chunks(self, aid: str) -> bool:
        return bool(self.store.chunks.get(ids=[f"{aid}:0"], include=[])["ids"])

    def _cited(self, aid: str) -> bool:
        """Whether any source in the store refers to ``aid`` (another process may have one)."""
        return bool(self.store.sources.get(where={"article_id": aid}, limit=1,
                                           include=[])["ids"])

    def _recover(self, marker: RunMarker) -> None:
        """Sweep what dead runs left behind, but only while no other run is writing.

        Registering first and then reading the markers means that of two runs starting
        together at least one sees the other. A sweeper announces itself ("sweeping") and
        reads again: a run that registered meanwhile makes it back off, and a run that
        registers later sees it and waits here until the sweep is over.
        """
        while True:
            others = marker.others()
            sweepers = [m for m in others if m.state == "sweeping" and not m.dead]
            if not sweepers:
                break
            marker.beat(force=False)
            time.sleep(_SWEEP_WAIT_S)
        dead = [m for m in others if m.dead]
        if not dead:
            return
        if any(not m.dead for m in others):
            log.info("an interrupted ingest left a marker; sweeping waits until no other "
                     "run is writing")
            return
        marker.beat("sweeping")
        others = marker.others()
        if not any(not m.dead for m in others):
            # Nobody else writes now and new runs wait: the manifest read now is complete.
            live = {str(meta["article_id"]) for meta in self._manifest().values()}
            swept = self._sweep_orphans(live, marker)
            marker.drop([m.id for m in others if m.dead])
            log.info("recovered from an interrupted ingest: %d orphaned articles", swept)
        marker.beat("running")

    # -- writing ----------------------------------------------------------------------------
    def _embed_and_add(self, batch: Sequence[_Pending]) -> int:
        """Chunk, embed and add the articles of ``batch``; each article in one add call."""
        ids: list[str] = []
        docs: list[str] = []
        embed_texts: list[str] = []
        metas: list[dict[str, Any]] = []
        bounds: list[tuple[int, int]] = []
        for item in batch:
            art = item.article
            chunks = chunk_text(art.text, self.settings.chunk_chars,
                                self.settings.chunk_overlap_sentences)
            first = len(ids)
            for chunk in chunks:
                ids.append(f"{item.aid}:{chunk.index}")
                docs.append(chunk.text)
                embed_texts.append(embedded_text(art.headline, chunk.text))
                meta: dict[str, Any] = {
                    "article_id": item.aid, "headline": art.headline, "source": art.source,
                    "site": site_of(art.source), "index": chunk.index, "start": chunk.start,
                    "end": chunk.end, "n_chunks": len(chunks),
                }
                if chunk.index == 0:  # what tells syndicated copies of one story apart
                    meta["minhash"] = signature(art.text)
                    meta["chars"] = len(art.text)
                    if art.outlet:
                        meta["outlet"] = art.outlet
                if art.published:
                    meta["published"] = art.published.isoformat()
                    meta["published_day"] = int(art.published.strftime("%Y%m%d"))
                metas.append(meta)
            bounds.append((first, len(ids)))
        if not ids:
            return 0
        vectors = self.embedder.embed(embed_texts)
        for first, last in bounds:
            if last > first:
                self.store.chunks.upsert(ids=ids[first:last], documents=docs[first:last],
                                         embeddings=vectors[first:last],
                                         metadatas=metas[first:last])
        return len(ids)

    def _record(self, art: Article, aid: str) -> None:
        self.store.sources.upsert(
            ids=[_key_id(art.key)], documents=[""],
            metadatas=[{"key": art.key, "path": art.path, "article_id": aid,
                        "headline": art.headline, "source": art.source}],
        )

    def _forget(self, keys: Sequence[str]) -> None:
        if keys:
            self.store.sources.delete(ids=[_key_id(k) for k in keys])

    # -- the run ----------------------------------------------------------------------------
    def run(self, paths: Iterable[str | Path], *, prune: bool = False,
            progress: bool = False) -> IngestReport:
        """Ingest ``paths``; with ``prune``, forget articles whose files under ``paths`` are gone.

        Pruning looks only under the given files and folders: articles that came from anywhere
        else (uploads through a server, another folder, another machine sharing a Chroma
        server) are not this run's to judge.
        """
        started = time.perf_counter()
        urls, paths = urls_in(paths)
        files, problems = discover(paths)
        with write_lock(self.settings):
            marker = RunMarker(self.store)  # before anything is stored, and before looking
            try:
                self._recover(marker)
                reembedded = reembed(self.store)
                run = _Run(self, self._manifest(), marker)
                run.report.reembedded = reembedded
                run.changed = run.changed or bool(reembedded)
                for path in _progress(files, progress):
                    run.file(path)
                for url in urls:
                    run.url(url)
                run.flush()
                if prune:
                    run.prune([Path(p).resolve() for p in paths])
                if run.changed:
                    self.store.bump_generation()
            except BaseException:
                marker.fail()
                raise
            marker.remove()
        report = run.report
        report.skipped += len(problems)
        report.skipped_reasons.update(problems)
        report.seconds = time.perf_counter() - started
        return report


class _Run:
    """The state of one ingest run: the manifest as it evolves, pending work, the counts."""

    def __init__(self, ingestor: Ingestor, manifest: dict[str, dict[str, Any]],
                 marker: RunMarker) -> None:
        self.ingestor = ingestor
        self.store = ingestor.store
        self.marker = marker
        self.settings = ingestor.settings
        self.manifest = manifest
        self.refs: dict[str, int] = {}
        for meta in manifest.values():
            self.refs[str(meta["article_id"])] = self.refs.get(str(meta["article_id"]), 0) + 1
        self.report = IngestReport()
        self.changed = False
        self.seen_keys: set[str] = set()
        self.seen_paths: set[str] = set()
        self.pending: list[_Pending] = []
        self.pending_chunks = 0

    def file(self, path: Path) -> None:
        """Load one file and queue its new or changed articles."""
        self.marker.beat(force=False)
        try:
            loaded = load_file(path, self.settings.max_file_bytes)
        except Skip as exc:
            self._skip(str(path), str(exc))
            return
        except OSError as exc:
            self._skip(str(path), f"could not be read ({exc.strerror or exc})")
            return
        self._loaded(str(path), loaded)

    def url(self, url: str) -> None:
        """Fetch one URL and queue its new or changed articles (never pruned later)."""
        self.marker.beat(force=False)
        try:
            loaded = load_url(url, self.settings.max_file_bytes)
        except Skip as exc:
            self._skip(url, str(exc))
            return
        self._loaded(url, loaded)

    def _loaded(self, where: str, loaded: Loaded) -> None:
        self.seen_paths.add(where)
        for problem in loaded.problems:
            self._skip(f"{where} {problem.split(':')[0]}", problem)
        for art in loaded.articles:
            self.article(art)

    def _skip(self, where: str, reason: str) -> None:
        self.report.skipped += 1
        self.report.skipped_reasons[where] = reason

    def article(self, art: Article) -> None:
        """Unchanged, a duplicate of a stored article, or new work to embed."""
        if art.key in self.seen_keys:
            return
        self.seen_keys.add(art.key)
        aid = article_id(art.text)
        old = self.manifest.get(art.key, {}).get("article_id")
        if old == aid:
            self.report.unchanged += 1
            return
        item = _Pending(art, aid, old)
        if self.refs.get(aid) or self.ingestor._has_chunks(aid):
            # Stored already (from another file, or by an interrupted run).
            self.finish(item, duplicate=True)
            return
        if any(p.aid == aid for p in self.pending):
            self.flush()
            self.finish(item, duplicate=True)
            return
        self.pending.append(item)
        self.pending_chunks += len(art.text) // max(self.settings.chunk_chars, 1) + 1
        if self.pending_chunks >= 256:
            self.flush()

    def flush(self) -> None:
        """Embed and store the pending articles, then record them in the manifest."""
        if not self.pending:
            return
        self.marker.beat(force=False)
        self.report.chunks_added += self.ingestor._embed_and_add(self.pending)
        for item in self.pending:
            self.finish(item)
        self.pending.clear()
        self.pending_chunks = 0

    def finish(self, item: _Pending, duplicate: bool = False) -> None:
        """Point the source at its new article, then drop the old article if unreferenced."""
        art = item.article
        if item.old is not None:
            self._hand_over(item.old, art.key)
        self.ingestor._record(art, item.aid)
        self.changed = True
        self.manifest[art.key] = {"key": art.key, "path": art.path, "article_id": item.aid,
                                  "source": art.source}
        self.refs[item.aid] = self.refs.get(item.aid, 0) + 1
        if item.old is None:
            if duplicate:
                self.report.unchanged += 1
            else:
                self.report.added += 1
            return
        self.report.updated += 1
        self._release(item.old)

    def _hand_over(self, aid: str, leaving: str) -> None:
        """Before ``leaving`` lets go of ``aid``, make its chunks cite a file that still has it.

        A text stored once for several files cites the file it was first stored from; when that
        file is edited or pruned, citations must move to a survivor, not point at a stale file.
        Done before the manifest changes, so a crash in between leaves nothing stale behind.
        """
        if self.refs.get(aid, 0) < 2:
            return
        heirs = sorted(key for key, meta in self.manifest.items()
                       if key != leaving and str(meta["article_id"]) == aid)
        if not heirs:
            return
        sources = {str(self.manifest[k].get("source") or self.manifest[k]["path"]) for k in heirs}
        first = self.store.chunks.get(ids=[f"{aid}:0"], include=["metadatas"])["metadatas"]
        if not first or not first[0] or first[0].get("source") in sources:
            return
        heir = self.manifest[heirs[0]]
        source = str(heir.get("source") or heir["path"])
        got = self.store.chunks.get(where={"article_id": aid}, include=["metadatas"])
        # The headline stays: the stored vectors were embedded with it.
        metas = [{**dict(meta or {}), "source": source, "site": site_of(source)}
                 for meta in got["metadatas"] or []]
        if got["ids"]:
            self.store.chunks.update(ids=got["ids"], metadatas=metas)

    def _release(self, aid: str) -> None:
        self.refs[aid] = self.refs.get(aid, 1) - 1
        if self.refs[aid] <= 0:
            # This run's manifest was read at its start; another process may cite it since.
            if not self.ingestor._cited(aid):
                self.store.chunks.delete(where={"article_id": aid})
            self.refs.pop(aid, None)

    def prune(self, roots: Sequence[Path]) -> None:
        """Forget sources under ``roots`` whose file is gone, or that left a file seen this run."""

        def under(path: Path) -> bool:
            return any(path == root or root in path.parents for root in roots)

        gone = [key for key, meta in self.manifest.items()
                if not is_url(str(meta["path"])) and under(Path(str(meta["path"])))
                and (not Path(str(meta["path"])).exists()
                     or (str(meta["path"]) in self.seen_paths and key not in self.seen_keys))]
        for key in gone:
            aid = str(self.manifest[key]["article_id"])
            self._hand_over(aid, key)
            self.manifest.pop(key)
            self.ingestor._forget([key])
            self._release(aid)
            self.report.removed += 1
            self.changed = True


def _progress(files: list[Path], enabled: bool) -> Iterable[Path]:
    if not enabled or len(files) < 2:
        return files
    from tqdm import tqdm

    return tqdm(files, desc="ingest", unit="file")


def ingest(paths: Iterable[str | Path], settings: Settings | None = None, *,
           prune: bool = False, progress: bool = False) -> IngestReport:
    """Convenience: one ingest run with the given (or default) settings."""
    return Ingestor(settings or Settings()).run(paths, prune=prune, progress=progress)
