"""A hypothesis state machine over ingest: files come, change, copy and go in any order.

Real embedded Chroma and the real ingest pipeline; only the embedder is the fast fake. A model
tracks which article each source (a .txt file, or one record of a .jsonl file) should hold and
every ingest's report and the store are checked against it:

* chunk ids are unique and exactly ``<article_id>:0..n_chunks-1`` for each stored article;
* the stored articles are exactly the live ones (a source in the manifest), each stored once
  however many files carry its text, and each chunk cites one of those files;
* the report's counts match what changed;
* search never returns an article that is no longer live, and finds one that is.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ingest.pipeline import article_id
from ingest.text import clean_text
from rag.assistant import Assistant
from rag.settings import Settings

pytestmark = pytest.mark.timeout(400)

N_TEXTS = 6
TXT_SLOTS = ("a.txt", "b.txt", "c.txt", "sub/e.txt")
FEED = "wire.jsonl"
RIDS = ("r1", "r2", "r3")
_WORDS = ("harbour council election rainfall bridge court vaccine festival orchestra senator "
          "drought pipeline satellite museum tariff protest stadium refinery glacier").split()


def body(n: int) -> str:
    """Article text ``n``: 1 to 4 chunks, every paragraph carrying the word ``markerNword``."""
    rng = random.Random(n)
    paragraphs = []
    for p in range(1 + n % 4):
        sentences = [f"{rng.choice(_WORDS).capitalize()} "
                     f"{' '.join(rng.choice(_WORDS) for _ in range(12))} marker{n}word {p}-{s}."
                     for s in range(7)]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


BODIES = [clean_text(body(n)) for n in range(N_TEXTS)]
AIDS = [article_id(text) for text in BODIES]
TEXT_OF = dict(zip(AIDS, BODIES, strict=True))


class IngestMachine(RuleBasedStateMachine):
    """Random edits to a folder of articles, each ingest checked against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ingest-sm-"))
        self.folder = (self.tmp / "articles").resolve()
        (self.folder / "sub").mkdir(parents=True)
        self.assistant = Assistant(Settings(data_dir=self.tmp / "data",
                                            embedding_backend="fake"))
        self.files: dict[str, int] = {}  # txt slot -> text number
        self.feed: list[tuple[str, int]] | None = None  # records (id, text number); None: no file
        self.manifest: dict[str, str] = {}  # model: source key -> article id
        self.sources: dict[str, str] = {}  # source key -> what its chunks cite
        self.ever: set[str] = set()  # every article id ever stored

    def teardown(self) -> None:
        self.assistant.store.client.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the files ---------------------------------------------------------------------------
    @rule(slot=st.sampled_from(TXT_SLOTS), n=st.integers(0, N_TEXTS - 1))
    def write_txt(self, slot: str, n: int) -> None:
        """Add a file, edit it, or give it the same text another file has."""
        (self.folder / slot).write_text(f"Story {n}\n{body(n)}\n", encoding="utf-8")
        self.files[slot] = n

    @precondition(lambda self: bool(self.files))
    @rule(data=st.data())
    def delete_txt(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from(sorted(self.files)))
        (self.folder / slot).unlink()
        del self.files[slot]

    @rule(records=st.lists(st.tuples(st.sampled_from(RIDS), st.integers(0, N_TEXTS - 1)),
                           max_size=3, unique_by=lambda r: r[0]))
    def write_feed(self, records: list[tuple[str, int]]) -> None:
        """Rewrite the JSON Lines file: records added, edited, dropped (or none: an empty file)."""
        lines = [json.dumps({"id": rid, "url": f"https://wire.test/{rid}", "title": f"Story {n}",
                             "text": body(n)}) for rid, n in records]
        (self.folder / FEED).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        self.feed = list(records)

    @precondition(lambda self: self.feed is not None)
    @rule()
    def delete_feed(self) -> None:
        (self.folder / FEED).unlink()
        self.feed = None

    # -- ingest and search ---------------------------------------------------------------------
    def _current(self) -> tuple[list[tuple[str, str, str]], bool]:
        """Sources in the order ingest reads them (key, article id, cited source), and whether
        the feed file will be skipped as empty."""
        keys = []
        for slot in sorted(s for s in self.files if "/" not in s) + \
                sorted(s for s in self.files if "/" in s):
            path = str(self.folder / slot)
            keys.append((path, AIDS[self.files[slot]], path, slot))
        feed_keys = []
        feed_path = str(self.folder / FEED)
        for rid, n in self.feed or []:
            feed_keys.append((f"{feed_path}#{rid}", AIDS[n], f"https://wire.test/{rid}", FEED))
        # discover() walks the top folder's files (sorted by name) before its subfolders.
        ordered = sorted((k for k in keys + feed_keys if "/sub/" not in k[0]),
                         key=lambda k: k[3]) + [k for k in keys if "/sub/" in k[0]]
        return [k[:3] for k in ordered], self.feed == []

    @rule(prune=st.booleans())
    def ingest(self, prune: bool) -> None:
        current, feed_skipped = self._current()
        old = dict(self.manifest)
        old_stored = set(old.values())
        report = self.assistant.ingest([self.folder], prune=prune)

        now = {key: aid for key, aid, _ in current}
        if prune:
            feed_path = str(self.folder / FEED)
            # A file that is skipped (an empty feed) loses nothing already stored.
            kept = {k: a for k, a in old.items()
                    if feed_skipped and k.startswith(feed_path + "#")}
            new = {**kept, **now}
        else:
            new = {**old, **now}
        removed = len(set(old) - set(new))
        updated = sum(1 for k, a in now.items() if k in old and old[k] != a)
        first_carrier: dict[str, str] = {}
        for key, aid, _ in current:
            first_carrier.setdefault(aid, key)
        added_low = sum(1 for aid, key in first_carrier.items()
                        if aid not in old_stored and key not in old)
        added_high = added_low + len({a for k, a in now.items()
                                      if k not in old and a in old_stored})

        assert report.skipped == int(feed_skipped), report.skipped_reasons
        assert report.removed == removed
        assert report.updated == updated
        assert report.added + report.updated + report.unchanged == len(now)
        assert added_low <= report.added <= added_high, (report, added_low, added_high)

        self.manifest = new
        for key, _, cited in current:
            self.sources[key] = cited
        stored = set(new.values())
        chunks = self._chunks()
        sizes = {c["article_id"]: c["n_chunks"] for c in chunks.values()}
        fresh = sum(sizes[a] for a in stored - old_stored)
        redo = sum(sizes[a] for a in stored & old_stored
                   if any(k not in old or old[k] != a for k, b in now.items() if b == a))
        assert fresh <= report.chunks_added <= fresh + redo
        if now.items() <= old.items() and not removed:
            assert report.chunks_added == 0 and report.added == 0
        self.ever |= stored

    @rule(n=st.integers(0, N_TEXTS - 1))
    def search(self, n: int) -> None:
        """Search for text ``n`` by its unique word: found when live, never when gone."""
        live = set(self.manifest.values())
        passages = self.assistant.retrieve(f"marker{n}word story {n}", k=6)
        found = {p.article_id for p in passages}
        dead = self.ever - live
        assert not found & dead, f"search returned deleted article(s) {found & dead}"
        assert found <= live
        if AIDS[n] in live:
            assert AIDS[n] in found

    # -- the store ---------------------------------------------------------------------------
    def _chunks(self) -> dict[str, dict[str, Any]]:
        got = self.assistant.store.chunks.get(include=["documents", "metadatas"])
        assert len(got["ids"]) == len(set(got["ids"])), "duplicate chunk ids"
        return {cid: {**dict(meta or {}), "doc": doc} for cid, doc, meta in
                zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)}

    @invariant()
    def store_matches_model(self) -> None:
        chunks = self._chunks()
        stored = set(self.manifest.values())
        by_article: dict[str, list[dict[str, Any]]] = {}
        for cid, chunk in chunks.items():
            aid = chunk["article_id"]
            assert aid in stored, f"chunk {cid} belongs to no live article"
            assert cid == f"{aid}:{chunk['index']}"
            assert chunk["doc"] == TEXT_OF[aid][chunk["start"]:chunk["end"]]
            citers = {self.sources[k] for k, a in self.manifest.items() if a == aid}
            assert chunk["source"] in citers, f"chunk {cid} cites {chunk['source']}"
            by_article.setdefault(aid, []).append(chunk)
        assert set(by_article) == stored, "a live article has no chunks"
        for article in by_article.values():
            assert sorted(c["index"] for c in article) == list(range(article[0]["n_chunks"]))
        got = self.assistant.store.sources.get(include=["metadatas"])
        manifest = {str(m["key"]): str(m["article_id"]) for m in got["metadatas"] or []
                    if m and "key" in m}
        assert manifest == self.manifest


def test_ingest_state_machine() -> None:
    run_state_machine_as_test(
        IngestMachine,
        settings=settings(max_examples=35, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow],
                          print_blob=True),
    )
