"""``rag ingest --server URL``: add articles through a running server instead of the local index.

A running chat or API server owns its embedded store, so a second process may not write it;
this client uploads the files to the server's ``POST /ingest`` (the page's upload policy applies
there) and hands URLs to ``POST /ingest/urls`` (the server fetches them, as ``rag ingest URL``
would), then merges the reports. Files go in batches; a batch over the server's upload limit is
sent again one file at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path

import httpx

from ingest.pipeline import discover, urls_in
from rag.errors import RagError
from rag.records import IngestReport

BATCH_FILES = 20
BATCH_URLS = 20
BATCH_BYTES = 4_000_000
TIMEOUT_S = 600.0  # the server embeds the batch before it answers


class RemoteError(RagError):
    """The server could not be reached or refused the request."""


def _key() -> str | None:
    key = os.environ.get("RAG_API_KEY") or os.environ.get("RAG_API_KEYS", "").split(",")[0]
    return key.strip() or None


def _merge(total: IngestReport, part: IngestReport) -> None:
    for field in ("added", "updated", "unchanged", "removed", "skipped", "chunks_added"):
        setattr(total, field, getattr(total, field) + getattr(part, field))
    total.skipped_reasons.update(part.skipped_reasons)
    total.seconds += part.seconds


def _batches(files: Sequence[Path]) -> Iterable[list[Path]]:
    batch: list[Path] = []
    size = 0
    for path in files:
        length = path.stat().st_size
        if batch and (len(batch) >= BATCH_FILES or size + length > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += length
    if batch:
        yield batch


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail or response.reason_phrase)


def _send(client: httpx.Client, batch: Sequence[Path]) -> IngestReport | None:
    """The server's report for ``batch``; None when the batch is over its upload limit."""
    with ExitStack() as stack:
        files = [("files", (path.name, stack.enter_context(path.open("rb"))))
                 for path in batch]
        try:
            response = client.post("/ingest", files=files)
        except httpx.HTTPError as exc:
            raise RemoteError(f"Could not reach the server at {client.base_url}: "
                              f"{exc.__class__.__name__}.") from exc
    if response.status_code == 413:
        return None
    return _report(client, response)


def _post(client: httpx.Client, route: str, payload: dict[str, object]) -> IngestReport:
    """The server's report for a JSON request to ``route``."""
    try:
        response = client.post(route, json=payload)
    except httpx.HTTPError as exc:
        raise RemoteError(f"Could not reach the server at {client.base_url}: "
                          f"{exc.__class__.__name__}.") from exc
    return _report(client, response, route)


def _report(client: httpx.Client, response: httpx.Response,
            route: str = "/ingest") -> IngestReport:
    """The IngestReport in ``response``, or the server's refusal as one sentence."""
    if response.status_code in (401, 403):
        raise RemoteError("The server wants an API key: set RAG_API_KEY to one of its keys.")
    if response.status_code == 404:
        raise RemoteError(f"{client.base_url} has no {route}: is it a `rag serve` server "
                          "of this version?")
    if response.status_code >= 400:
        raise RemoteError(f"The server refused them: {_detail(response)}")
    return IngestReport.model_validate(response.json())


def ingest_through(server: str, paths: Iterable[str | Path]) -> IngestReport:
    """Add the article files under ``paths``, and its URLs, through the server at ``server``."""
    if not server.startswith(("http://", "https://")):
        raise RemoteError("--server takes the server's URL, e.g. http://127.0.0.1:8000.")
    urls, rest = urls_in(paths)
    files, problems = discover(rest)
    total = IngestReport(skipped=len(problems), skipped_reasons=dict(problems))
    headers = {"Authorization": f"Bearer {key}"} if (key := _key()) else {}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers,
                      timeout=TIMEOUT_S) as client:
        for start in range(0, len(urls), BATCH_URLS):
            _merge(total, _post(client, "/ingest/urls",
                                {"urls": urls[start:start + BATCH_URLS]}))
        for batch in _batches(files):
            report = _send(client, batch)
            if report is None:
                for path in batch:
                    single = _send(client, [path]) if len(batch) > 1 else None
                    if single is None:
                        single = IngestReport(skipped=1, skipped_reasons={
                            str(path): "it is over the server's upload limit"})
                    _merge(total, single)
                continue
            _merge(total, report)
    return total
