"""New ingest sources on the real model and real Chroma: PDF files, and http(s) URLs fetched
from a loopback server started here."""

from __future__ import annotations

import datetime as dt
import http.server
import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer
from pypdf import PdfReader, PdfWriter
from servers import free_port

from ingest.fetch import format_of, load_url
from ingest.loaders import Skip, load_file
from ingest.pipeline import Ingestor, discover
from ingest.uploads import Upload
from rag.api.app import create_app
from rag.assistant import Assistant
from rag.cli import main
from rag.settings import Settings
from rag.store import claim_store

pytestmark = pytest.mark.timeout(300)

STRIKE = [
    "Port strike ends",
    "Dockers at Port Vellan returned to work on Monday after the harbour board agreed to",
    "hire forty more crane drivers, the union said. The strike had lasted eleven days and",
    "left more than two hundred ships waiting at anchor outside the breakwater.",
]
STRIKE_QUESTION = "How many crane drivers will the harbour board hire?"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(lines: list[str], info: dict[str, str] | None = None) -> bytes:
    """A minimal valid one-page PDF showing ``lines`` in Helvetica, built by hand."""
    shown = " ".join(f"({_escape(line)}) '" for line in lines)
    stream = f"BT /F1 11 Tf 14 TL 72 740 Td {shown} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if info:
        objects.append(("<< " + " ".join(f"/{k} ({_escape(v)})" for k, v in info.items())
                        + " >>").encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info_ref = b" /Info %d 0 R" % len(objects) if info else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, info_ref, xref)
    return bytes(out)


