"""bench/bench_generators.py scores any eval set in the dev set's format: the seed probe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_seed_probe_is_scored_like_the_dev_set(tmp_path: Path) -> None:
    from bench.bench_generators import main

    out = tmp_path / "probe.json"
    assert main(["--skip-speed", "--generators", "extractive", "--eval-dir",
                 str(REPO / "bench" / "seed_probe"), "--index-dir", str(tmp_path / "index"),
                 "--out", str(out)]) == 0
    quality = json.loads(out.read_text())["quality"]
    assert (quality["n_answerable"], quality["n_unanswerable"]) == (12, 12)
    assert quality["eval_set"].endswith("seed_probe")
    rows = quality["answers"]
    # Scored against the probe's own answers: the seed question is answered with the radar site.
    radar = next(r for r in rows if r["question"].startswith("What did Putin offer"))
    assert radar["extractive"]["correct"] == ("Azerbaijan" in radar["extractive"]["text"])
    metrics = quality["generators"]["extractive"]
    assert metrics["answer_accuracy"] == round(sum(
        bool(r["extractive"]["correct"]) for r in rows if r["answer"]) / 12, 4)
