"""Hostile files: every one is either indexed or skipped with a reason, never a crash or a hang.

Hypothesis feeds the loaders random bytes and format-shaped soup (broken markup, invalid UTF-8,
NUL bytes, hidden characters, malformed JSON and feeds); fixed cases cover what random search
rarely builds: deep nesting, huge lines, compression bombs saved under text suffixes, XML
entity bombs, and a "feed" that is only a path or URL. Each test has a pytest-timeout, so a
quadratic parser shows up as a failure, not a stuck run.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import http.server
import io
import json
import threading
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.chunking import chunk_text
from ingest.loaders import SUPPORTED_SUFFIXES, Loaded, Skip, load_file
from ingest.pipeline import Ingestor
from ingest.text import clean_text
from rag.embeddings import FakeEmbedder
from rag.settings import Settings

pytestmark = pytest.mark.timeout(180)

MAX_BYTES = 5_000_000
FUZZ = settings(max_examples=120, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    return folder


def check_load(path: Path, max_bytes: int = MAX_BYTES) -> Loaded | str:
    """Load ``path``: a Loaded whose articles are clean, or the one-line reason it was skipped.

    Any other exception propagates and fails the test.
    """
    try:
        loaded = load_file(path, max_bytes)
    except Skip as exc:
        reason = str(exc)
        assert reason.strip() and "\n" not in reason and "Traceback" not in reason, reason
        return reason
    assert loaded.articles, "a file that loads has at least one article"
    for art in loaded.articles:
        assert art.text and art.text == clean_text(art.text)
        assert art.key == str(path) or art.key.startswith(f"{path}#")
        assert art.path == str(path)
        assert "\n" not in art.headline and len(art.headline) <= 300
        for field in (art.text, art.headline):
            hidden = {ch for ch in field if ch not in "\n"
                      and unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")}
            assert not hidden, f"hidden characters {hidden!r} reached the index"
        assert art.published is None or isinstance(art.published, dt.date)
        for chunk in chunk_text(art.text):
            assert chunk.text == art.text[chunk.start:chunk.end] and chunk.text.strip()
    for problem in loaded.problems:
        assert problem.strip() and "\n" not in problem
    return loaded


# -- format-shaped soup ------------------------------------------------------------------------
HOSTILE_BYTES = [
    b"\x00", b"\xff", b"\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xef\xbb\xbf",
    b"\r", b"\r\n", b"\t", b"\x1b[2J", b"\x7f", "\u200b".encode(), "\u202e".encode(),
    "\ufeff".encode(), "\u2028".encode(), "\U000e0041".encode(), b"\xe2\x80", b"\xc0\xaf",
]
SNIPPETS = {
    ".txt": ["\n", "\n\n", ". ", "Mr. ", "U.S. ", "A. ", "! ", "? ", "…", " "],
    ".md": ["# ", "## ", "---\n", "title: x\n", "date: 2024-01-01\n", "[", "](", ")", "![", "*",
            "**", "_", "`", "> ", "- ", "1. ", "\n"],
    ".html": ["<html>", "<body>", "<div>", "</div>", "<p>", "</p>", "<article>", "<script>",
              "</script>", "<!--", "-->", "<![CDATA[", "]]>", "<title>", "</title>", "&amp;",
              "&#0;", "&#x110000;", "&nbsp;", "<meta charset='latin-1'>", "<", ">", "\"", "'",
              "<a href='file:///etc/passwd'>", "<iframe src=x>"],
    ".json": ["{", "}", "[", "]", ",", ":", "\"", "\"text\"", "\"id\"", "\"title\"",
              "\"published\"", "\"articles\"", "null", "true", "1e999", "-0", "\\u0000", "\\ud800",
              "\n{"],
    ".jsonl": ["\n", "{", "}", "[", "]", ",", ":", "\"", "\"text\":", "\"id\":", "\"url\":",
               "null", "123", "\\", "\\ud800"],
    ".rss": ["<?xml version='1.0'?>", "<rss version='2.0'>", "</rss>", "<channel>", "</channel>",
             "<item>", "</item>", "<title>", "</title>", "<description>", "</description>",
             "<pubDate>", "</pubDate>", "Mon, 99 Foo 2024", "<link>", "</link>", "<guid>",
             "&lt;p&gt;", "<![CDATA[", "]]>", "&undefined;", "<!DOCTYPE x [<!ENTITY e 'ee'>]>",
             "&e;"],
    ".atom": ["<feed xmlns='http://www.w3.org/2005/Atom'>", "</feed>", "<entry>", "</entry>",
              "<content type='html'>", "</content>", "<summary>", "</summary>", "<updated>",
              "2024-02-30T25:61:00Z", "</updated>", "<id>", "</id>", "<title>", "</title>"],
    ".xml": ["<?xml version='1.0'?>", "<rss>", "<feed>", "<rdf:RDF>", "<item>", "<x>", "</x>",
             "<title>", "</title>"],
}
SNIPPETS[".htm"] = SNIPPETS[".html"]
SNIPPETS[".markdown"] = SNIPPETS[".md"]

words = st.text(st.characters(codec="utf-8"), max_size=40)  # the utf-8 codec has no surrogates


@st.composite
def soup(draw: st.DrawFn, suffix: str) -> bytes:
    """Bytes built from the format's syntax, prose, and invalid or hidden byte sequences."""
    pieces = st.one_of(
        st.sampled_from(SNIPPETS[suffix]).map(str.encode),
        words.map(str.encode),
        st.sampled_from(HOSTILE_BYTES),
        st.binary(max_size=16),
    )
    parts = draw(st.lists(pieces, max_size=60))
    repeat = draw(st.sampled_from([1, 1, 1, 50, 2000]))  # sometimes the same soup, much longer
    return b"".join(parts) * repeat


