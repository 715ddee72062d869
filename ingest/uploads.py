"""Uploaded article files: the one policy for every front end that takes them (page and API).

Names are cleaned (no folders, hidden files or odd characters); a batch may hold at most
``max_upload_bytes`` in all; a file that cannot be read as an article is turned away with its
reason and never kept; and every accepted file is staged before any replaces an earlier upload
of the same name, so a batch that fails part-way changes nothing.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ingest.loaders import Skip, load_file
from rag.errors import TooLarge
from rag.records import IngestReport

_COPY_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name it was sent with, and its content as a binary stream."""

    name: str
    data: BinaryIO


def safe_name(filename: str | None) -> str:
    """A plain file name for an upload: no folders, no hidden files, no odd characters."""
    name = Path((filename or "").replace("\\", "/")).name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("._")[-120:]
    return name or "upload.txt"


@dataclass
class Batch:
    """The accepted files of one upload, where they now live, and why the others were not."""

    paths: list[Path] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)

    def report(self, ingested: IngestReport) -> IngestReport:
        """``ingested`` with the rejected files added, every file named as it was uploaded."""
        reasons = {shown_name(where): reason
                   for where, reason in ingested.skipped_reasons.items()}
        reasons.update(self.rejected)
        return ingested.model_copy(update={
            "skipped": ingested.skipped + len(self.rejected), "skipped_reasons": reasons})


def shown_name(where: str) -> str:
    """A file's name without the server's folders (a record keeps its ``#id``)."""
    path, sep, record = where.partition("#")
    return Path(path).name + sep + record


def _copy(upload: Upload, target: Path, budget: int, max_bytes: int) -> int:
    """Copy ``upload`` to ``target``; TooLarge as soon as the batch goes over its limit."""
    written = 0
    with target.open("wb") as out:
        while chunk := upload.data.read(_COPY_CHUNK):
            written += len(chunk)
            if written > budget:
                raise TooLarge(f"The uploaded files are larger than the limit of {max_bytes} "
                               "bytes.")
            out.write(chunk)
    return written


@contextmanager
def accepted(uploads: Sequence[Upload], folder: Path, *, max_bytes: int,
             max_file_bytes: int) -> Iterator[Batch]:
    """Stage, check and move ``uploads`` into ``folder``; yields the accepted files.

    A batch over ``max_bytes`` raises TooLarge and keeps nothing. Each file is read the way
    ingest will read it; one that yields no article is rejected with the loader's reason.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".staging-{secrets.token_hex(6)}"
    staging.mkdir()
    batch = Batch()
    try:
        budget = max_bytes
        staged: dict[str, Path] = {}
        for upload in uploads:  # all or nothing: every file staged before any replaces one
            name = safe_name(upload.name)
            path = staging / name
            budget -= _copy(upload, path, budget, max_bytes)
            try:
                load_file(path, max_file_bytes)
            except Skip as exc:
                batch.rejected[name] = str(exc)
                staged.pop(name, None)
                continue
            staged[name] = path
        for name, path in staged.items():
            os.replace(path, folder / name)
            batch.paths.append((folder / name).resolve())
        yield batch
    finally:
        shutil.rmtree(staging, ignore_errors=True)
