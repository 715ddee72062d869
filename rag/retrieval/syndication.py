"""Syndicated copies: one story under several mastheads is one source, cited once.

Ingest stores a MinHash signature of each article's body with its first chunk
(``ingest.fingerprint``). Here the signatures of the whole index are put into a MinHash LSH
(``datasketch``) and articles whose bodies are near-identical are joined into groups. The groups
are derived from what is stored, every time the index changes, so they need no state of their
own: deleting an article takes it out of its group, and an edited copy that is no longer
near-identical leaves it.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ingest.fingerprint import PERMUTATIONS, SCHEME, SEED, decode

THRESHOLD = 0.6  # estimated Jaccard of word shingles; copies measured here share 0.89-0.92


@dataclass(frozen=True)
class Member:
    """One article of a group: what its citation needs to name it."""

    article_id: str
    outlet: str
    published: dt.date | None
    chars: int


@dataclass
class Groups:
    """Article id -> its group's members, the representative first (only groups of two+)."""

    of: dict[str, list[Member]] = field(default_factory=dict)

    def representative(self, article_id: str) -> str:
        """The article that stands for ``article_id``'s group (itself when it has none)."""
        members = self.of.get(article_id)
        return members[0].article_id if members else article_id

    def others(self, article_id: str) -> list[Member]:
        """The other members of ``article_id``'s group."""
        return [m for m in self.of.get(article_id, []) if m.article_id != article_id]


def outlet_of(meta: dict[str, Any]) -> str:
    """What names an article's publisher: its outlet, else its site, else its source."""
    outlet = str(meta.get("outlet") or "")
    if outlet:
        return outlet
    source = str(meta.get("source") or "")
    host = urlsplit(source).netloc
    return host.removeprefix("www.") if host else source


def _member(meta: dict[str, Any]) -> Member:
    published = meta.get("published")
    return Member(article_id=str(meta.get("article_id", "")), outlet=outlet_of(meta),
                  published=dt.date.fromisoformat(str(published)) if published else None,
                  chars=int(meta.get("chars") or 0))


def _order(member: Member) -> tuple[Any, ...]:
    # The earliest published stands for its group; among same-day copies the fullest.
    return (member.published or dt.date.max, -member.chars, member.article_id)


def find_groups(metas: Sequence[dict[str, Any]]) -> Groups:
    """Group the articles whose first chunks (in ``metas``) carry near-identical signatures."""
    from datasketch import LeanMinHash, MinHashLSH

    firsts: dict[str, tuple[Member, Any]] = {}
    for meta in metas:
        if int(meta.get("index", -1)) != 0 or not meta.get("minhash"):
            continue
        values = decode(str(meta["minhash"]))
        if values is None:
            continue
        member = _member(meta)
        sketch = LeanMinHash(seed=SEED, hashvalues=values, scheme=SCHEME)
        firsts[member.article_id] = (member, sketch)
    if len(firsts) < 2:
        return Groups()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=PERMUTATIONS)
    for aid, (_, minhash) in firsts.items():
        lsh.insert(aid, minhash)
    parent = {aid: aid for aid in firsts}

    def root(aid: str) -> str:
        while parent[aid] != aid:
            parent[aid] = parent[parent[aid]]
            aid = parent[aid]
        return aid

    for aid, (_, minhash) in firsts.items():
        for other in lsh.query(minhash):
            # LSH proposes candidates; the signatures' own estimate decides.
            if other != aid and minhash.jaccard(firsts[other][1]) >= THRESHOLD:
                parent[root(other)] = root(aid)
    clusters: dict[str, list[Member]] = {}
    for aid, (member, _) in firsts.items():
        clusters.setdefault(root(aid), []).append(member)
    out = Groups()
    for members in clusters.values():
        if len(members) > 1:
            members.sort(key=_order)
            for member in members:
                out.of[member.article_id] = members
    return out


_cache: weakref.WeakKeyDictionary[Any, Groups] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def groups_of(index: Any) -> Groups:
    """The groups of a lexical index's chunks (it holds every chunk's metadata); memoised."""
    with _lock:
        found = _cache.get(index)
        if found is None:
            found = _cache[index] = find_groups(index.metas)
        return found


def one_per_group(ranked: Sequence[str], article_of: dict[str, str],
                  groups: Groups) -> list[str]:
    """``ranked`` chunk ids with the chunks of only one member of each group.

    The member kept is the group's representative when any of its chunks is ranked, else the
    earliest member that is.
    """
    present = {article_of[cid] for cid in ranked}
    kept: dict[str, str] = {}
    for cid in ranked:
        aid = article_of[cid]
        members = groups.of.get(aid)
        if not members:
            continue
        rep = next((m.article_id for m in members if m.article_id in present), aid)
        kept.setdefault(members[0].article_id, rep)
    return [cid for cid in ranked
            if article_of[cid] not in groups.of
            or kept[groups.of[article_of[cid]][0].article_id] == article_of[cid]]
