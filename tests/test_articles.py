"""Seeing and managing what is indexed: listing, deleting, re-indexing, and ingest through a
running server; the Python API, the CLI and real HTTP on loopback, with the real embedder."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import SEED_QUESTION, SEEDS
from live_server import LiveServer

from ingest.uploads import Upload
from rag.api.app import create_app
from rag.assistant import Assistant
from rag.cli import main
from rag.errors import InvalidInput, NotFound
from rag.settings import Settings
from rag.store import claim_store

pytestmark = pytest.mark.slow

HARBOUR = """Dockers at Port Vellan end their strike

Dockers at Port Vellan returned to work on Monday after the harbour board agreed to hire \
forty more crane drivers, the union's secretary Mira Kovalenko said. The strike had lasted \
eleven days and left sixty ships waiting outside the breakwater.
"""
BRIDGE = """Toll bridge over the Arnsey reopens

The toll bridge over the Arnsey reopened on Friday after five months of repairs to its \
cables, the county engineer Tomas Reyl said. Cars pay two crowns, lorries five.
"""
HARBOUR_QUESTION = "How many crane drivers will the harbour board hire?"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    (folder / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    for seed in SEEDS.iterdir():
        shutil.copy(seed, folder / seed.name)
    return folder


@pytest.fixture
def assistant(corpus: Path, data_dir: Path) -> Assistant:
    assistant = Assistant(Settings(data_dir=data_dir, answerer="extractive"))
    assistant.ingest([corpus])
    return assistant


def _by_headline(assistant: Assistant) -> dict[str, object]:
    return {a.headline: a for a in assistant.articles()}


def test_articles_lists_each_article_with_its_chunks_and_relative_files(
        assistant: Assistant) -> None:
    articles = assistant.articles()
    assert len(articles) == assistant.stats()["articles"] == 3
    assert sum(a.chunks for a in articles) == assistant.stats()["chunks"]
    harbour = next(a for a in articles if "Port Vellan" in a.headline)
    assert harbour.files == ["articles/harbour.txt"]  # relative, never the server's path
    assert not any(f.startswith("/") for a in articles for f in a.files)
    assert harbour.chunks >= 1


def test_delete_by_prefix_forgets_the_article_in_answers_and_listing(
        assistant: Assistant) -> None:
    before = assistant.ask(HARBOUR_QUESTION)
    assert "forty" in before.text and not before.refused
    harbour = next(a for a in assistant.articles() if "Port Vellan" in a.headline)
    chunks_before = assistant.stats()["chunks"]

    deleted = assistant.delete_articles([harbour.article_id[:8]])

    assert [a.article_id for a in deleted] == [harbour.article_id]
    assert "Port Vellan" not in " ".join(a.headline for a in assistant.articles())
    assert assistant.stats() == {"articles": 2, "chunks": chunks_before - harbour.chunks}
    after = assistant.ask(HARBOUR_QUESTION)
    assert "forty" not in after.text
    assert all(c.article_id != harbour.article_id for c in after.citations)
    # The others are untouched.
    assert not assistant.ask(SEED_QUESTION).refused


def test_delete_of_an_unknown_or_ambiguous_id_is_a_plain_error_and_loses_nothing(
        assistant: Assistant) -> None:
    stats = assistant.stats()
    with pytest.raises(NotFound, match="No indexed article has the id 'ffffffffffff'"):
        assistant.delete_articles(["ffffffffffff"])
    with pytest.raises(NotFound):
        assistant.delete_articles(["ab"])  # too short to be a prefix: must match whole
    assert assistant.stats() == stats


def test_deleting_an_upload_removes_its_kept_file(data_dir: Path) -> None:
    assistant = Assistant(Settings(data_dir=data_dir, answerer="extractive"))
    report = assistant.add_uploads([Upload("bridge.txt", io.BytesIO(BRIDGE.encode()))])
    assert report.added == 1
    kept = list((data_dir / "uploads").glob("*bridge*"))
    assert kept, "the upload is kept under the data directory"
    [article] = assistant.articles()
    assert article.files == ["bridge.txt"]  # by its name, not the data directory's path
    assistant.delete_articles([article.article_id])
    assert assistant.articles() == []
    assert not any(path.exists() for path in kept)


FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Vellan Gazette</title><link>http://gazette.example/</link>
<item><title>Ferry timetable changes</title><link>http://gazette.example/ferry</link>
<description>The island ferry will sail every forty minutes from the first of May, the
operator announced on Tuesday.</description></item>
<item><title>Lighthouse reopens</title><link>http://gazette.example/lighthouse</link>
<description>The old lighthouse on Cape Marren reopened to visitors after a two-year
restoration paid for by the county.</description></item>
</channel></rss>"""


