"""The HTTP load harness (bench/load_http.py): a smoke run on a tiny store, and its error count.

No timing is asserted; only that every request is accounted for, errors are counted as errors,
answers over HTTP match the in-process ones, and the server is stopped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.live_server import LiveServer


class _Target:
    """What measure_http needs of a server: where it listens and its memory."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rss_mb(self) -> float | None:
        return None


def test_every_non_200_is_counted_as_an_error() -> None:
    from bench.load_http import measure_http

    app = FastAPI()

    @app.post("/ask")
    async def ask(body: dict[str, str]) -> JSONResponse:
        if body["question"].startswith("bad"):
            return JSONResponse({"detail": "The store is unavailable."}, status_code=503)
        return JSONResponse({"text": f"answer to {body['question']}",
                             "timings_ms": {"total_ms": 2.0}})

    questions = ["good 0", "bad 1", "good 2", "good 3"]
    expected = {0: "answer to good 0", 2: "something else"}
    with LiveServer(app) as live:
        result = measure_http(_Target(live.url), questions, 3, 10, 10.0, expected)
    assert result["requests"] == 10
    assert result["errors"] == 3  # 'bad 1' is request 1, 5 and 9 of the cycle
    assert all(e.startswith("HTTP 503") for e in result["error_examples"])
    assert result["answers_differing_from_baseline"] == 1  # question 2 only; 3 has no baseline
    assert result["latency_ms"]["max"] >= result["latency_ms"]["p95"] >= 0
    assert result["server_total_ms"]["p50"] == 2.0


def test_a_refused_connection_is_an_error_not_a_crash() -> None:
    from bench.load_http import free_port, measure_http

    result = measure_http(_Target(f"http://127.0.0.1:{free_port()}"), ["q"], 2, 4, 5.0, None)
    assert result["requests"] == 4 and result["errors"] == 4
    assert "ConnectError" in result["error_examples"][0]


@pytest.mark.slow
def test_load_harness_on_a_tiny_store(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.load_http import BASELINE, main

    out = tmp_path / "load.json"
    code = main(["--size", "300", "--store", str(tmp_path / "store"), "--copy-from",
                 str(tmp_path / "nothing-to-copy"), "--levels", "1,4", "--requests", "10",
                 "--rounds", "2", "--questions", "10", "--timeout", "60", "--out", str(out)])
    result = json.loads(out.read_text())
    assert code == 0, result["rounds"]
    assert result["meta"]["store"]["how"] == "built" and result["meta"]["chunks"] == 300
    assert result["server"]["health"]["chunks"] == 300
    assert result["server"]["health"]["answerer"] == "extractive"
    assert result["errors"] == 0
    # The levels ran in a different order in each round.
    assert [r["order"] for r in result["rounds"]] == [[BASELINE, "1", "4"], ["1", "4", BASELINE]]
    summary = result["summary"]
    assert set(summary) == {BASELINE, "1", "4"}
    for name, row in summary.items():
        assert row["requests"] == 20 and row["errors"] == 0, name
        assert row["rps"] > 0 and row["max_ms"] >= row["p95_ms"] >= row["p50_ms"] > 0
        assert row["stages_ms"]["total_ms"] >= row["stages_ms"]["answer_ms"] > 0
        if name != BASELINE:
            # Concurrency must not change an answer.
            assert row["answers_differing_from_baseline"] == 0, result["rounds"]
            assert row["server_rss_mb"] > 50
            assert row["rps_vs_baseline"] > 0 and row["p50_vs_baseline"] > 0
    for measured in result["rounds"]:
        for name in ("1", "4"):
            assert measured["measurements"][name]["requests"] == 10
    pid = result["server"]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the server was stopped and reaped
    printed = capsys.readouterr().out
    assert "| in-process `Assistant.ask`, serial, worker thread (baseline) |" in printed
    assert "| 4 |" in printed and "0 / 20" in printed
