"""results.json as markdown tables for the README: ratios first, absolute figures beside."""

from __future__ import annotations

from typing import Any


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def ingest_md(ingest: dict[str, Any]) -> list[str]:
    """Ingest speed table."""
    t = ingest["totals"]
    c = ingest["corpus"]
    return [
        f"**Ingest** ({c['chars']:,} chars in {c['articles']} synthetic articles, "
        f"{c['slices']} slices; each pipeline on the same text):", "",
        "| pipeline | chars/s | chunks | chunks/s | seconds | time on top of its encoder |",
        "|---|---|---|---|---|---|",
        f"| naive langchain (1000/200 splitter, HuggingFaceEmbeddings, Chroma.from_documents) | "
        f"{t['naive']['chars_per_s']:,.0f} | {t['naive']['chunks']} | "
        f"{t['naive']['chunks_per_s']} | {t['naive']['seconds']} | "
        f"{t['naive']['over_own_encoder']:+.0%} |",
        f"| rag ingest | {t['ours']['chars_per_s']:,.0f} | {t['ours']['chunks']} | "
        f"{t['ours']['chunks_per_s']} | {t['ours']['seconds']} | "
        f"{t['ours']['over_own_encoder']:+.0%} |",
        f"| our bare encoder on our chunk texts (ceiling) | {t['bare']['chars_per_s']:,.0f} | "
        f"{t['bare']['chunks']} | {t['bare']['chunks_per_s']} | {t['bare']['seconds']} | - |",
        "",
        f"Speed-up over naive: **{ingest['speedup_vs_naive']:.2f}x** (median of slices "
        f"{ingest['median_slice_speedup_vs_naive']:.2f}x; goal >= 1.5x). Time above our bare "
        f"encoder: **{ingest['over_bare_encoder']:+.0%}** (median of slices "
        f"{ingest['median_slice_over_bare_encoder']:+.0%}; goal <= +20%).{_cpu(ingest)}", ""]


def _cpu(ingest: dict[str, Any]) -> str:
    if "cpu_speedup_vs_naive" not in ingest:
        return ""
    return (f" By process CPU time: {ingest['cpu_speedup_vs_naive']:.2f}x naive, "
            f"{ingest['cpu_over_bare_encoder']:+.0%} over the bare encoder.")


def retrieval_md(retrieval: dict[str, Any]) -> list[str]:
    """Latency-at-scale table."""
    lines = ["**Retrieval latency** (ms per query, p50 / p95, query encoding included; "
             "synthetic chunks, see bench/retrieval_scale.py):", "",
             "| chunks | dense | lexical (BM25) | hybrid | query encoding alone | "
             "query encoding, 1 torch thread |", "|---|---|---|---|---|---|"]
    for size in sorted(retrieval["sizes"], key=int):
        r = retrieval["sizes"][size]
        cells = [f"{_f(r[n]['p50'], 1)} / {_f(r[n]['p95'], 1)}"
                 for n in ("dense", "lexical", "hybrid", "query_encoding",
                           "query_encoding_1_thread") if n in r]
        lines.append(f"| {int(size):,} | " + " | ".join(cells) + " |")
    return lines + ["", "Goal: hybrid p50 <= 50 ms and p95 <= 150 ms at 100k chunks.", ""]


def quality_md(quality: dict[str, Any]) -> list[str]:
    """Dev-set retrieval and answer tables."""
    lines = [f"**Retrieval on the dev set** ({quality['n_questions']} questions, rag eval's "
             "scoring):", "", "| pipeline | hit@1 | hit@4 | hit@10 | MRR@10 |",
             "|---|---|---|---|---|"]
    for label, key in (("naive langchain (dense only)", "naive"),
                       ("ours, dense only", "ours_dense_only"), ("ours, hybrid", "ours_hybrid")):
        b = quality[key]
        lines.append(f"| {label} | " + " | ".join(_f(b[k]) for k in (
            "hit@1", "hit@4", "hit@10", "mrr@10")) + " |")
    lines += ["", "**Answers on the dev set:**", "",
              "| answerer | questions | accuracy | refusals | false refusals | supported "
              "sentences | invalid citations | p50 / p95 ms |", "|---|---|---|---|---|---|---|---|"]
    for name, b in quality["answerers"].items():
        lines.append(f"| {name} | {b['questions']} | " + " | ".join(_f(b[k]) for k in (
            "answer_accuracy", "refusal_rate", "false_refusal_rate", "supported_sentence_rate",
            "invalid_citations")) + f" | {_f(b['total_ms']['p50'], 0)} / "
            f"{_f(b['total_ms']['p95'], 0)} |")
    for name, why in quality.get("skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} |")
    return lines + [""]


def llm_md(llm: dict[str, Any]) -> list[str]:
    """Local-model speed table."""
    lines = ["**Local models** (dev-set questions through Assistant.ask_stream):", "",
             "| model | load s | time to first token (median) | tokens/s (median) |",
             "|---|---|---|---|"]
    for name, m in llm.get("models", {}).items():
        lines.append(f"| {name} | {m['load_seconds']} | {_f(m['ttft_ms_median'], 0)} ms | "
                     f"{_f(m['tokens_per_s_median'], 1)} |")
    for name, why in llm.get("skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} | | |")
    return lines + [""]


def markdown(results: dict[str, Any]) -> str:
    """Every section that ran, as markdown."""
    meta = results["meta"]
    lines = [f"Measured {meta['date']} on {meta['cpus']} CPUs (load average "
             f"{meta['load_before']} before, {meta['load_after']} after), commit "
             f"{meta['commit']}, with `{meta['command']}`.", ""]
    for key, render in (("ingest", ingest_md), ("retrieval", retrieval_md),
                        ("quality", quality_md), ("llm", llm_md)):
        if results.get(key):
            lines += render(results[key])
    for key, why in results.get("errors", {}).items():
        lines.append(f"**{key}** failed: {why}")
    return "\n".join(lines)