@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUPPORTED_SUFFIXES))
@FUZZ
def test_random_bytes_are_indexed_or_skipped(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = _folder(tmp_path) / f"random{suffix}"
    path.write_bytes(data)
    check_load(path)


@pytest.mark.parametrize("suffix", sorted(SNIPPETS))
def test_format_soup_is_indexed_or_skipped(tmp_path: Path, suffix: str) -> None:
    @given(data=soup(suffix))
    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    def run(data: bytes) -> None:
        path = _folder(tmp_path) / f"soup{suffix}"
        path.write_bytes(data)
        check_load(path)

    run()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=30,
)
fields = st.sampled_from(["id", "url", "title", "published", "text", "extra", "articles"])
records = st.dictionaries(fields, json_values | st.text(max_size=200), max_size=6)


@given(value=st.one_of(json_values, records, st.lists(records, max_size=5),
                       st.fixed_dictionaries({"articles": st.lists(records, max_size=5)})))
@FUZZ
def test_any_json_value_is_indexed_or_skipped(tmp_path: Path, value: object) -> None:
    path = _folder(tmp_path) / "value.json"
    path.write_text(json.dumps(value), encoding="utf-8")
    got = check_load(path)
    if isinstance(got, Loaded):
        # Only records with non-empty text become articles; every other record is a problem.
        items = value if isinstance(value, list) else [value]
        if isinstance(value, dict) and isinstance(value.get("articles"), list):
            items = value["articles"]
        assert len(got.articles) + len(got.problems) == len(items)


@given(junk=st.lists(st.one_of(records, json_values), max_size=6), at=st.integers(0, 6),
       wrapped=st.booleans())
@FUZZ
def test_a_good_record_survives_junk_records(tmp_path: Path, junk: list[object], at: int,
                                             wrapped: bool) -> None:
    """Records that are not objects, or lack text, are reported; the good one still loads."""
    good = {"id": "good", "title": "Harbour", "text": "The harbour reopened on Monday."}
    items = [*junk[:at], good, *junk[at:]]
    path = _folder(tmp_path) / "records.json"
    path.write_text(json.dumps({"articles": items} if wrapped else items), encoding="utf-8")
    got = check_load(path)
    assert isinstance(got, Loaded), got
    assert f"{path}#good" in {a.key for a in got.articles}
    assert len(got.articles) + len(got.problems) == len(items)


@given(lines=st.lists(st.one_of(records.map(json.dumps), json_values.map(json.dumps),
                                st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                                        max_size=40)),
                      max_size=8))
@FUZZ
def test_json_lines_keep_good_lines(tmp_path: Path, lines: list[str]) -> None:
    """A bad line is reported and the good ones still load."""
    good = json.dumps({"id": "good", "text": "A good record that must survive its neighbours."})
    path = _folder(tmp_path) / "lines.jsonl"
    path.write_text("\n".join([*lines, good]) + "\n", encoding="utf-8")
    got = check_load(path)
    assert isinstance(got, Loaded)
    assert f"{path}#good" in {a.key for a in got.articles}


