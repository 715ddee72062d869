"""Articles from an http(s) URL: one bounded GET, then the loader its content type names.

The URL stands where a file path would: it is the manifest key, the article's path and (for a
one-article page) the source a citation shows. A failure is a Skip with one sentence.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx

from ingest.loaders import SUPPORTED_SUFFIXES, Loaded, Skip, load_data

TIMEOUT_S = 20.0
USER_AGENT = "newsrag/0.1 (rag ingest; fetches one article for a local index)"

# Content type -> the suffix whose loader reads it.
_TYPES = {
    "text/html": ".html", "application/xhtml+xml": ".html",
    "application/rss+xml": ".rss", "application/atom+xml": ".atom",
    "application/rdf+xml": ".xml", "application/xml": ".xml", "text/xml": ".xml",
    "application/json": ".json", "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl", "application/x-jsonlines": ".jsonl",
    "text/plain": ".txt", "text/markdown": ".md", "text/x-markdown": ".md",
    "application/pdf": ".pdf",
}
# Types that say little: a known suffix in the URL says more (.md served as text/plain).
_VAGUE = {"", "application/octet-stream", "binary/octet-stream", "text/plain"}


def is_url(source: str | Path) -> bool:
    """Whether an ingest argument is an http(s) URL rather than a path."""
    return isinstance(source, str) and source[:8].lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class Fetched:
    """What a server sent: where it ended up (after redirects), its type and its bytes."""

    url: str
    content_type: str
    encoding: str | None
    data: bytes


def fetch(url: str, max_bytes: int, timeout: float = TIMEOUT_S) -> Fetched:
    """GET ``url`` (redirects followed, at most ``max_bytes``, within ``timeout``), or Skip."""
    headers = {"User-Agent": USER_AGENT}
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(follow_redirects=True, timeout=timeout, headers=headers) as client, \
                client.stream("GET", url) as response:
            if response.is_error:
                raise Skip(f"{url} answered {response.status_code} "
                           f"{response.reason_phrase}".rstrip())
            too_large = f"{url} sends more than the {max_bytes:,}-byte limit"
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise Skip(too_large)
            data = bytearray()
            for chunk in response.iter_bytes():  # decoded: the cap also holds for gzip bombs
                data += chunk
                if len(data) > max_bytes:
                    raise Skip(too_large)
                if time.monotonic() > deadline:
                    raise Skip(f"could not fetch {url}: it took longer than {timeout:g} s")
            return Fetched(str(response.url), response.headers.get("content-type", ""),
                           response.charset_encoding, bytes(data))
    except httpx.TimeoutException as exc:
        raise Skip(f"could not fetch {url}: no answer within {timeout:g} s") from exc
    except httpx.TooManyRedirects as exc:
        raise Skip(f"could not fetch {url}: too many redirects") from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise Skip(f"{url} is not a valid http(s) URL") from exc
    except httpx.TransportError as exc:
        raise Skip(f"could not fetch {url}: {_why(exc)}") from exc


def _why(exc: Exception) -> str:
    """A transport error in a few plain words: "connection refused", "host not found"."""
    text = " ".join(str(exc).split())
    if re.search(r"name or service not known|nodename nor servname|name resolution|"
                 r"no address associated", text, re.I):
        return "host not found"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)[:200]
    return text[:1].lower() + text[1:] if text else exc.__class__.__name__


def format_of(url: str, content_type: str) -> str:
    """The loader suffix for what ``url`` sent: its content type, else the URL's suffix."""
    mime = content_type.split(";", 1)[0].strip().lower()
    named = PurePosixPath(urlsplit(url).path).suffix.lower()
    if mime in _VAGUE and named in SUPPORTED_SUFFIXES:
        return named
    if mime in _TYPES:
        return _TYPES[mime]
    if named in SUPPORTED_SUFFIXES:
        return named
    raise Skip(f"{url} sent content of type '{mime or 'unknown'}', which is not an article "
               "format this can read")


def load_url(url: str, max_bytes: int, timeout: float = TIMEOUT_S) -> Loaded:
    """The articles at ``url``, keyed and sourced by the URL, or Skip with the reason."""
    got = fetch(url, max_bytes, timeout)
    parts = urlsplit(got.url)
    # The loaders name articles after a path; this stand-in is then swapped for the URL.
    stand_in = Path(re.sub(r"[^\w.-]+", "_", PurePosixPath(parts.path).name or parts.hostname
                           or "page"))
    loaded = load_data(stand_in, format_of(got.url, got.content_type), got.data, got.encoding)
    name = str(stand_in)
    for art in loaded.articles:
        art.key = url + art.key[len(name):]  # a loader's key is its path, or path#record
        art.path = url
        if art.key == url:
            art.source = url
        elif art.source.startswith(name + "#"):
            art.source = url + art.source[len(name):]
    return loaded
