"""A smoke run of the benchmark suite on tiny sizes: it runs, writes JSON, plots and markdown.

No timing is asserted; only that the figures exist and are consistent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("langchain_huggingface")
pytest.importorskip("langchain_chroma")


@pytest.mark.slow
def test_bench_quick_ingest_and_retrieval(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench.__main__ import main

    out = tmp_path / "results.json"
    code = main(["--quick", "--strict", "--only", "ingest,retrieval", "--out", str(out), "--plots",
                 str(tmp_path / "plots"), "--cache", str(tmp_path / "cache"),
                 "--ingest-chars", "20000", "--sizes", "200", "--queries", "3"])
    assert code == 0
    results = json.loads(out.read_text())
    ingest = results["ingest"]
    assert ingest["corpus"]["chars"] >= 20000
    # Every pipeline indexed the same text; ours embedded exactly what the bare encoder did.
    assert ingest["totals"]["ours"]["chunks"] == ingest["totals"]["bare"]["chunks"] > 0
    assert ingest["totals"]["naive"]["chunks"] > 0
    assert ingest["speedup_vs_naive"] > 0
    size = results["retrieval"]["sizes"]["200"]
    assert size["chunks"] == 200 and size["lexical_rows"] == 200
    for name in ("dense", "lexical", "hybrid"):
        assert size[name]["p50"] is not None and size[name]["p95"] >= size[name]["p50"]
    assert (tmp_path / "plots" / "ingest_speed.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "retrieval_latency.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "Speed-up over naive" in printed and "| 200 |" in printed
