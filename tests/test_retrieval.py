"""Hybrid retrieval on the real model: names and numbers, filters, diversity across articles."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.errors import InvalidInput
from rag.records import Filters
from rag.settings import Settings

FILLER = ("Officials from several agencies met on Monday to discuss the schedule, the budget and "
          "the staffing of the regional transport authority, according to people familiar with "
          "the talks. ")


def records() -> list[dict[str, str]]:
    rows = [
        {"id": "flight", "url": "https://air.example/kl", "title": "Delayed flight lands safely",
         "published": "2022-05-02",
         "text": "Flight KL4391 landed in Oslo four hours late after a bird strike. " + FILLER},
        {"id": "budget", "url": "https://city.example/budget", "title": "City budget passes",
         "published": "2021-01-15",
         "text": "The council passed a budget of 812 million kroner for 2021. " + FILLER},
        {"id": "bridge", "url": "https://city.example/bridge", "title": "Bridge repairs begin",
         "published": "2023-07-09",
         "text": "Repairs on the old stone bridge began on Sunday, closing two lanes. " + FILLER},
    ]
    long_text = " ".join(
        f"Paragraph {i}: the transport authority discussed rail timetables and budget lines "
        f"for line {i}, and officials promised a decision soon." for i in range(60))
    rows.append({"id": "long", "url": "https://rail.example/long", "title": "Rail authority talks",
                 "published": "2023-02-01", "text": long_text})
    return rows


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    folder = tmp_path_factory.mktemp("retrieval")
    corpus = folder / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in records()))
    settings = Settings(data_dir=folder / "data", answerer="extractive")
    assistant = Assistant(settings)
    assert assistant.ingest([corpus]).added == 4
    return assistant


def test_an_exact_code_and_number_find_their_article(assistant: Assistant) -> None:
    assert assistant.retrieve("KL4391", k=1)[0].source == "https://air.example/kl"
    assert assistant.retrieve("812 million kroner", k=1)[0].source == "https://city.example/budget"


def test_one_long_article_cannot_fill_every_slot(assistant: Assistant) -> None:
    got = assistant.retrieve("transport authority budget rail timetables officials", k=4)
    per_article: dict[str, int] = {}
    for passage in got:
        per_article[passage.article_id] = per_article.get(passage.article_id, 0) + 1
    assert len(got) == 4
    assert max(per_article.values()) <= assistant.settings.max_chunks_per_article
    assert len(per_article) >= 2


def test_when_other_articles_run_out_the_best_article_fills_the_places(
        assistant: Assistant) -> None:
    # Three other articles hold one chunk each: after them, the long article's further chunks
    # come back instead of empty places, still in rank order.
    query = "transport authority budget rail timetables officials"
    got = assistant.retrieve(query, k=8)
    assert len(got) == 8
    assert {p.article_id for p in got} >= {p.article_id for p in assistant.retrieve(query, k=4)}
    assert [p.score for p in got] == sorted((p.score for p in got), reverse=True)
    only_long = assistant.retrieve(query, k=4, filters={"sources": ["https://rail.example/long"]})
    assert len(only_long) == 4 and len({p.chunk_id for p in only_long}) == 4


def test_filters_by_source_site_and_date(assistant: Assistant) -> None:
    only_city = assistant.retrieve("flight bird strike", k=4,
                                   filters=Filters(sources=["city.example"]))
    assert only_city and {p.source for p in only_city} <= {"https://city.example/budget",
                                                           "https://city.example/bridge"}
    exact = assistant.retrieve("bridge", k=4, filters={"sources": ["https://air.example/kl"]})
    assert {p.source for p in exact} == {"https://air.example/kl"}
    dated = assistant.retrieve("budget", k=4, filters=Filters(
        published_from=dt.date(2023, 1, 1), published_to=dt.date(2023, 12, 31)))
    assert dated and all(p.published and p.published.year == 2023 for p in dated)
    assert not assistant.retrieve("budget", k=4, filters=Filters(
        published_from=dt.date(2030, 1, 1)))


def test_every_passage_carries_its_similarity_and_span(assistant: Assistant) -> None:
    for passage in assistant.retrieve("Which flight landed late in Oslo?", k=4):
        assert passage.dense_score is not None and -1.0 <= passage.dense_score <= 1.0
        assert 0 <= passage.start < passage.end
        assert len(passage.text) == passage.end - passage.start


def test_bad_filters_and_questions_are_clear_errors(assistant: Assistant) -> None:
    with pytest.raises(InvalidInput, match="filters are not valid"):
        assistant.retrieve("x", filters={"published_from": "yesterday"})
    with pytest.raises(InvalidInput, match="filters are not valid"):
        assistant.retrieve("x", filters={"colour": "red"})
    with pytest.raises(InvalidInput, match="Please ask a question"):
        assistant.retrieve("   ")


def test_the_lexical_index_follows_new_ingests(assistant: Assistant, tmp_path: Path) -> None:
    extra = tmp_path / "zeppelin.txt"
    extra.write_text("Zeppelin returns\nA zeppelin named Graf Q77 flew over Bergen on Friday.")
    assistant.ingest([extra])
    assert assistant.retrieve("Graf Q77", k=1)[0].headline == "Zeppelin returns"


def test_a_failed_lexical_cache_write_leaves_no_file_and_search_goes_on(
        assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The BM25 cache is an optimisation: a full disk must not break search or leave debris."""
    import pickle

    from rag.retrieval.lexical import LexicalCache

    def no_space(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pickle, "dump", no_space)
    folder = assistant.settings.cache_dir / "lexical"
    for old in folder.glob("*"):
        old.unlink()
    index = LexicalCache(assistant.store).get()  # builds, fails to cache, still serves
    assert index.search("KL4391", 1)
    assert list(folder.glob("*.tmp")) == [] and list(folder.glob("*.pkl")) == []