# -- fixed hostile cases ---------------------------------------------------------------------
@functools.cache
def _gzip_bomb(megabytes: int = 100) -> bytes:
    """100 MB of zeros in ~100 KB."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
        block = b"\0" * 1_000_000
        for _ in range(megabytes):
            gz.write(block)
    return out.getvalue()


@functools.cache
def _zip_bomb(megabytes: int = 100) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("article.txt", "w") as member:
        for _ in range(megabytes):
            member.write(b"A" * 1_000_000)
    return out.getvalue()


_LAUGHS = ("<!DOCTYPE r [<!ENTITY l0 'lol'>"
           + "".join(f"<!ENTITY l{i + 1} '{f'&l{i};' * 10}'>" for i in range(9)) + "]>")
_BLOWUP = "<!DOCTYPE r [<!ENTITY a '" + "a" * 20_000 + "'>]>"
_RSS = ("<?xml version='1.0'?>{dtd}<rss version='2.0'><channel><title>t</title><item>"
        "<title>Entity</title><description>{body}</description></item></channel></rss>")
PARA = "<p>The council approved the harbour budget after a long debate about the ferry.</p>"


def hostile_cases() -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(file name, a maker of its bytes): made lazily, inside the test."""
    for name, text in _hostile_texts():
        yield name, functools.partial(str.encode, text)
    yield "nul-early.txt", lambda: b"Headline\n\0\0\0 text"
    yield "utf16.txt", lambda: "Headline\nSome text.".encode("utf-16")
    yield "latin1.txt", lambda: "Headline\nCaf\xe9 cr\xe8me.".encode("latin-1")
    yield "lone-surrogate.txt", lambda: "Headline\nbad \ud800 text".encode("utf-8",
                                                                          "surrogatepass")
    for suffix in (".txt", ".html", ".json", ".jsonl", ".md", ".rss", ".xml"):
        yield f"gzip-bomb{suffix}", _gzip_bomb
        yield f"zip-bomb{suffix}", _zip_bomb


def _hostile_texts() -> Iterator[tuple[str, str]]:
    yield "deep.html", ("<html><body>" + "<div>" * 100_000 + PARA + "</div>" * 100_000)
    yield "deep-text.html", ("<html><body>" + ("<div>" + PARA) * 5000 + "</div>" * 5000)
    yield "unclosed.html", ("<html><body>" + "<b><i>" * 50_000 + PARA * 5)
    yield "comments.html", ("<html><body>" + "<!--" * 100_000 + PARA)
    yield "deep.json", ("[" * 200_000 + "]" * 200_000)
    yield "deep-field.json", ('{"text": "ok", "x": ' + "[" * 50_000 + "]" * 50_000 + "}")
    yield "deep.jsonl", ("{\"a\":" * 100_000 + "1" + "}" * 100_000 + "\n")
    yield "long-number.jsonl", ('{"text": "x", "id": ' + "9" * 100_000 + "}\n")
    yield "huge-line.txt", ("Headline\n" + "word " * 600_000)
    yield "huge-word.txt", ("Headline\n" + "x" * 2_000_000)
    yield "abbreviations.txt", ("Headline\n" + "Mr. " * 200_000)
    yield "initials.txt", ("Headline\n" + "A. " * 200_000)
    yield "brackets.md", ("# Title\n" + "[" * 300_000)
    yield "links.md", ("# Title\n" + "[a](" * 100_000)
    yield "marks.md", ("# Title\n" + "*_`" * 200_000)
    yield "nul-late.txt", ("Headline\n" + "text " * 3000 + "\0 more.")
    yield "accent-split.txt", "Headline\nThe cafe\u200d\u0301 and the re\x00\u0301sume\u0301."
    yield "only-hidden.txt", ("\u200b\u202e\ufeff\u2060 \n\t" * 1000)
    yield "empty.json", ""
    yield "whitespace.jsonl", " \n\n\t\n"
    yield "laughs.rss", _RSS.format(dtd=_LAUGHS, body="&l9;")
    yield "laughs.xml", _RSS.format(dtd=_LAUGHS, body="&l9;")
    yield "blowup.rss", _RSS.format(dtd=_BLOWUP, body="&a;" * 50_000)
    yield "laughs.html", f"{_LAUGHS}<html><body>{PARA}&l9;</body></html>"
    yield "many-entries.rss", ("<rss version='2.0'><channel><title>x</title>" + "".join(
        f"<item><guid>g{i}</guid><description>Story {i}.</description></item>"
        for i in range(3000)) + "</channel></rss>")
    yield "nested-escaped.rss", _RSS.format(dtd="", body="&lt;div&gt;" * 50_000 + "x")


@pytest.mark.parametrize(("name", "make"), list(hostile_cases()),
                         ids=[name for name, _ in hostile_cases()])
def test_hostile_file_is_indexed_or_skipped(tmp_path: Path, name: str,
                                            make: Callable[[], bytes]) -> None:
    data = make()
    path = _folder(tmp_path) / name
    path.write_bytes(data)
    got = check_load(path)
    if "bomb" in name:
        # Never decompressed: compressed bytes are binary or not UTF-8, whatever the suffix.
        assert isinstance(got, str) and ("binary" in got or "UTF-8" in got), got
    if isinstance(got, Loaded):
        # Nothing expands an entity into the text: the index never holds more than the file.
        assert sum(len(a.text) for a in got.articles) <= len(data)
        assert "lollol" not in " ".join(a.text for a in got.articles)


