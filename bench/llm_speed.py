"""Time to first token and generation speed of each installed local model, with real prompts.

Each prompt is a dev-set question answered through ``Assistant.ask_stream``: the model sees the
same retrieved passages and prompt template as in the product. Time to first token runs from
the call to the first streamed piece (retrieval and prompt processing included); tokens/s
counts streamed pieces (one per generated token for llama.cpp) after the first.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.corpus import RGB_CORPUS, RGB_QUESTIONS


def _prompts(count: int) -> list[str]:
    items = [json.loads(line) for line in RGB_QUESTIONS.read_text().splitlines() if line.strip()]
    return [q["question"] for q in items if q.get("answerable")][:count]


def bench_llm(work: Path, prompts: int, quick: bool,
              only: list[str] | None = None) -> dict[str, Any]:
    """TTFT and tokens/s per model; models whose weights are missing are listed as skipped."""
    from rag.answering.base import Draft
    from rag.answering.factory import available_answerers
    from rag.assistant import Assistant
    from rag.settings import Settings

    try:
        import rag.llm.local_models  # noqa: F401
    except ImportError:
        return {"skipped": {"local models": "rag.llm.local_models is not available"}, "models": {}}
    out: dict[str, Any] = {"models": {}, "skipped": {}, "method": (__doc__ or "").strip()}
    from bench.quality import shared_index

    settings = Settings(data_dir=shared_index(work))
    names = [g for g in available_answerers(settings) if g not in ("extractive", "openai")
             and (only is None or g in only)]
    if quick:
        names = names[-1:]
    if not names:
        out["skipped"]["local models"] = "no local model weights are installed"
        return out
    assistant = Assistant(settings)
    assistant.ingest([RGB_CORPUS])
    for name in names:
        started = time.perf_counter()
        try:
            assistant.answerer(name)
        except Exception as exc:  # a broken runtime skips the model, the bench goes on
            out["skipped"][name] = str(exc)
            continue
        load = time.perf_counter() - started
        rows = []
        for question in _prompts(prompts):
            rows.append(_one(assistant, question, name, Draft))
        # A refusal by the relevance gate never reaches the model: one piece, no timing.
        streamed = [r for r in rows if r["pieces"] > 1]
        out["models"][name] = {
            "load_seconds": round(load, 2), "prompts": len(rows),
            "streamed": len(streamed),
            "ttft_ms_median": _median([r["ttft_ms"] for r in streamed]),
            "tokens_per_s_median": _median([r["tokens_per_s"] for r in streamed
                                            if r["tokens_per_s"]]),
            "total_ms_median": _median([r["total_ms"] for r in streamed]),
            "rows": rows,
        }
        print(f"  llm {name}: ttft {out['models'][name]['ttft_ms_median']} ms, "
              f"{out['models'][name]['tokens_per_s_median']} tokens/s", flush=True)
    return out


def _one(assistant: Any, question: str, name: str, answer_type: type) -> dict[str, Any]:
    started = time.perf_counter()
    first = last = None
    pieces = 0
    final: Any = None
    # The model's own stream (Assistant.ask_stream shows only the checked answer, at the end).
    for event in assistant.answerer(name).stream(question, assistant.retrieve(question)):
        now = time.perf_counter()
        if isinstance(event, answer_type):
            final = event
            continue
        if event:
            pieces += 1
            first = first or now
            last = now
    refused = bool(final is not None and final.refused)
    rate = (pieces - 1) / (last - first) if first and last and last > first else None
    return {"question": question, "refused": refused, "pieces": pieces,
            "ttft_ms": round((first - started) * 1000, 1) if first else None,
            "tokens_per_s": round(rate, 2) if rate else None,
            "total_ms": round((time.perf_counter() - started) * 1000, 1)}


def _median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None
