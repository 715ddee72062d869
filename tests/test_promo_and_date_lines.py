"""Text saved from a web page: its promo lines are dropped and a ``Date:`` line dates it
(ingest.plain_text), for .txt and .md as trafilatura does for HTML."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ingest.loaders import load_file, parse_date
from ingest.plain_text import is_promo

STORY = """Harbour board agrees to hire crane drivers

Date: 2 July 2024

Support Vellan Gazette

Dockers at Port Vellan returned to work on Monday after the harbour board agreed to hire
forty more crane drivers, the union said.

Subscribe to our newsletter

Support for the deal grew among the pilots
Read more: Ferry timetable changes

The strike had lasted eleven days.
Advertisement
"""


@pytest.mark.parametrize("line", [
    "Support TwoCircles", "Subscribe to our newsletter", "Advertisement", "Follow us on X",
    "Read more: Ferry timetable changes", "Sign up for our newsletter", "Share this article",
    "Related stories", "Donate today", "Click here to subscribe"])
def test_promo_lines_are_recognised(line: str) -> None:
    assert is_promo(line)


@pytest.mark.parametrize("line", [
    "Support for the deal grew among the pilots", "Supporters gathered outside the gates",
    "Support grew among farmers", "Read more about the strike in our report.",
    "Subscribers will pay two crowns more from May.", "Share this story with friends.",
    "The union said it would support the board."])
def test_story_lines_are_kept(line: str) -> None:
    assert not is_promo(line)


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_a_saved_page_loses_its_promo_lines_and_takes_its_date(tmp_path: Path,
                                                               suffix: str) -> None:
    path = tmp_path / f"story{suffix}"
    path.write_text(STORY if suffix == ".txt" else "# " + STORY)
    [article] = load_file(path, 100_000).articles
    assert article.headline == "Harbour board agrees to hire crane drivers"
    assert article.published == dt.date(2024, 7, 2)
    for gone in ("Support Vellan Gazette", "Subscribe", "Read more", "Advertisement", "Date:"):
        assert gone not in article.text
    for kept in ("forty more crane drivers", "Support for the deal grew", "eleven days"):
        assert kept in article.text


def test_a_date_line_deep_in_the_story_is_part_of_it(tmp_path: Path) -> None:
    path = tmp_path / "late.txt"
    path.write_text("Minutes of the board\n\nThe board met.\nIt voted.\nIt adjourned.\n"
                    "Date: 3 May 2024\n")
    [article] = load_file(path, 100_000).articles
    assert article.published is None and "Date: 3 May 2024" in article.text


@pytest.mark.parametrize(("text", "date"), [
    ("2 July 2007", dt.date(2007, 7, 2)), ("July 2, 2007", dt.date(2007, 7, 2)),
    ("Jul 2nd 2007", dt.date(2007, 7, 2)), ("2007-07-02", dt.date(2007, 7, 2)),
    ("Mon, 02 Jul 2007 10:00:00 GMT", dt.date(2007, 7, 2)), ("soon", None),
    ("31 February 2007", None)])
def test_dates_in_words_are_read(text: str, date: dt.date | None) -> None:
    assert parse_date(text) == date