def test_size_cap_skips_with_the_reason(tmp_path: Path) -> None:
    path = _folder(tmp_path) / "big.txt"
    path.write_text("Headline\n" + "word " * 1000, encoding="utf-8")
    reason = check_load(path, max_bytes=1000)
    assert isinstance(reason, str) and "limit" in reason


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records every request and serves a feed."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            body = _RSS.format(dtd="", body="FETCHED over the network.").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("suffix", [".rss", ".atom", ".xml"])
def test_a_feed_that_is_a_path_or_url_is_not_followed(
        tmp_path: Path, loopback_server: tuple[str, list[str]], suffix: str) -> None:
    """A feed file's text is parsed as a feed, never opened as a path or fetched as a URL."""
    secret = tmp_path / "secret.xml"
    secret.write_text(_RSS.format(dtd="", body="SECRET payroll figures."), encoding="utf-8")
    url, hits = loopback_server
    folder = _folder(tmp_path)
    for name, text in [("path", str(secret)), ("file-url", secret.as_uri()),
                       ("http-url", f"{url}/feed"), ("feed-url", f"feed:{url}/feed")]:
        path = folder / f"{name}{suffix}"
        path.write_text(text, encoding="utf-8")
        got = check_load(path)
        texts = " ".join(a.text for a in got.articles) if isinstance(got, Loaded) else ""
        assert "SECRET" not in texts and "FETCHED" not in texts, (name, got)
    assert hits == []


def test_external_entities_are_not_resolved(tmp_path: Path,
                                            loopback_server: tuple[str, list[str]]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET payroll figures.", encoding="utf-8")
    url, hits = loopback_server
    folder = _folder(tmp_path)
    for name, target in [("file", secret.as_uri()), ("http", f"{url}/dtd")]:
        dtd = f"<!DOCTYPE r [<!ENTITY x SYSTEM '{target}'>]>"
        html = f"{dtd}<html><body>{PARA}<p>see &x; here</p></body></html>"
        for suffix, text in [(".rss", _RSS.format(dtd=dtd, body="see &x; here")),
                             (".html", html)]:
            path = folder / f"{name}{suffix}"
            path.write_text(text, encoding="utf-8")
            got = check_load(path)
            if isinstance(got, Loaded):
                assert "SECRET" not in " ".join(a.text for a in got.articles)
    assert hits == []


# -- the whole ingest run --------------------------------------------------------------------
GOOD = "Harbour reopens\nThe harbour reopened on Monday after the storm. Ferries are running."


@given(batch=st.lists(st.sampled_from(sorted(SNIPPETS)).flatmap(
    lambda suffix: st.tuples(st.just(suffix), soup(suffix))), min_size=1, max_size=5))
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_ingest_run_accounts_for_every_file(tmp_path: Path,
                                            batch: list[tuple[str, bytes]]) -> None:
    """Real ingest into real Chroma: each file is indexed or skipped, good files get through."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        root = Path(scratch)
        folder = root / "in"
        folder.mkdir()
        (folder / "good.txt").write_text(GOOD, encoding="utf-8")
        names = [folder / "good.txt"]
        for i, (suffix, data) in enumerate(batch):
            names.append(folder / f"f{i}{suffix}")
            names[-1].write_bytes(data)
        (folder / "bomb.html").write_bytes(_gzip_bomb())
        names.append(folder / "bomb.html")

        ingestor = Ingestor(Settings(data_dir=root / "data", embedding_backend="fake"),
                            FakeEmbedder())
        try:
            report = ingestor.run([folder])
            manifest = ingestor._manifest()
            indexed = {str(m["path"]) for m in manifest.values()}
            for path in names:
                where = str(path.resolve())
                assert (where in indexed) != (where in report.skipped_reasons), where
            assert str((folder / "good.txt").resolve()) in indexed
            assert str((folder / "bomb.html").resolve()) in report.skipped_reasons
            skipped_files = sum(1 for p in names if str(p.resolve()) in report.skipped_reasons)
            assert report.skipped >= skipped_files
            assert report.added + report.unchanged == len(manifest)
            chunks = ingestor.store.chunks.get(include=["metadatas"])
            assert {m["article_id"] for m in chunks["metadatas"] or []} == \
                {m["article_id"] for m in manifest.values()}

            again = ingestor.run([folder])
            assert (again.added, again.updated, again.chunks_added) == (0, 0, 0)
        finally:
            ingestor.store.client.close()
