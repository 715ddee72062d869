"""What a plain-text or Markdown article carries besides its story: a date line, promo lines.

HTML goes through trafilatura, which drops a site's "Subscribe" and "Support us" blocks; text
saved from a page keeps them as lines of their own. Those lines, and a leading ``Date:`` line
(whose date becomes the article's published date), are taken out of the body here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

# A line of its own that asks the reader for something: "Support TwoCircles", "Subscribe to our
# newsletter", "Advertisement", "Follow us on X", "Read more: ...", "Share this article".
_PROMO = re.compile(
    r"^(?i:support|subscribe|donate|follow\s+us|sign\s+up(?:\s+(?:for|to))?|advertisement|"
    r"advertising|sponsored(?:\s+content)?|click\s+here|read\s+more|also\s+read|read\s+also|"
    r"share\s+this(?:\s+(?:article|story|page))?|share\s+on|related(?:\s+(?:articles?|stories|news|coverage))?|"
    r"continue\s+reading|download\s+(?:our|the)\s+app|get\s+the\s+app)"
    # then nothing, or what such a line goes on with: "us", "our ...", a name ("TwoCircles")
    r"(?:\s*[:|>»›→-]?\s*$|\s*[:|>»›→-]?\s+(?i:us|our|to|on|now|today|here|this|the)\b"
    r"|\s*[:|>»›→-]?\s+[A-Z0-9@#])")
_PROMO_MAX_WORDS = 7
# "Date: 2 July 2007", "Published: 2024-03-02", "Posted on: ..." among an article's first lines.
_DATE_LINE = re.compile(r"^\s*(?:date|dated|published(?:\s+on)?|posted(?:\s+on)?)\s*:\s*(.+?)\s*$",
                        re.I)
_DATE_LINE_WITHIN = 3  # non-empty lines from the top


def is_promo(line: str) -> bool:
    """Whether ``line`` is a standalone promotional line, not a sentence of the story."""
    text = line.strip()
    words = text.split()
    return (0 < len(words) <= _PROMO_MAX_WORDS and _PROMO.match(text) is not None
            and not re.search(r"[.!?\"”’]$", text.rstrip(" :»›→")))


def without_promo(body: str) -> str:
    """``body`` with its standalone promotional lines removed."""
    return "\n".join(line for line in body.split("\n") if not is_promo(line))


def take_date_line(body: str, parse: Callable[[str], dt.date | None]
                   ) -> tuple[str, dt.date | None]:
    """A leading ``Date:`` line's date, and ``body`` without that line (unchanged if none)."""
    lines = body.split("\n")
    seen = 0
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        seen += 1
        if seen > _DATE_LINE_WITHIN:
            break
        match = _DATE_LINE.match(line)
        if match and (date := parse(match.group(1))) is not None:
            return "\n".join(lines[:index] + lines[index + 1:]), date
    return body, None
