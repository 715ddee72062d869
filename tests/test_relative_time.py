"""'This week', 'yesterday', 'in March': windows resolved against the date a question is asked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.retrieval.relative_time import window_of
from rag.settings import Settings

D = dt.date


@pytest.mark.parametrize(("question", "today", "start"), [
    ("What happened this week?", D(2026, 12, 3), D(2026, 11, 30)),  # a Thursday: from Monday
    ("Who resigned yesterday?", D(2026, 12, 1), D(2026, 11, 30)),
    ("What did they say last week?", D(2026, 12, 3), D(2026, 11, 23)),
    ("How many were recalled last month?", D(2026, 1, 5), D(2025, 12, 1)),
    ("What changed this year?", D(2026, 3, 9), D(2026, 1, 1)),
    ("What was decided in March?", D(2026, 2, 10), D(2025, 3, 1)),  # the latest March past
    ("What was decided in March?", D(2026, 4, 10), D(2026, 3, 1)),
    ("How long was it halted in August 2025?", D(2026, 12, 3), D(2025, 8, 1)),
    ("What has happened since Sept.?", D(2026, 12, 3), D(2026, 9, 1)),
    ("Any news in the past 3 days?", D(2026, 12, 3), D(2026, 11, 30)),
    ("Any news over the last two weeks?", D(2026, 12, 3), D(2026, 11, 19)),
])
def test_time_words_become_a_window_up_to_the_day_asked(question: str, today: dt.date,
                                                       start: dt.date) -> None:
    window = window_of(question, today)
    assert window is not None and (window.start, window.end) == (start, today)


@pytest.mark.parametrize("question", ["May I ask what the ferry costs?", "What is the fare?",
                                      "Who won the 2019 race?", "What did the mayor say?"])
def test_questions_without_time_words_have_no_window(question: str) -> None:
    assert window_of(question, D(2026, 12, 3)) is None


FERRY = [
    ("2023-05-02", "Ferry operator raises fares by 4 percent",
     "NORDHAVN — The harbour ferry operator Tidewater Lines said on Tuesday it would raise "
     "single fares by 4 percent, to 3.10 crowns, from June. Managing director Ilse Brandt "
     "blamed fuel costs."),
    ("2026-06-10", "Ferry operator adds a night crossing",
     "NORDHAVN — Tidewater Lines announced on Wednesday a new night crossing to Skarvik, "
     "leaving the harbour at 23:40 on Fridays and Saturdays from July. Ilse Brandt said "
     "summer demand had outgrown the timetable."),
    ("2026-11-30", "Ferry operator orders an electric vessel",
     "NORDHAVN — Tidewater Lines announced on Monday it has ordered a battery-electric "
     "ferry from the Halvorsen yard, to enter service in 2028. Ilse Brandt said the vessel "
     "would cut the operator's emissions by a third."),
]
QUESTION = "What did the Tidewater Lines ferry operator announce {when}?"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    folder = tmp_path_factory.mktemp("relative-time")
    corpus = folder / "ferry.jsonl"
    corpus.write_text("\n".join(json.dumps({"id": f"f{i}", "published": day, "title": title,
                                            "text": text, "url": f"https://harbour.example/{i}"})
                                for i, (day, title, text) in enumerate(FERRY)) + "\n")
    assistant = Assistant(Settings(data_dir=Path(folder) / "data", answerer="extractive"))
    assistant.ingest([corpus])
    return assistant


@pytest.mark.parametrize(("when", "today", "expected", "published"), [
    ("this week", "2026-12-03", "battery-electric", D(2026, 11, 30)),
    ("this week", "2026-06-12", "night crossing", D(2026, 6, 10)),
    ("yesterday", "2026-12-01", "battery-electric", D(2026, 11, 30)),
    ("yesterday", "2026-06-11", "night crossing", D(2026, 6, 10)),
    ("in June", "2026-08-01", "night crossing", D(2026, 6, 10)),
])
def test_the_answer_comes_from_the_window(assistant: Assistant, when: str, today: str,
                                          expected: str, published: dt.date) -> None:
    answer = assistant.ask(QUESTION.format(when=when), filters={"today": today})
    assert not answer.refused, answer.text
    assert expected in answer.text
    assert {c.published for c in answer.citations} == {published}
    assert answer.as_of == published


@pytest.mark.parametrize(("when", "today", "newest"), [
    ("this week", "2026-12-20", "30 November 2026"),
    ("yesterday", "2026-06-20", "10 June 2026"),
    ("last month", "2024-01-15", "2 May 2023"),  # nothing from December 2023 on
])
def test_an_empty_window_is_refused_with_the_newest_date(assistant: Assistant, when: str,
                                                         today: str, newest: str) -> None:
    answer = assistant.ask(QUESTION.format(when=when), filters={"today": today})
    assert answer.refused and not answer.citations
    assert f"nothing from {when} (" in answer.text
    assert f"The newest article on this is from {newest}." in answer.text


def test_a_reference_date_without_time_words_changes_nothing(assistant: Assistant) -> None:
    plain = assistant.ask("What did Tidewater Lines order from the Halvorsen yard?")
    dated = assistant.ask("What did Tidewater Lines order from the Halvorsen yard?",
                          filters={"today": "2023-06-01"})
    assert plain.text == dated.text and "battery-electric" in plain.text


@pytest.mark.parametrize(("since", "until", "start", "end"), [
    ("since March", "", "2026-03-01", None),
    ("March 2025", "March 2025", "2025-03-01", "2025-03-31"),
    ("last week", "last week", "2026-11-23", "2026-11-29"),  # Monday to Sunday
    ("last year", "yesterday", "2025-01-01", "2026-12-02"),
    ("2025-03-01", "2025-04-01", "2025-03-01", "2025-04-01"),
    ("", "", None, None),
])
def test_the_page_date_fields_take_words(since: str, until: str, start: str | None,
                                         end: str | None) -> None:
    from rag.chat.handlers import filters_from

    wanted = filters_from("", since, until, D(2026, 12, 3))
    assert (wanted["published_from"], wanted["published_to"]) == (start, end)


def test_date_words_that_name_no_day_get_one_plain_sentence() -> None:
    from rag.assistant import _filters
    from rag.chat.handlers import filters_from
    from rag.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"^The filters are not valid: .*\.\)?$"):
        _filters(filters_from("", "soon", "", D(2026, 12, 3)))
