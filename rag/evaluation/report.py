"""The evaluation report for people, and the ``rag eval`` command."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rag.errors import InvalidInput
from rag.evaluation.runner import evaluate
from rag.settings import Settings


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


_RETRIEVAL = ("hit@1", "hit@4", "hit@10", "mrr@10")
_ANSWERS = ("answer_accuracy", "wrong_answer_rate", "refusal_rate", "false_refusal_rate",
            "supported_sentence_rate", "invalid_citations")


def _retrieval_table(report: Mapping[str, Any]) -> list[str]:
    lines = ["| retriever | hit@1 | hit@4 | hit@10 | mrr@10 | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|---|"]
    for label, block in (("ours (hybrid)", report["retrieval"]),
                         ("ours, dense only", report.get("dense_baseline")),
                         ("naive langchain", report.get("naive_baseline"))):
        if not block:
            continue
        if "error" in block:
            lines.append(f"| {label} | skipped: {block['error']} |")
            continue
        latency = block.get("latency_ms") or {}
        lines.append(f"| {label} | " + " | ".join(_fmt(block[k]) for k in _RETRIEVAL)
                     + f" | {_fmt(latency.get('p50'))} | {_fmt(latency.get('p95'))} |")
    return lines


def _kinds_table(report: Mapping[str, Any]) -> list[str]:
    """Per question kind: our retrieval (beside the naive pipeline's) and every answerer."""
    kinds = sorted({*report["retrieval"].get("by_kind", {}),
                    *(k for m in report["answerers"].values() for k in m.get("by_kind", {}))})
    if not kinds:
        return []
    names = [n for n, m in report["answerers"].items() if "by_kind" in m]
    naive = (report.get("naive_baseline") or {}).get("by_kind", {})
    head = "| kind | hit@1 | mrr@10 | naive hit@1 | naive mrr@10 | " + " | ".join(
        f"{n}: right / wrong / refused" for n in names) + " |"
    lines = ["", head, "|---" * (5 + len(names)) + "|"]
    for kind in kinds:
        ours = report["retrieval"].get("by_kind", {}).get(kind, {})
        them = naive.get(kind, {})
        cells = [_fmt(ours.get("hit@1")), _fmt(ours.get("mrr@10")), _fmt(them.get("hit@1")),
                 _fmt(them.get("mrr@10"))]
        for name in names:
            m = report["answerers"][name]["by_kind"].get(kind, {})
            refused = m.get("false_refusal_rate") if m.get("answer_accuracy") is not None \
                else m.get("refusal_rate")
            cells.append(f"{_fmt(m.get('answer_accuracy'))} / {_fmt(m.get('wrong_answer_rate'))}"
                         f" / {_fmt(refused)}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return lines


def format_report(report: Mapping[str, Any]) -> str:
    """The report as markdown tables for people."""
    lines = [f"{report['n_questions']} questions ({report['n_answerable']} answerable), "
             f"{report['ingest']['articles']} articles / {report['ingest']['chunks']} chunks "
             f"ingested in {report['ingest_seconds']:.1f} s", "", *_retrieval_table(report)]
    lines += ["", "| answerer | accuracy | answered wrong | refusals | false refusals | "
              "supported | invalid citations | total p50 ms | total p95 ms |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, m in report["answerers"].items():
        if "error" in m:
            lines.append(f"| {name} | skipped: {m['error']} |")
            continue
        total = m["latency_ms"]["total_ms"]
        lines.append(f"| {name} | " + " | ".join(_fmt(m[k]) for k in _ANSWERS)
                     + f" | {_fmt(total['p50'])} | {_fmt(total['p95'])} |")
    lines += _kinds_table(report)
    return "\n".join(lines)


def run_cli(args: argparse.Namespace) -> int:
    """``rag eval``: evaluate, print the tables, write the JSON report when asked."""
    answerers = list(dict.fromkeys(getattr(args, "answerer", None) or ["extractive"]))
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise InvalidInput("--limit must be at least 1.")
    report = evaluate(args.corpus, args.questions, Settings(), answerers, limit,
                      progress=True, naive_baseline=not getattr(args, "no_naive", False))
    print(format_report(report))
    if getattr(args, "json_out", None):
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nreport written to {out}")
    failed = [n for n, m in report["answerers"].items() if "error" in m]
    return 1 if failed and len(failed) == len(answerers) else 0
