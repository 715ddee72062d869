"""Forgetting articles: their chunks and every manifest entry that points at them, at once.

An article stays forgotten until one of its files is ingested again; an uploaded copy under
the data directory is removed with it, so it does not come back on the next upload sweep,
unless other articles still come from that file (the other entries of an uploaded feed) or
the caller is about to read it again (re-indexing).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rag.settings import Settings
from rag.store import Store, write_lock

log = logging.getLogger(__name__)


def remove_articles(settings: Settings, store: Store, article_ids: Sequence[str], *,
                    keep_files: bool = False) -> int:
    """Delete the given articles; returns how many were stored. Unknown ids are ignored.

    ``keep_files`` leaves their uploaded files in place, for a re-index that reads them next.

    The manifest entries go first: a crash between the two deletes leaves only orphaned
    chunks, which the next ingest run sweeps (never a manifest entry without its chunks).
    """
    wanted = set(article_ids)
    if not wanted:
        return 0
    uploads = (settings.data_dir / "uploads").resolve()
    with write_lock(settings):
        entries = {key: meta for key, meta in store.manifest().items()
                   if str(meta.get("article_id")) in wanted}
        found = {str(meta["article_id"]) for meta in entries.values()}
        for aid in sorted(found):
            store.sources.delete(where={"article_id": aid})
        for aid in sorted(found):
            store.chunks.delete(where={"article_id": aid})
        if found:
            store.bump_generation()
        still_read = {str(meta.get("path", "")) for meta in store.manifest().values()}
    if keep_files:
        return len(found)
    for meta in entries.values():
        path = Path(str(meta.get("path", "")))
        if uploads in path.parents and path.is_file() and str(path) not in still_read:
            try:
                path.unlink()
            except OSError as exc:  # the article is forgotten either way
                log.warning("could not remove the uploaded file %s: %s", path.name, exc)
    return len(found)

