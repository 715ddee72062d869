"""What duplicate detection costs at ingest: whole ingests with the MinHash signature on and off.

Each dev corpus is ingested into a fresh store by the same code twice per round, once as
shipped and once with the signature step replaced by an empty one, in alternating order;
medians over the rounds and their ratio. Then a re-ingest of the shipped store must embed
nothing. ``python -m bench.ingest_dedup --rounds 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ingest.pipeline as pipeline
from rag.embeddings import make_embedder
from rag.settings import Settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "eval"
CORPORA = {"newsroom": SHARED / "newsroom" / "corpus.jsonl", "rgb": SHARED / "rgb" / "corpus.jsonl"}


@contextmanager
def signatures(on: bool) -> Iterator[None]:
    """Ingest with the MinHash signature as shipped, or with an empty one in its place."""
    shipped = pipeline.signature
    if not on:
        pipeline.signature = lambda text: ""  # type: ignore[assignment]
    try:
        yield
    finally:
        pipeline.signature = shipped  # type: ignore[assignment]


def ingest_once(corpus: Path, on: bool, embedder: Any) -> dict[str, float]:
    """One ingest of ``corpus`` into a new store: seconds (wall, process CPU) and counts."""
    with tempfile.TemporaryDirectory() as data, signatures(on):
        ingestor = pipeline.Ingestor(Settings(data_dir=Path(data)), embedder)
        wall, cpu = time.perf_counter(), time.process_time()
        report = ingestor.run([corpus])
        out = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
               "articles": report.added, "chunks": report.chunks_added}
        if on:
            again = ingestor.run([corpus])
            out["reingest_chunks_embedded"] = again.chunks_added
            out["reingest_unchanged"] = again.unchanged
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench/results/ingest-dedup.json")
    args = parser.parse_args(argv)
    embedder = make_embedder(Settings())
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    for name, corpus in CORPORA.items():
        runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
        for round_ in range(args.rounds):
            for on in ((True, False) if round_ % 2 == 0 else (False, True)):
                runs["on" if on else "off"].append(ingest_once(corpus, on, embedder))
        medians = {side: {key: statistics.median(r[key] for r in rows)
                          for key in ("wall_s", "cpu_s")} for side, rows in runs.items()}
        results[name] = {
            "runs": runs, "medians": medians,
            "wall_ratio_on_over_off": medians["on"]["wall_s"] / medians["off"]["wall_s"],
            "cpu_ratio_on_over_off": medians["on"]["cpu_s"] / medians["off"]["cpu_s"],
        }
        print(f"{name}: on {medians['on']['wall_s']:.2f} s, off {medians['off']['wall_s']:.2f} s"
              f" (wall ratio {results[name]['wall_ratio_on_over_off']:.3f}, CPU ratio "
              f"{results[name]['cpu_ratio_on_over_off']:.3f}); re-ingest embedded "
              f"{[r['reingest_chunks_embedded'] for r in runs['on']]} chunks")
    results["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
