"""The public API: one Assistant that ingests articles and answers questions with citations."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answering.attribution import attribution
from rag.answering.base import (
    NOTHING_INDEXED,
    Answerer,
    Draft,
    citation_for,
    refusal,
    shown_source,
)
from rag.answering.condense import split_follow_up
from rag.answering.evidence import EvidenceScorer
from rag.answering.factory import make_answerer
from rag.answering.rerank import rerank
from rag.embeddings import Embedder, make_embedder
from rag.errors import InvalidInput, NotFound, RagError, Stopped, StoreLocked
from rag.records import (
    MAX_QUESTION_CHARS,
    Answer,
    ArticleInfo,
    Citation,
    Filters,
    IngestReport,
    Passage,
    Preview,
    Stage,
    Turn,
)
from rag.retrieval.hybrid import HybridRetriever
from rag.retrieval.recency import asks_for_figure
from rag.retrieval.relative_time import Window, long_date, window_of
from rag.settings import Settings
from rag.store import Store
from rag.vector_cache import cached

if TYPE_CHECKING:
    from ingest.uploads import Upload

log = logging.getLogger(__name__)
HistoryLike = Sequence[Turn | dict[str, Any]] | None
FiltersLike = Filters | dict[str, Any] | None


def _history(history: HistoryLike) -> list[Turn]:
    try:
        return [t if isinstance(t, Turn) else Turn.model_validate(t) for t in history or []]
    except ValueError as exc:
        raise InvalidInput("The conversation history is not a list of user/assistant turns.") \
            from exc


def _filters(filters: FiltersLike) -> Filters | None:
    if filters is None or isinstance(filters, Filters):
        return filters
    try:
        return Filters.model_validate(filters)
    except ValueError as exc:
        raise InvalidInput("The filters are not valid: use sources, published_from/to and "
                           "today (dates as YYYY-MM-DD).") from exc


def _question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput("Please ask a question.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"The question is too long (over {MAX_QUESTION_CHARS} characters).")
    return question.strip()


class Assistant:
    """Ask questions of the indexed news articles; every front end calls this class.

    >>> assistant = Assistant()                                   # doctest: +SKIP
    >>> assistant.ingest(["seeds/"])                              # doctest: +SKIP
    >>> assistant.ask("What did Putin offer instead of the Czech radar?").text  # doctest: +SKIP
    """

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 answerer: Answerer | None = None) -> None:
        self.settings = settings or Settings()
        self.embedder = embedder or make_embedder(self.settings)
        self.store = Store(self.settings, self.embedder)
        self.retriever = HybridRetriever(self.store, self.embedder, self.settings)
        # The refusal gate and the answerers score the same sentences: one scorer, one memo,
        # and sentence vectors kept between questions (rag.vector_cache).
        self.scorer = EvidenceScorer(cached(self.embedder, self.settings.sentence_cache_size))
        self._answerers: dict[str, Answerer] = {}
        if answerer is not None:
            self._answerers[answerer.name] = answerer
        self._default = answerer.name if answerer is not None else self.settings.answerer
        self._lock = threading.Lock()
        self._uploading = threading.Lock()
        self._warming: threading.Thread | None = None

    # -- answering --------------------------------------------------------------------------
    def answerer(self, name: str | None = None) -> Answerer:
        """The answerer called ``name`` (default: the configured one), loaded once."""
        name = name or self._default
        with self._lock:
            if name not in self._answerers:
                self._answerers[name] = make_answerer(name, self.settings, self.embedder,
                                                      scorer=self.scorer,
                                                      articles=self.store.article_text)
            return self._answerers[name]

    def warm_up(self) -> threading.Thread:
        """Load the default answerer in the background; a question asked meanwhile waits.

        A local model takes seconds to load: servers and the chat page call this at start-up
        so the first question does not pay for it. ``ready()`` says when it is done.
        """
        def load() -> None:
            try:
                self.answerer()
            except Exception as exc:  # the first question reports it as one sentence
                log.warning("the answerer %s could not be loaded: %s", self._default, exc)

        with self._lock:
            if self._warming is None:
                self._warming = threading.Thread(target=load, name="warm-up", daemon=True)
                self._warming.start()
            return self._warming

    def ready(self) -> bool:
        """Whether the default answerer is loaded (a question will not wait for it)."""
        return self._default in self._answerers

    def reembed(self) -> int:
        """Embed the stored chunks again if another encoder built them; how many were."""
        return self.ingest([]).reembedded

    def retrieve(self, question: str, filters: FiltersLike = None,
                 k: int | None = None) -> list[Passage]:
        """The passages the answer would be written from (in the question's time window)."""
        question, wanted = _question(question), _filters(filters)
        window = window_of(question, (wanted.today if wanted else None) or dt.date.today())
        return self._passages(question, k or self.settings.top_k, within(wanted, window))

    def ask(self, question: str, history: HistoryLike = None, filters: FiltersLike = None, *,
            top_k: int | None = None, answerer: str | None = None) -> Answer:
        """Answer ``question`` from the articles, with [n] citations, or refuse plainly."""
        answer: Answer | None = None
        for event in self.ask_stream(question, history, filters, top_k=top_k,
                                     answerer=answerer):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: HistoryLike = None,
                   filters: FiltersLike = None, *, top_k: int | None = None,
                   answerer: str | None = None,
                   stop: threading.Event | None = None) -> Iterator[str | Preview | Answer]:
        """Yield the checked answer in sentence pieces, then the finished ``Answer``.

        When a language model writes the answer, a ``Preview`` (the quoted sentences that
        answer, as the extractive answerer finds them) comes first, within about a second,
        while the model writes; the pieces that follow are the model's checked answer.
        Setting ``stop`` ends the model's generation at its next token: the Answer then says
        it was stopped (``stopped``), and the model is free for the next question at once.
        """
        for event in self.ask_with_stages(question, history, filters, top_k=top_k,
                                          answerer=answerer, stop=stop):
            if not isinstance(event, Stage):
                yield event

    def ask_with_stages(self, question: str, history: HistoryLike = None,
                        filters: FiltersLike = None, *, top_k: int | None = None,
                        answerer: str | None = None, stop: threading.Event | None = None
                        ) -> Iterator[str | Stage | Preview | Answer]:
        """``ask_stream``, with a ``Stage`` as each stage begins (searching, reading, writing).

        The question is checked before the first event, so bad input fails at the first step.
        """
        started = time.perf_counter()
        question = _question(question)
        turns = _history(history)
        wanted = _filters(filters)
        k = self.settings.top_k if top_k is None else top_k
        if not 1 <= k <= 20:
            raise InvalidInput("top_k must be between 1 and 20.")
        writer = self.answerer(answerer)
        timings: dict[str, float] = {}
        yield Stage(name="searching")

        mark = time.perf_counter()
        standalone = writer.condense(question, turns) if turns else question
        timings["condense_ms"] = (time.perf_counter() - mark) * 1000

        mark = time.perf_counter()
        window = window_of(standalone, (wanted.today if wanted else None) or dt.date.today())
        passages = self._passages(standalone, k, within(wanted, window))
        timings["retrieve_ms"] = (time.perf_counter() - mark) * 1000

        mark = time.perf_counter()
        draft: Draft | None = None
        stopped = False
        if not passages and self.store.count() == 0:
            draft = Draft(text=NOTHING_INDEXED, refused=True)
            yield draft.text
        elif not self._relevant(standalone, passages):
            draft = self._outside(window, standalone, k, wanted) if window else None
            draft = draft or refusal(question)
            yield draft.text
        else:
            if writer.name != "extractive":
                timings["preview_ms"] = (time.perf_counter() - started) * 1000
                yield Stage(name="reading", passages=len(passages))
                preview = self._preview(standalone, passages)
                yield preview
                focus = split_follow_up(standalone)[0]
                if preview.text and (asks_for_figure(focus)
                                     or attribution(focus, passages) is not None):
                    # Two answers are found mechanically, and better than the small model
                    # finds them, so the extractive answer stands: a figure that later
                    # reports revise (the newest, dated; newsroom 'latest' 0.78 vs 0.22
                    # right), and the speaker named beside the words a question quotes
                    # (newsroom 'attribution' 1.00 vs 0.56, the rest refused).
                    writer = self.answerer("extractive")
                    draft = Draft(text=preview.text, citations=preview.citations,
                                  supported_sentences=1, total_sentences=1)
            # The model's own words are never shown: only the checked answer, which may drop or
            # reword what it wrote, so what a client joins from the deltas is the answer itself.
            if draft is None:
                writing = None if writer.name == "extractive" else \
                    Stage(name="writing", passages=len(passages))
                draft = yield from _written(writer.stream(standalone, passages, stop=stop), stop,
                                            writing)
                stopped = draft is None
                draft = draft or Draft(text=STOPPED)
            if draft is not None:
                yield from sentences_of(draft.text)
        timings["answer_ms"] = (time.perf_counter() - mark) * 1000
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        assert draft is not None, "an answerer must finish with a Draft"
        yield Answer(
            question=question, standalone_question=standalone, text=draft.text,
            citations=draft.citations, refused=draft.refused, stopped=stopped,
            answerer=writer.name,
            supported_sentences=draft.supported_sentences,
            total_sentences=draft.total_sentences,
            as_of=max((c.published for c in draft.citations if c.published), default=None),
            timings_ms={key: round(value, 1) for key, value in timings.items()},
        )

    def _passages(self, question: str, k: int, filters: Filters | None) -> list[Passage]:
        """The retriever's candidates, reranked by their best sentence, best ``k`` kept."""
        candidates = self.retriever.retrieve(question, max(k, self.settings.rerank_depth),
                                             filters)
        return rerank(question, candidates, k, self.scorer, self.settings)

    def _preview(self, question: str, passages: Sequence[Passage]) -> Preview:
        """The extractive answer over ``passages`` (scored already: it costs milliseconds).

        When it finds no answering sentence, the preview is what is being read: the best
        sentence of each of the best few passages, with no text of its own.
        """
        try:
            events = list(self.answerer("extractive").stream(question, passages))
        except RagError:
            events = []
        draft = events[-1] if events and isinstance(events[-1], Draft) else None
        if draft is not None and not draft.refused:
            return Preview(text=draft.text, citations=draft.citations)
        focus, context = split_follow_up(question)
        best: dict[int, Citation] = {}
        for item in self.scorer.score(focus, passages, context):
            if item.passage not in best and len(best) < 3:
                best[item.passage] = citation_for(len(best) + 1, passages[item.passage],
                                                  item.start, item.end, item.score)
        return Preview(text="", citations=list(best.values()))

    def _outside(self, window: Window, question: str, k: int,
                 wanted: Filters | None) -> Draft | None:
        """The refusal for a question the articles answer only outside its time window."""
        # The newest on this up to the day asked: later articles did not exist then.
        until = Window(dt.date.min, window.end, "")
        passages = self._passages(question, k, within(wanted, until))
        dates = [p.published for p in passages if p.published]
        if not dates or not self._relevant(question, passages):
            return None
        return Draft(refused=True, text=(
            f"The indexed articles have nothing from {window.describe()} that answers this. "
            f"The newest article on this is from {long_date(max(dates))}."))

    def _relevant(self, question: str, passages: Sequence[Passage]) -> bool:
        """Whether any retrieved sentence is close enough to the question to answer it."""
        if not passages:
            return False
        focus, context = split_follow_up(question)
        evidence = self.scorer.score(focus, passages, context)
        return bool(evidence) and evidence[0].score >= self.settings.relevance_threshold

    # -- the index --------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, prune: bool = False,
               progress: bool = False) -> IngestReport:
        """Add or update articles from files and folders (see ``ingest``)."""
        from ingest.pipeline import Ingestor

        try:
            return Ingestor(self.settings, self.embedder, self.store).run(
                paths, prune=prune, progress=progress)
        finally:
            self.retriever.lexical.invalidate()

    def add_uploads(self, uploads: Sequence[Upload]) -> IngestReport:
        """Keep uploaded files under the data directory and ingest them (``ingest.uploads``).

        The report names files as they were uploaded, never by the server's paths.
        """
        from ingest.uploads import accepted

        if not self._uploading.acquire(timeout=300):
            raise StoreLocked("Another upload is still being added; try again shortly.")
        try:
            with accepted(uploads, self.settings.data_dir / "uploads",
                          max_bytes=self.settings.max_upload_bytes,
                          max_file_bytes=self.settings.max_file_bytes) as batch:
                report = self.ingest(batch.paths) if batch.paths else IngestReport()
            return batch.report(report)
        finally:
            self._uploading.release()

    def add_urls(self, urls: Sequence[str]) -> IngestReport:
        """Fetch articles by http(s) URL and ingest them, as ``rag ingest URL`` does.

        Anything that is not an http(s) URL is skipped with its reason: a caller of the HTTP
        API must not be able to name files on the server.
        """
        from ingest.fetch import is_url

        wanted = [url.strip() for url in urls if is_url(url.strip())]
        refused = {url: "it is not an http(s) URL" for url in urls if not is_url(url.strip())}
        if not self._uploading.acquire(timeout=300):
            raise StoreLocked("Another upload is still being added; try again shortly.")
        try:
            report = self.ingest(wanted) if wanted else IngestReport()
        finally:
            self._uploading.release()
        report.skipped += len(refused)
        report.skipped_reasons.update(refused)
        return report

    def articles(self) -> list[ArticleInfo]:
        """Every indexed article, newest first (undated ones last), with its files."""
        infos: dict[str, ArticleInfo] = {}
        for page in self.store.chunk_pages():
            for chunk in page:
                meta = chunk.metadata
                aid = str(meta.get("article_id", ""))
                if not aid:
                    continue
                if aid not in infos:
                    infos[aid] = ArticleInfo(
                        article_id=aid, headline=str(meta.get("headline") or ""),
                        source=self._shown(str(meta.get("source") or "")),
                        published=meta.get("published") or None, chunks=0)
                infos[aid].chunks += 1
        for meta in self.store.manifest().values():
            info = infos.get(str(meta.get("article_id")))
            if info is not None:
                key = str(meta.get("key") or meta.get("path") or "")
                shown = self._shown(key.split("#", 1)[0])
                record = f"#{key.split('#', 1)[1]}" if "#" in key else ""
                info.files.append(shown + record)
        for info in infos.values():
            info.files.sort()
        return sorted(infos.values(), key=lambda a: (a.published is None,
                                                     -(a.published.toordinal()
                                                       if a.published else 0),
                                                     a.headline.lower()))

    def _shown(self, source: str) -> str:
        """A source as people see it; an upload by the name it was uploaded under."""
        uploads = (self.settings.data_dir / "uploads").resolve()
        if "://" not in source and uploads in Path(source).parents:
            return Path(source).name
        return shown_source(source)

    def article_ids(self, wanted: Sequence[str]) -> list[str]:
        """The stored article ids that ``wanted`` name, each in full or by a unique prefix."""
        known = sorted({str(meta["article_id"]) for meta in self.store.manifest().values()})
        found: list[str] = []
        for raw in wanted:
            prefix = raw.strip().lower()
            matches = [aid for aid in known if aid.startswith(prefix)] if len(prefix) >= 6 \
                else [aid for aid in known if aid == prefix]
            if not matches:
                raise NotFound(f"No indexed article has the id '{raw[:40]}'; "
                               "`rag articles` lists them.")
            if len(matches) > 1:
                raise InvalidInput(f"'{raw[:40]}' is the start of several article ids; "
                                   "give more of it.")
            found.append(matches[0])
        return found

    def delete_articles(self, article_ids: Sequence[str]) -> list[ArticleInfo]:
        """Forget the given articles (ids in full or by a unique prefix); returns them.

        An article comes back if one of its files is ingested again; an uploaded copy is
        deleted with it.
        """
        from ingest.removal import remove_articles

        ids = self.article_ids(article_ids)
        listed = {info.article_id: info for info in self.articles()}
        try:
            remove_articles(self.settings, self.store, ids)
        finally:
            self.retriever.lexical.invalidate()
        return [listed[aid] for aid in ids if aid in listed]

    def reindex(self, article_ids: Sequence[str] | None = None) -> IngestReport:
        """Read the given articles (default: all) from their files again and embed them anew.

        For after a change of chunking or embedder. An article whose files are all gone stays
        as it is, with the reason in the report; nothing is lost.
        """
        from ingest.removal import remove_articles

        ids = set(self.article_ids(article_ids)) if article_ids else None
        paths: dict[str, list[str]] = {}
        before = self.store.manifest()
        for meta in before.values():
            aid = str(meta["article_id"])
            if ids is None or aid in ids:
                paths.setdefault(aid, []).append(str(meta.get("path", "")))
        readable = {aid: sorted({p for p in found if Path(p).is_file()})
                    for aid, found in paths.items()}
        kept = {aid for aid, found in readable.items() if not found}
        try:
            remove_articles(self.settings, self.store, [a for a in readable if a not in kept],
                            keep_files=True)
        finally:
            self.retriever.lexical.invalidate()
        report = self.ingest(sorted({p for found in readable.values() for p in found}))
        # A file read again may hold articles that were deleted from it (a feed's entry):
        # they stay deleted.
        back = {str(meta["article_id"]) for key, meta in self.store.manifest().items()
                if key not in before}
        if back:
            try:
                remove_articles(self.settings, self.store, sorted(back), keep_files=True)
            finally:
                self.retriever.lexical.invalidate()
            report.added -= len(back)
        for aid in sorted(kept):
            report.skipped += 1
            report.skipped_reasons[aid[:12]] = "its files are gone; the stored copy was kept"
        return report

    def stats(self) -> dict[str, int]:
        """How much is indexed: articles and chunks."""
        return self.store.stats()


