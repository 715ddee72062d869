"""Turning one file into news articles, or a plain reason why it cannot be ingested."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingest.plain_text import take_date_line, without_promo
from ingest.text import clean_text
from ingest.wrapping import unwrap

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl",
                      ".rss", ".atom", ".xml", ".pdf")


class Skip(Exception):
    """A whole file cannot be ingested; the message says why in one sentence."""


@dataclass
class Article:
    """One article as it enters the index."""

    key: str  # what the manifest tracks: a file path, or path#record-id for records
    path: str  # the file (or URL) it came from, to prune when the file is gone
    text: str
    headline: str
    source: str  # what a citation shows: a URL when known, else the path
    published: dt.date | None = None
    outlet: str = ""  # the publisher's name, when the file gives it


@dataclass
class Loaded:
    """What one file gave: its articles, and reasons for the parts that were skipped."""

    articles: list[Article] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


_PDF_DATE = re.compile(r"D:(\d{4})(\d{2})(\d{2})")  # PDF dates: D:YYYYMMDDHHmmSS+hh'mm'


def parse_date(value: Any) -> dt.date | None:
    """A date from ISO strings, RFC 822 feed dates, timestamps or struct_time; else None."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)):
        try:
            return dt.datetime.fromtimestamp(float(value), tz=dt.UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    if hasattr(value, "tm_year"):
        try:
            return dt.date(value.tm_year, value.tm_mon, value.tm_mday)
        except ValueError:
            return None
    text = str(value).strip()
    pdf = _PDF_DATE.match(text)
    if pdf:
        try:
            return dt.date(int(pdf[1]), int(pdf[2]), int(pdf[3]))
        except ValueError:
            return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        pass
    words = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b|,", " ", text).split()
    for form in _WORDED_DATES:  # "2 July 2007", "July 2, 2007", "Jul 2nd 2007"
        try:
            return dt.datetime.strptime(" ".join(words[:3]), form).date()
        except ValueError:
            continue
    return None


_WORDED_DATES = ("%d %B %Y", "%B %d %Y", "%d %b %Y", "%b %d %Y")


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, or Skip with the reason (too big, empty)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise Skip(f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")
    data = path.read_bytes()
    if not data.strip():
        raise Skip("file is empty")
    return data


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """``data`` as text (UTF-8 unless a server named another charset), or Skip with why not."""
    head = data[:8192]
    if b"\x00" in head and not (head.startswith((b"\xff\xfe", b"\xfe\xff"))):
        raise Skip("file is binary, not text")
    if encoding and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown charset label: UTF-8 is the best guess left
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Skip(f"file is not valid UTF-8 (byte {exc.start})") from exc


def _article(key: str, path: Path, text: str, headline: str, source: str,
             published: dt.date | None, untitled: str = "", outlet: str = "") -> Article:
    """An Article; ``untitled`` stands in for a missing headline.

    A one-article file passes its name. Records and feed entries share a file, so its name says
    nothing about each of them and would only blur their embeddings.
    """
    text = clean_text(text)
    headline = clean_text(headline).replace("\n", " ")[:300]
    if not text:
        raise Skip("no article text found")
    return Article(key=key, path=str(path), text=text, headline=headline or untitled,
                   source=source, published=published,
                   outlet=clean_text(outlet).replace("\n", " ")[:120])


def load_txt(path: Path, raw: str) -> Loaded:
    """Plain text: the first non-empty line is the headline, the rest is the article."""
    lines = clean_text(raw).split("\n", 1)
    headline, body = lines[0], lines[1] if len(lines) > 1 else ""
    if not body.strip():
        body, headline = headline, ""
    body, published = take_date_line(body, parse_date)
    return Loaded([_article(str(path), path, without_promo(body), headline, str(path),
                            published, path.stem)])


# Bounded lengths: an unclosed "[" or "(" must not make the scan quadratic.
_MD_LINK = re.compile(r"!?\[([^\]\n]{0,1000})\]\([^)\n]{0,2000}\)")
_MD_MARKS = re.compile(r"(^|\s)[*_]{1,3}|[*_]{1,3}(?=\s|[.,;:!?]|$)|`+")
_MD_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def load_md(path: Path, raw: str) -> Loaded:
    """Markdown: optional front matter (title, date), a '#' headline, markup stripped."""
    published: dt.date | None = None
    headline = ""
    front = _MD_FRONT.match(raw.replace("\r\n", "\n"))
    if front:
        for line in front.group(1).splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "title":
                headline = value.strip().strip("\"'")
            elif name.strip().lower() in ("date", "published"):
                published = parse_date(value.strip().strip("\"'"))
        raw = raw[front.end():]
    lines = []
    for line in raw.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            title = stripped.lstrip("#").strip()
            if not headline:
                headline = title
                continue
            line = title
        line = re.sub(r"^\s*(?:[-*+]|\d+\.|>)\s+", "", line)
        lines.append(_MD_MARKS.sub(r"\1", _MD_LINK.sub(r"\1", line)))
    body = without_promo("\n".join(lines))
    if published is None:
        body, published = take_date_line(body, parse_date)
    return Loaded([_article(str(path), path, body, headline, str(path), published, path.stem)])


def load_html(path: Path, raw: str) -> Loaded:
    """HTML: the article text via trafilatura, menus and other boilerplate dropped."""
    import trafilatura

    doc = trafilatura.bare_extraction(raw, with_metadata=True, include_comments=False,
                                      favor_precision=True)
    if doc is None:
        raise Skip("no article text found in the HTML")
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = data.get("text") or ""
    if not text.strip():
        raise Skip("no article text found in the HTML")
    source = data.get("url") or str(path)
    return Loaded([_article(str(path), path, text, data.get("title") or "", source,
                            parse_date(data.get("date")), path.stem,
                            outlet=data.get("sitename") or "")])


class NewsRecord(BaseModel):
    """One JSON news record: ``text`` is required, other known fields are optional."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    url: str | None = None
    title: str | None = None
    published: str | None = None
    # The publisher's name; news datasets call it source, publisher, outlet or site_name.
    outlet: str | None = Field(default=None, validation_alias=AliasChoices(
        "outlet", "publisher", "source", "site_name"))
    text: str

    @field_validator("outlet", mode="before")
    @classmethod
    def _outlet_name(cls, value: Any) -> Any:
        if isinstance(value, dict):  # {"id": ..., "name": "Reuters"} as NewsAPI writes it
            value = value.get("name")
        return value if isinstance(value, str) else None

    @field_validator("id", "published", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value


def _record_article(path: Path, record: NewsRecord, position: int) -> Article:
    rid = record.id or record.url or f"#{position}"
    return _article(f"{path}#{rid}", path, record.text, record.title or "",
                    record.url or f"{path}#{rid}", parse_date(record.published),
                    outlet=record.outlet or "")


def _records(path: Path, items: Iterator[tuple[int, Any]]) -> Loaded:
    loaded = Loaded()
    for position, item in items:
        try:
            loaded.articles.append(_record_article(path, NewsRecord.model_validate(item),
                                                   position))
        except ValidationError as exc:
            where = exc.errors()[0].get("loc") or ()
            loaded.problems.append(f"record {position}: missing or invalid {where[0]!s}" if where
                                   else f"record {position}: not a JSON object")
        except Skip as exc:
            loaded.problems.append(f"record {position}: {exc}")
    if not loaded.articles:
        raise Skip("no valid news records: " + "; ".join(loaded.problems[:3]))
    return loaded


def load_jsonl(path: Path, raw: str) -> Loaded:
    """JSON Lines: one record a line; a malformed line is reported and the rest go on."""
    bad: list[str] = []

    def items() -> Iterator[tuple[int, Any]]:
        for number, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except (ValueError, RecursionError):  # ValueError: also numbers too long to parse
                bad.append(f"line {number}: malformed JSON")

    try:
        loaded = _records(path, items())
    except Skip as exc:
        raise Skip("; ".join(bad[:3] + [str(exc)])) from exc
    loaded.problems = bad + loaded.problems
    return loaded


def load_json(path: Path, raw: str) -> Loaded:
    """JSON: one record, a list of records, or an object with a list under 'articles'."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        if "\n{" in raw:  # JSON Lines saved as .json
            return load_jsonl(path, raw)
        raise Skip(f"malformed JSON ({exc.__class__.__name__})") from exc
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    items = data if isinstance(data, list) else [data]
    return _records(path, iter(enumerate(items, 1)))


def _html_to_text(fragment: str) -> str:
    import lxml.html

    try:
        return str(lxml.html.fromstring(fragment).text_content()) if fragment.strip() else ""
    except Exception:  # lxml raises several types on junk markup
        return re.sub(r"<[^>]+>", " ", fragment)


def load_feed(path: Path, raw: str) -> Loaded:
    """RSS/Atom: one article per entry, with its link and published date."""
    import feedparser

    # A stream, never the string: feedparser treats a string that looks like a URL or a path
    # as one and fetches or opens it, so a one-line "feed" could pull in any local file.
    feed = feedparser.parse(io.BytesIO(raw.encode("utf-8")))
    if not feed.entries:
        if feed.get("bozo"):
            raise Skip("malformed feed: no entries could be read")
        raise Skip("feed has no entries")
    loaded = Loaded()
    for position, entry in enumerate(feed.entries, 1):
        content = entry.get("content") or []
        body = content[0].get("value", "") if content else entry.get("summary", "")
        link = entry.get("link") or ""
        rid = entry.get("id") or link or f"#{position}"
        try:
            loaded.articles.append(_article(
                f"{path}#{rid}", path, _html_to_text(body), entry.get("title", ""),
                link or f"{path}#{rid}",
                parse_date(entry.get("published_parsed") or entry.get("updated_parsed")),
            ))
        except Skip as exc:
            loaded.problems.append(f"entry {position}: {exc}")
    if not loaded.articles:
        raise Skip("feed entries have no text")
    return loaded


def _xml(path: Path, raw: str) -> Loaded:
    head = raw[:2000].lower()
    if "<rss" in head or "<feed" in head or "<rdf" in head:
        return load_feed(path, raw)
    raise Skip("XML file is not an RSS or Atom feed")


def load_pdf(path: Path, data: bytes) -> Loaded:
    """PDF: the text of every page; the headline from the metadata title or the first line."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on odd files are noise
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise Skip("PDF is encrypted with a password, so its text cannot be read")
        info = reader.metadata
        title = str(info.title or "") if info is not None else ""
        created = _pdf_field(info, "/CreationDate")
        pages = [page.extract_text() or "" for page in reader.pages]
    except Skip:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files, not only PdfReadError
        raise Skip("file is not a readable PDF (it is damaged or not a PDF at all)") from exc
    pages = [text for text in map(clean_text, pages) if text]
    if not pages:
        raise Skip("PDF has no text to extract (it may be scanned images)")
    headline = title.strip()
    if not headline:
        headline, _, rest = pages[0].partition("\n")
        if rest.strip() or len(pages) > 1:
            pages[0] = rest
    # A PDF breaks every line of a paragraph: rejoin them, or each would count as a sentence.
    text = "\n\n".join(unwrap(page) for page in pages if page.strip())
    return Loaded([_article(str(path), path, text, headline, str(path), parse_date(created),
                            path.stem)])


def _pdf_field(info: Any, name: str) -> str:
    """One entry of a PDF's document information, as text ("" when missing)."""
    value: Any = info.get(name) if info is not None else None
    if hasattr(value, "get_object"):
        value = value.get_object()
    return str(value) if value else ""


def _opens_without_password(reader: Any) -> bool:
    """Whether an encrypted PDF opens with the empty password (locked only against editing)."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # pypdf needs the optional 'cryptography' package for AES: treat as locked
        return False


LOADERS: dict[str, Callable[[Path, str], Loaded]] = {
    ".txt": load_txt, ".md": load_md, ".markdown": load_md, ".html": load_html,
    ".htm": load_html, ".json": load_json, ".jsonl": load_jsonl, ".rss": load_feed,
    ".atom": load_feed, ".xml": _xml,
}


def load_file(path: Path, max_bytes: int) -> Loaded:
    """Load one file by its suffix; raise Skip with a plain reason when it cannot be used."""
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise Skip(f"unsupported file type '{path.suffix or path.name}'")
    return load_data(path, path.suffix.lower(), read_bytes(path, max_bytes))


def load_data(path: Path, suffix: str, data: bytes, encoding: str | None = None) -> Loaded:
    """Load ``data`` as the format ``suffix`` names (binary PDFs first, then text formats)."""
    try:
        if suffix == ".pdf":
            return load_pdf(path, data)
        return LOADERS[suffix](path, decode_text(data, encoding))
    except Skip:
        raise
    except RecursionError as exc:
        raise Skip("file is nested too deeply to parse") from exc
    except Exception as exc:  # a parser library failing on hostile input is a skip, not a crash
        raise Skip(f"could not be parsed ({exc.__class__.__name__})") from exc