def rewritten(data: bytes, *, password: str | None = None, blank: bool = False) -> bytes:
    """``data`` encrypted with ``password``, or a one-page PDF with no text (a "scan")."""
    writer = PdfWriter() if blank else PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    if blank:
        writer.add_blank_page(612, 792)
    if password is not None:
        writer.encrypt(password, "owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


# -- PDF --------------------------------------------------------------------------------------
def test_a_pdf_is_retrievable_with_its_metadata_title_and_creation_date(
        tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "strike.pdf").write_bytes(pdf_bytes(STRIKE, {
        "Title": "Harbour strike is over", "CreationDate": "D:20240105093000+01'00'"}))
    assistant = Assistant(settings)
    report = assistant.ingest([folder])
    assert (report.added, report.skipped) == (1, 0), report.skipped_reasons
    [top, *_] = assistant.retrieve(STRIKE_QUESTION)
    assert "hire forty more crane drivers" in top.text
    assert top.headline == "Harbour strike is over"
    assert top.published == dt.date(2024, 1, 5)
    assert top.source.endswith("strike.pdf")
    # The wrapped lines are one paragraph again, not one "sentence" a line.
    assert "harbour board agreed to hire forty" in top.text


def test_a_pdf_without_a_title_takes_its_first_line_and_bad_dates_are_ignored(
        tmp_path: Path) -> None:
    path = tmp_path / "strike.pdf"
    path.write_bytes(pdf_bytes(STRIKE, {"CreationDate": "yesterday"}))
    [article] = load_file(path, 100_000).articles
    assert article.headline == "Port strike ends"
    assert article.text.startswith("Dockers at Port Vellan")
    assert "Port strike ends" not in article.text
    assert article.published is None


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: rewritten(pdf_bytes(STRIKE), password="secret"), "PDF is encrypted"),
    (lambda: b"%PDF-1.4\nthis is not really a PDF at all\n", "not a readable PDF"),
    (lambda: b"Plain words saved under the wrong name.\n", "not a readable PDF"),
    (lambda: rewritten(b"", blank=True), "no text to extract (it may be scanned images)"),
], ids=["encrypted", "broken", "not-a-pdf", "scanned"])
def test_unreadable_pdfs_are_skipped_with_one_sentence(tmp_path: Path, make, reason) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(make())
    with pytest.raises(Skip, match=re.escape(reason)) as caught:
        load_file(path, 100_000)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_a_pdf_locked_only_against_editing_opens_with_the_empty_password(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(rewritten(pdf_bytes(STRIKE), password=""))
    [article] = load_file(path, 100_000).articles
    assert "forty more crane drivers" in article.text


def test_a_pdf_that_turns_unreadable_keeps_what_was_stored(tmp_path: Path,
                                                           settings: Settings) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "strike.pdf"
    path.write_bytes(pdf_bytes(STRIKE))
    ingestor = Ingestor(settings)
    assert ingestor.run([folder]).added == 1
    stored = ingestor.store.chunks.count()
    path.write_bytes(rewritten(pdf_bytes(STRIKE), password="secret"))
    report = ingestor.run([folder], prune=True)
    assert report.skipped_reasons == {
        str(path.resolve()): "PDF is encrypted with a password, so its text cannot be read"}
    assert (report.removed, report.added) == (0, 0)
    assert ingestor.store.chunks.count() == stored


def test_pdf_uploads_go_through_the_same_loader(settings: Settings) -> None:
    assistant = Assistant(settings)
    report = assistant.add_uploads([
        Upload("strike.pdf", io.BytesIO(pdf_bytes(STRIKE))),
        Upload("scan.pdf", io.BytesIO(rewritten(b"", blank=True))),
    ])
    assert report.added == 1
    assert report.skipped_reasons == {
        "scan.pdf": "PDF has no text to extract (it may be scanned images)"}
    assert "forty more crane drivers" in assistant.retrieve(STRIKE_QUESTION)[0].text


# -- URLs -------------------------------------------------------------------------------------
ARTICLE_HTML = """<!doctype html>
<html><head><title>Port strike ends after eleven days</title>
<meta property="article:published_time" content="2024-03-02T08:00:00Z">
</head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<article>
<h1>Port strike ends after eleven days</h1>
<p>Dockers at Port Vellan returned to work on Monday after the harbour board agreed to hire
forty more crane drivers, the union said.</p>
<p>The strike had lasted eleven days and left more than two hundred ships waiting at anchor
outside the breakwater, according to the harbour master's office.</p>
<p>The board's chairwoman said the new drivers would start training in April and that the
overtime rules agreed in 2019 would be reviewed before the summer season.</p>
</article>
<footer>Copyright Vellan Gazette</footer>
</body></html>"""

FEED_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Vellan Gazette</title><link>http://gazette.example/</link>
<item><title>Ferry timetable changes</title><link>http://gazette.example/ferry</link>
<guid>ferry-1</guid><pubDate>Tue, 05 Mar 2024 09:00:00 GMT</pubDate>
<description>The island ferry will sail every forty minutes from the first of May, the
operator announced on Tuesday.</description></item>
<item><title>Lighthouse reopens</title><link>http://gazette.example/lighthouse</link>
<guid>lighthouse-2</guid><pubDate>Wed, 06 Mar 2024 10:00:00 GMT</pubDate>
<description>The old lighthouse on Cape Marren reopened to visitors after a two-year
restoration paid for by the county.</description></item>
</channel></rss>"""

ROUTES: dict[str, tuple[int, str, bytes]] = {
    "/news/strike": (200, "text/html; charset=utf-8", ARTICLE_HTML.encode()),
    "/feed": (200, "application/rss+xml", FEED_RSS.encode()),
    "/notes/strike.md": (200, "text/plain", b"# Strike notes\n\nThe union thanked the harbour "
                         b"pilots for their support during the eleven days."),
    "/report": (200, "application/pdf", pdf_bytes(STRIKE, {"Title": "Strike report"})),
    "/photo": (200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
    "/huge.txt": (200, "text/plain", b"Many words here. " * 2000),
}

AGENTS: list[str] = []  # the User-Agent of every request the server answered


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/news/strike")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, kind, body = ROUTES.get(self.path, (404, "text/html", b"<h1>Not here</h1>"))
        AGENTS.append(self.headers.get("User-Agent", ""))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A loopback HTTP server for this module; its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_an_html_url_is_ingested_cited_by_its_url_and_not_fetched_twice_into_the_index(
        site: str, tmp_path: Path, settings: Settings) -> None:
    url = f"{site}/news/strike"
    folder = tmp_path / "in"
    folder.mkdir()
    assistant = Assistant(settings)
    report = assistant.ingest([url, folder])
    assert (report.added, report.skipped) == (1, 0), report.skipped_reasons
    [top, *_] = assistant.retrieve(STRIKE_QUESTION)
    assert top.source == url
    assert top.headline == "Port strike ends after eleven days"
    assert top.published == dt.date(2024, 3, 2)
    assert "forty more crane drivers" in top.text
    assert url in assistant.store.manifest()
    again = assistant.ingest([url, folder], prune=True)  # a URL is never pruned
    assert (again.unchanged, again.added, again.chunks_added, again.removed) == (1, 0, 0, 0)
    assert assistant.ingest([folder], prune=True).removed == 0
    assert assistant.retrieve(STRIKE_QUESTION)[0].source == url


def test_a_feed_url_gives_one_article_per_entry_citing_its_link(site: str,
                                                               settings: Settings) -> None:
    ingestor = Ingestor(settings)
    report = ingestor.run([f"{site}/feed"])
    assert report.added == 2, report.skipped_reasons
    manifest = ingestor.store.manifest()
    assert set(manifest) == {f"{site}/feed#ferry-1", f"{site}/feed#lighthouse-2"}
    assert {meta["source"] for meta in manifest.values()} == {
        "http://gazette.example/ferry", "http://gazette.example/lighthouse"}


def test_content_type_picks_the_loader_and_the_url_suffix_settles_vague_types(
        site: str) -> None:
    assert format_of("http://x/a", "text/html; charset=utf-8") == ".html"
    assert format_of("http://x/a.md", "text/plain") == ".md"
    assert format_of("http://x/a.json", "application/octet-stream") == ".json"
    assert format_of("http://x/a", "application/atom+xml") == ".atom"
    with pytest.raises(Skip, match="type 'image/png'"):
        format_of("http://x/photo", "image/png")
    [notes] = load_url(f"{site}/notes/strike.md", 100_000).articles
    assert (notes.headline, notes.key, notes.source) == ("Strike notes", f"{site}/notes/strike.md",
                                                         f"{site}/notes/strike.md")
    [report] = load_url(f"{site}/report", 100_000).articles
    assert report.headline == "Strike report" and "crane drivers" in report.text
    [moved] = load_url(f"{site}/moved", 100_000).articles  # the redirect is followed
    assert moved.source == f"{site}/moved"
    assert "forty more crane drivers" in moved.text


def test_the_fetcher_names_itself(site: str) -> None:
    AGENTS.clear()
    load_url(f"{site}/notes/strike.md", 100_000)
    assert len(AGENTS) == 1 and AGENTS[0].startswith("newsrag/")


def test_failing_urls_are_skipped_with_one_sentence_each(site: str, data_dir: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/article.html"
    ingestor = Ingestor(Settings(data_dir=data_dir, max_file_bytes=10_000))
    urls = [f"{site}/missing", closed, f"{site}/huge.txt", f"{site}/photo"]
    report = ingestor.run(urls)
    assert report.skipped_reasons == {
        f"{site}/missing": f"{site}/missing answered 404 Not Found",
        closed: f"could not fetch {closed}: connection refused",
        f"{site}/huge.txt": f"{site}/huge.txt sends more than the 10,000-byte limit",
        f"{site}/photo": f"{site}/photo sent content of type 'image/png', which is not an "
                         "article format this can read",
    }
    assert (report.skipped, report.added) == (4, 0)


def test_a_url_given_to_discover_is_reported_not_mangled_into_a_path() -> None:
    files, problems = discover(["http://127.0.0.1:9/article.html"])
    assert files == []
    assert list(problems) == ["http://127.0.0.1:9/article.html"]


def test_the_cli_ingests_a_url_and_exits_1_when_no_url_could_be_read(
        site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "cli-data")
    url = f"{site}/news/strike"
    assert main(["--data-dir", data, "ingest", "--quiet", url]) == 0
    out = capsys.readouterr().out
    assert "added 1," in out
    missing = f"{site}/missing"
    assert main(["--data-dir", data, "ingest", "--quiet", missing]) == 1
    captured = capsys.readouterr()
    assert f"skipped {missing}: {missing} answered 404 Not Found" in captured.out
    assert "none of the given paths could be read" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_urls_go_through_a_running_server_which_never_reads_its_own_files(
        site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path / "served", answerer="extractive")
    claim_store(settings)  # as `rag serve` does: no other process may write this store
    served = Assistant(settings)
    url, missing = f"{site}/news/strike", f"{site}/missing"
    with LiveServer(create_app(assistant=served)) as live:
        assert main(["ingest", "--server", live.url, url, f"{site}/feed"]) == 0
        assert capsys.readouterr().out.startswith("added 3,")
        assert main(["ingest", "--server", live.url, url]) == 0
        assert "unchanged 1" in capsys.readouterr().out  # fetched again, nothing new
        assert main(["ingest", "--server", live.url, missing]) == 1
        assert f"skipped {missing}: {missing} answered 404 Not Found" in capsys.readouterr().out
        secret = tmp_path / "server-side.txt"
        secret.write_text("Server notes\n\nThe harbour board secretly agreed to sell the pier.")
        response = httpx.post(f"{live.url}/ingest/urls", timeout=60,
                              json={"urls": [str(secret), f"file://{secret}"]})
        assert response.status_code == 200
        assert response.json()["skipped_reasons"] == {
            str(secret): "it is not an http(s) URL", f"file://{secret}": "it is not an http(s) URL"}
        empty = httpx.post(f"{live.url}/ingest/urls", json={"urls": []}, timeout=60)
        assert empty.status_code == 422 and "Traceback" not in empty.text
    assert served.stats()["articles"] == 3
    [top, *_] = served.retrieve(STRIKE_QUESTION)
    assert top.source == url and "forty more crane drivers" in top.text
    assert not any("pier" in p.text for p in served.retrieve("Who agreed to sell the pier?"))
