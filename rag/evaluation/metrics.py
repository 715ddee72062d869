"""Retrieval and answer metrics over a run's per-question rows."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

RETRIEVAL_K = 10
HIT_KS = (1, 4, 10)
STAGES = ("condense_ms", "retrieve_ms", "answer_ms", "total_ms")
THRESHOLDS = tuple(round(0.30 + 0.025 * i, 3) for i in range(27))  # 0.30 .. 0.95


def first_gold_rank(article_ids: Sequence[str], gold: set[str]) -> int | None:
    """1-based rank of the first passage from a gold article, or None."""
    for rank, aid in enumerate(article_ids, 1):
        if aid in gold:
            return rank
    return None


def retrieval_metrics(ranks: Sequence[int | None]) -> dict[str, float | int | None]:
    """hit@1/4/10 and MRR@10 from the first-gold ranks of the questions that have gold."""
    n = len(ranks)
    out: dict[str, float | int | None] = {}
    for k in HIT_KS:
        out[f"hit@{k}"] = _rate(sum(1 for r in ranks if r is not None and r <= k), n)
    out["mrr@10"] = round(sum(1.0 / r for r in ranks if r is not None and r <= RETRIEVAL_K) / n,
                          4) if n else None
    out["n_with_gold"] = n
    return out


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 (nearest rank on the sorted values) in milliseconds."""
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 1)

    return {"p50": round(statistics.median(ordered), 1), "p95": pick(0.95)}


def _rate(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def answer_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy, refusals, support and citation validity from per-question answer rows."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["refused"]]
    supported = sum(r["supported_sentences"] for r in answered)
    total = sum(r["total_sentences"] for r in answered)
    return {
        "answer_accuracy": _rate(sum(1 for r in answerable if r["correct"]), len(answerable)),
        # Answerable, answered, and wrong: the failure a reader cannot see.
        "wrong_answer_rate": _rate(sum(1 for r in answerable if not r["refused"]
                                       and not r["correct"]), len(answerable)),
        "stale_answer_rate": _rate(sum(1 for r in answerable if r.get("stale")),
                                   sum(1 for r in answerable if "stale" in r)),
        "refusal_rate": _rate(sum(1 for r in unanswerable if r["refused"]), len(unanswerable)),
        "false_refusal_rate": _rate(sum(1 for r in answerable if r["refused"]), len(answerable)),
        "supported_sentence_rate": _rate(supported, total),
        "invalid_citations": sum(len(r["citation_problems"]) for r in rows),
        "latency_ms": {stage: percentiles([r["timings_ms"][stage] for r in rows
                                           if stage in r["timings_ms"]]) for stage in STAGES},
    }


def threshold_sweep(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, float | None]]:
    """Refusal and false-refusal rates had the refusal threshold been each of THRESHOLDS.

    Uses each question's gate score (the best evidence score of the passages answered from),
    so the threshold can be calibrated without re-running.
    """
    scored = [r for r in rows if r.get("gate_score") is not None]
    yes = [r["gate_score"] for r in scored if r["answerable"]]
    no = [r["gate_score"] for r in scored if not r["answerable"]]
    return [{"threshold": t,
             "refusal_rate": _rate(sum(1 for s in no if s < t), len(no)),
             "false_refusal_rate": _rate(sum(1 for s in yes if s < t), len(yes))}
            for t in THRESHOLDS]


def by_kind(rows: Sequence[Mapping[str, Any]],
            metrics: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]) -> dict[str, Any]:
    """``metrics`` of the rows of each question kind (rows without a kind are left out)."""
    kinds = sorted({str(r["kind"]) for r in rows if r.get("kind")})
    return {kind: metrics([r for r in rows if r.get("kind") == kind]) for kind in kinds}
