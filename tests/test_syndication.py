"""Syndicated copies: one story under two mastheads is retrieved and cited once."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ingest.fingerprint import decode, signature
from rag.api.openai_compat import footnote_text
from rag.assistant import Assistant
from rag.chat.render import citation_html
from rag.retrieval.syndication import find_groups, groups_of
from rag.settings import Settings

BODY = [
    "HESKETH — The solvent spill into the Hesk river last week released about 41,000 litres "
    "of toluene, more than twice the first estimate, the regional water authority said on "
    "Thursday.",
    "Grauwald Chemie, which runs the plant upstream of the town, had first put the spill at "
    "18,000 litres. The authority's engineer, Petra Lindqvist, said samples taken at three "
    "weirs showed the larger figure.",
    "Fishing on a 12-kilometre stretch stays banned until at least the end of the month, and "
    "two schools on the river road kept their windows shut on Wednesday.",
    "The company said it regretted the incident and would pay for the clean-up; a spokesman "
    "declined to say how the valve that failed had been inspected.",
]
OTHER = ("ALDRIDGE — The Aldridge Park library reopened on Saturday after a two-year "
         "renovation that added a reading garden and a makerspace, the city said. "
         "Librarian Tomas Reyes said 2,400 people visited on the first day.")


def _records(copy_body: str | None = None) -> list[dict[str, str]]:
    return [
        {"id": "wire", "url": "https://wire.example/hesk-spill", "source": "Eastgate Wire",
         "title": "Hesk spill twice as large as first thought", "published": "2025-07-29",
         "text": "\n\n".join(BODY)},
        # The same body a day later under another masthead and headline, last paragraph cut.
        {"id": "post", "url": "https://post.example/river", "source": "Alderbrook Evening Post",
         "title": "River spill bigger than feared, authority says", "published": "2025-07-30",
         "text": copy_body if copy_body is not None else "\n\n".join(BODY[:-1])},
        {"id": "library", "url": "https://post.example/library",
         "source": "Alderbrook Evening Post",
         "title": "Library reopens", "published": "2025-07-30", "text": OTHER},
    ]


def _write(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_a_trimmed_copy_keeps_most_of_its_signature_and_another_story_does_not() -> None:
    whole = decode(signature("\n\n".join(BODY)))
    trimmed = decode(signature("\n\n".join(BODY[:-1])))
    other = decode(signature(OTHER))
    assert whole is not None and trimmed is not None and other is not None
    assert (whole == trimmed).mean() > 0.6
    assert (whole == other).mean() < 0.2
    assert decode("not a signature") is None


def test_groups_put_the_earliest_copy_first() -> None:
    metas = [{"index": 0, "article_id": r["id"], "outlet": r["source"], "minhash":
              signature(r["text"]), "published": r["published"], "chars": len(r["text"])}
             for r in reversed(_records())]
    groups = find_groups(metas)
    assert [m.article_id for m in groups.of["post"]] == ["wire", "post"]
    assert groups.representative("post") == "wire" and "library" not in groups.of
    assert [m.outlet for m in groups.others("wire")] == ["Alderbrook Evening Post"]


@pytest.fixture
def assistant(data_dir: Path) -> Assistant:
    return Assistant(Settings(data_dir=data_dir, answerer="extractive"))


def test_one_copy_is_cited_and_names_the_other(assistant: Assistant, tmp_path: Path) -> None:
    corpus = _write(tmp_path / "news.jsonl", _records())
    assistant.ingest([corpus])
    question = "How many litres of toluene were released into the Hesk river?"
    sources = [p.source for p in assistant.retrieve(question)]
    assert "https://wire.example/hesk-spill" in sources
    assert "https://post.example/river" not in sources  # the copy's chunks are left out
    answer = assistant.ask(question)
    assert not answer.refused and "41,000" in answer.text
    assert {c.source for c in answer.citations} == {"https://wire.example/hesk-spill"}
    cite = answer.citations[0]
    assert answer.as_of == dt.date(2025, 7, 29) == cite.published  # the newest cited article
    assert cite.also_published_by == ["Alderbrook Evening Post"]
    assert "also published by Alderbrook Evening Post" in citation_html(cite, 1, open_=True)
    assert "also published by Alderbrook Evening Post" in footnote_text(answer)
    assert "2025-07-29" in footnote_text(answer)
    # Ingesting again changes nothing and embeds nothing.
    again = assistant.ingest([corpus])
    assert (again.chunks_added, again.unchanged) == (0, 3)


def test_a_copy_edited_apart_leaves_its_group_and_a_deleted_original_lets_it_stand(
        assistant: Assistant, tmp_path: Path) -> None:
    corpus = _write(tmp_path / "news.jsonl", _records())
    assistant.ingest([corpus])
    question = "How many litres of toluene were released into the Hesk river?"
    wire = next(a.article_id for a in assistant.articles() if "wire" in a.source)
    assistant.delete_articles([wire])
    passages = assistant.retrieve(question)
    assert passages[0].source == "https://post.example/river"
    assert passages[0].also_published_by == []
    # Back with the original, but the copy rewritten into another story: no group any more.
    _write(corpus, _records(copy_body=OTHER.replace("library", "museum") + " " + BODY[2]))
    assistant.ingest([corpus])
    assert not groups_of(assistant.retriever.lexical.get()).of
