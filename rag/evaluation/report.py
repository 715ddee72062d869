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


def format_report(report: Mapping[str, Any]) -> str:
    """The report as markdown tables for people."""
    lines = [f"{report['n_questions']} questions ({report['n_answerable']} answerable), "
             f"{report['ingest']['articles']} articles / {report['ingest']['chunks']} chunks "
             f"ingested in {report['ingest_seconds']:.1f} s", "",
             "| retriever | hit@1 | hit@4 | hit@10 | mrr@10 | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|---|"]
    for label, block in (("hybrid", report["retrieval"]), ("dense only",
                                                            report.get("dense_baseline"))):
        if block:
            lines.append(f"| {label} | " + " | ".join(_fmt(block[k]) for k in (
                "hit@1", "hit@4", "hit@10", "mrr@10")) + f" | {_fmt(block['latency_ms']['p50'])}"
                f" | {_fmt(block['latency_ms']['p95'])} |")
    lines += ["", "| answerer | accuracy | refusals | false refusals | supported | "
              "invalid citations | total p50 ms | total p95 ms |",
              "|---|---|---|---|---|---|---|---|"]
    for name, m in report["answerers"].items():
        if "error" in m:
            lines.append(f"| {name} | skipped: {m['error']} |")
            continue
        total = m["latency_ms"]["total_ms"]
        lines.append(f"| {name} | " + " | ".join(_fmt(m[k]) for k in (
            "answer_accuracy", "refusal_rate", "false_refusal_rate", "supported_sentence_rate",
            "invalid_citations")) + f" | {_fmt(total['p50'])} | {_fmt(total['p95'])} |")
    return "\n".join(lines)


def run_cli(args: argparse.Namespace) -> int:
    """``rag eval``: evaluate, print the tables, write the JSON report when asked."""
    answerers = list(dict.fromkeys(getattr(args, "answerer", None) or ["extractive"]))
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise InvalidInput("--limit must be at least 1.")
    report = evaluate(args.corpus, args.questions, Settings(), answerers, limit,
                      progress=True)
    print(format_report(report))
    if getattr(args, "json_out", None):
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nreport written to {out}")
    failed = [n for n, m in report["answerers"].items() if "error" in m]
    return 1 if failed and len(failed) == len(answerers) else 0
