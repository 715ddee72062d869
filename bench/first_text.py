"""Time to first visible text with a language model answering: the preview, or the answer.

Each question of a dev set goes through ``Assistant.ask_stream`` with the default local model
(loaded first, as a server does at start-up); the clock runs from the call to the first thing a
reader can see: the ``Preview`` (the extractive answer's quoted sentences), or, when there is
none, the answer itself (a refusal comes at once, without the model). The stream is closed
there, so the model does not write: this measures what a reader waits before reading, not the
model. Run: ``python -m bench.first_text [--corpus C --questions Q] [--limit N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared" / "eval" / "newsroom"


def measure(corpus: Path, questions: Path, limit: int | None = None) -> dict[str, Any]:
    """Milliseconds to the first visible event per question, with what it was."""
    from rag.assistant import Assistant
    from rag.llm.local_models import default_answerer
    from rag.records import Answer, Preview
    from rag.settings import Settings

    rows = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), answerer="auto")
        assistant = Assistant(settings)
        assistant.ingest([corpus])
        assistant.warm_up().join()
        name = default_answerer(settings)
        out = []
        for row in rows[:limit]:
            started = time.perf_counter()
            events = assistant.ask_stream(row["question"], row.get("history") or None)
            first: Any = next(e for e in events if isinstance(e, (Preview, Answer)) or e)
            elapsed = (time.perf_counter() - started) * 1000
            events.close()  # the model is not asked to write
            kind = ("preview" if isinstance(first, Preview) else
                    "refusal" if isinstance(first, Answer) and first.refused or
                    isinstance(first, str) and "don't say" in first else "answer")
            out.append({"id": row["id"], "ms": round(elapsed, 1), "first": kind})
    times = [r["ms"] for r in out]
    return {"answerer": name, "questions": len(out), "median_ms": statistics.median(times),
            "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))], "max_ms": max(times),
            "previews": sum(r["first"] == "preview" for r in out), "rows": out}


def main() -> None:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus.jsonl")
    parser.add_argument("--questions", type=Path, default=SHARED / "questions.jsonl")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    report = measure(args.corpus, args.questions, args.limit)
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
