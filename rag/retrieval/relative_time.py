"""'Today', 'this week', 'last month', 'in March': the dates a question's own words point to.

A reader asks about "this week" and means the days around the date they ask; an answer from an
article three years old is wrong however well it matches. The phrase is resolved against a
reference date (the request's ``today``, else the real one) into a published-date window that
retrieval applies like any other date filter.

The window runs from the start of the time named to the reference date. What happened
"yesterday" or "in August 2025" is reported then or later (a trial halted in August is
described in November's article too), so the phrase only rules out articles published before
it, and articles after the reference date.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): number for number, name in enumerate(calendar.month_abbr)
                if name})
_MONTHS["sept"] = 9
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "a": 1, "a couple of": 2, "a few": 3}
_COUNT = r"\d{1,3}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True))

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(rx, re.I)) for name, rx in [
    ("past", rf"\b(?:in |over |during )?(?:the )?(?:past|last) (?P<n>{_COUNT}) "
             r"(?P<unit>days?|weeks?|months?)\b"),
    ("today", r"\b(?:today|so far today|this morning|this afternoon|tonight)\b"),
    ("yesterday", r"\byesterday\b"),
    ("this_week", r"\bthis week\b"),
    ("last_week", r"\blast week\b"),
    ("this_month", r"\bthis month\b"),
    ("last_month", r"\blast month\b"),
    ("this_year", r"\bthis year\b"),
    ("last_year", r"\blast year\b"),
    ("since_month", rf"\bsince (?P<month>{_MONTH})\.?(?: (?P<year>(?:19|20)\d\d))?\b"),
    ("in_month", rf"\b(?:in|during) (?P<month>{_MONTH})\.?(?: (?P<year>(?:19|20)\d\d))?\b"),
]]


@dataclass(frozen=True)
class Window:
    """An inclusive range of publication dates, and the words of the question it came from."""

    start: dt.date
    end: dt.date
    phrase: str

    def describe(self) -> str:
        """The window in words: 'this week (30 November to 3 December 2026)'."""
        if self.start == self.end:
            return f"{self.phrase} ({long_date(self.start)})"
        return f"{self.phrase} ({long_date(self.start)} to {long_date(self.end)})"


def long_date(day: dt.date) -> str:
    """'3 December 2026'."""
    return f"{day.day} {calendar.month_name[day.month]} {day.year}"


def _latest_month(month: int, year: str | None, today: dt.date) -> int:
    """The year of the month meant: given, else the latest one not after today."""
    if year:
        return int(year)
    return today.year if month <= today.month else today.year - 1


def _start(name: str, match: re.Match[str], today: dt.date) -> dt.date:
    if name == "past":
        count = match.group("n").lower()
        n = int(count) if count.isdigit() else _NUMBERS[count]
        unit = match.group("unit").lower().rstrip("s")
        return today - dt.timedelta(days=n * {"day": 1, "week": 7, "month": 31}[unit])
    monday = today - dt.timedelta(days=today.weekday())
    first = today.replace(day=1)
    starts = {
        "today": today, "yesterday": today - dt.timedelta(days=1),
        "this_week": monday, "last_week": monday - dt.timedelta(days=7),
        "this_month": first, "last_month": (first - dt.timedelta(days=1)).replace(day=1),
        "this_year": dt.date(today.year, 1, 1), "last_year": dt.date(today.year - 1, 1, 1),
    }
    if name in starts:
        return starts[name]
    month = _MONTHS[match.group("month").lower()]
    return dt.date(_latest_month(month, match.group("year"), today), month, 1)


def window_of(question: str, today: dt.date) -> Window | None:
    """The publication window the question's time words name, resolved against ``today``."""
    for name, pattern in _PATTERNS:
        match = pattern.search(question)
        if match is not None:
            return Window(_start(name, match, today), today, match.group(0).strip())
    return None


def _end(name: str, start: dt.date, today: dt.date) -> dt.date:
    """The last day of the period a phrase names, for 'published to' ('March': 31 March)."""
    if name in ("in_month", "last_month"):
        last = calendar.monthrange(start.year, start.month)[1]
        return min(start.replace(day=last), today)
    if name == "last_week":
        return start + dt.timedelta(days=6)
    if name == "yesterday":
        return start
    if name == "last_year":
        return dt.date(start.year, 12, 31)
    return today


def day_in_words(text: str, today: dt.date, *, end: bool = False) -> dt.date | None:
    """A date field's words as a day: 'since March', 'March 2025', 'last week', '2025-03-01'.

    The first day of the period named, or with ``end`` its last day (never after ``today``);
    None when the words name no day or period.
    """
    text = re.sub(r"^since\s+", "", text.strip(), flags=re.I)  # a "from" field's own word
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    for phrase in (text, f"in {text}"):
        for name, pattern in _PATTERNS:
            match = pattern.fullmatch(phrase)
            if match is not None:
                start = _start(name, match, today)
                return _end(name, start, today) if end else start
    return None