_PIECE = re.compile(r".+?(?:[.!?…][”’\"')]*(?:\s*\[\d+\])*(?:\s+|$)|$)", re.S)


STOPPED = "Stopped before the answer was finished."


def _written(stream: Iterator[str | Draft], stop: threading.Event | None,
             writing: Stage | None) -> Generator[Stage, None, Draft | None]:
    """The Draft that ends ``stream``, or None when ``stop`` was set first.

    Its raw text is not shown; its first piece starts the ``writing`` stage, if one is given.
    The stream is closed either way, which ends a local model's generation where it is and
    frees the model for the next question.
    """
    try:
        for event in stream:
            if stop is not None and stop.is_set():
                return None
            if isinstance(event, Draft):
                return event
            if event and writing is not None:
                yield writing
                writing = None
        raise AssertionError("an answerer must finish with a Draft")
    except Stopped:
        return None
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def sentences_of(text: str) -> Iterator[str]:
    """``text`` in sentence-sized pieces that join back to exactly ``text``."""
    pieces = [piece for piece in _PIECE.findall(text) if piece]
    yield from pieces if "".join(pieces) == text else [text]


def within(wanted: Filters | None, window: Window | None) -> Filters | None:
    """``wanted`` narrowed to ``window`` (the question's own time words), if any."""
    if window is None:
        return wanted
    base = wanted or Filters()
    start = max(d for d in (base.published_from, window.start) if d is not None)
    end = min(d for d in (base.published_to, window.end) if d is not None)
    return base.model_copy(update={"published_from": start, "published_to": end})