def test_uploaded_articles_survive_a_reindex_and_a_feed_outlives_one_deleted_entry(
        data_dir: Path) -> None:
    assistant = Assistant(Settings(data_dir=data_dir, answerer="extractive"))
    assistant.add_uploads([Upload("bridge.txt", io.BytesIO(BRIDGE.encode())),
                           Upload("gazette.rss", io.BytesIO(FEED.encode()))])
    headlines = {"Toll bridge over the Arnsey reopens", "Ferry timetable changes",
                 "Lighthouse reopens"}
    assert set(_by_headline(assistant)) == headlines

    report = assistant.reindex()  # reads the kept uploads again: it must not delete them first

    assert (report.added, report.skipped) == (3, 0), report.skipped_reasons
    assert set(_by_headline(assistant)) == headlines
    ferry = _by_headline(assistant)["Ferry timetable changes"]
    assistant.delete_articles([ferry.article_id])  # type: ignore[attr-defined]
    assert assistant.reindex().added == 2  # the feed's other entry is still read from it
    assert set(_by_headline(assistant)) == headlines - {"Ferry timetable changes"}
    assert "two crowns" in assistant.ask("What does a car pay on the Arnsey toll bridge?").text


def test_reindex_embeds_again_and_keeps_what_has_no_file(assistant: Assistant,
                                                         corpus: Path) -> None:
    stats = assistant.stats()
    assert assistant.ingest([corpus]).chunks_added == 0  # plain re-ingest embeds nothing
    (corpus / "bridge.txt").unlink()  # its stored copy must survive a reindex

    report = assistant.reindex()

    assert report.chunks_added == stats["chunks"] - _by_headline(assistant)[
        "Toll bridge over the Arnsey reopens"].chunks  # type: ignore[attr-defined]
    assert report.skipped == 1 and "files are gone" in next(iter(report.skipped_reasons.values()))
    assert assistant.stats() == stats
    assert "forty" in assistant.ask(HARBOUR_QUESTION).text
    assert "two crowns" in assistant.ask("What does a car pay on the Arnsey toll bridge?").text


def test_cli_lists_deletes_and_reindexes(assistant: Assistant, data_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    del assistant  # the CLI opens the same data directory in its own Assistant
    assert main(["articles"]) == 0
    listing = capsys.readouterr().out
    assert "Dockers at Port Vellan end their strike" in listing
    assert "articles/harbour.txt" in listing and "3 articles" in listing

    assert main(["articles", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    harbour = next(r for r in rows if "Port Vellan" in r["headline"])

    assert main(["delete", harbour["article_id"][:10]]) == 0
    assert "deleted" in capsys.readouterr().out
    assert main(["delete", harbour["article_id"][:10]]) == 2
    assert "No indexed article has the id" in capsys.readouterr().err
    assert main(["reindex", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks_added"] > 0
    assert main(["articles"]) == 0
    assert "2 articles" in capsys.readouterr().out


def test_cli_on_an_empty_index_says_how_to_add_articles(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["articles"]) == 0
    assert "Nothing is indexed yet" in capsys.readouterr().out


def test_http_lists_deletes_and_reindexes(assistant: Assistant) -> None:
    with LiveServer(create_app(assistant=assistant)) as live, \
            httpx.Client(base_url=live.url, timeout=120) as client:
        listed = client.get("/articles")
        assert listed.status_code == 200
        rows = listed.json()
        assert {r["headline"] for r in rows} >= {"Dockers at Port Vellan end their strike"}
        harbour = next(r for r in rows if "Port Vellan" in r["headline"])

        gone = client.delete(f"/articles/{harbour['article_id']}")
        assert gone.status_code == 200 and gone.json()["article_id"] == harbour["article_id"]
        again = client.delete(f"/articles/{harbour['article_id']}")
        assert again.status_code == 404
        assert again.json()["detail"].startswith("No indexed article has the id")
        assert len(client.get("/articles").json()) == 2

        reindexed = client.post("/articles/reindex")
        assert reindexed.status_code == 200 and reindexed.json()["chunks_added"] > 0
        assert len(client.get("/articles").json()) == 2


def test_ingest_through_a_running_server_while_it_holds_the_store(
        corpus: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=data_dir, answerer="extractive")
    claim_store(settings)  # as `rag serve` and the chat do
    served = Assistant(settings)
    local = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", "-q",
                            str(corpus / "harbour.txt")], capture_output=True, text=True,
                           timeout=300, check=False)
    assert local.returncode == 2  # a second process may not write the served store ...
    assert "rag ingest --server" in local.stderr  # ... and is told what to do instead
    assert "Traceback" not in local.stderr
    with LiveServer(create_app(assistant=served)) as live:
        assert main(["ingest", "--server", live.url, str(corpus)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("added 3,")
        assert main(["ingest", "--server", live.url, str(corpus)]) == 0
        assert "added 0" in capsys.readouterr().out  # same files again: nothing new
        assert main(["ingest", "--server", live.url, str(corpus / "missing.txt")]) == 1
        assert "no such file or folder" in capsys.readouterr().out
    assert served.stats()["articles"] == 3
    assert "forty" in served.ask(HARBOUR_QUESTION).text


def test_ingest_server_errors_are_one_sentence(corpus: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from servers import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["ingest", "--server", url, str(corpus)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Could not reach the server at") and err.count("\n") == 1
    with pytest.raises(InvalidInput):  # the local API keeps its own errors
        Assistant(Settings(answerer="extractive")).delete_articles(["x" * 7])
