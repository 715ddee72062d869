"""The README's figures, drawn from results.json with matplotlib (headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ingest_plot(ingest: dict[str, Any], path: Path) -> None:
    """Characters indexed per second: naive vs ours vs our bare encoder (the ceiling)."""
    plt = _plt()
    names = [("naive", "naive langchain"), ("ours", "rag ingest"), ("bare", "bare encoder")]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    values = [ingest["totals"][n]["chars_per_s"] for n, _ in names]
    bars = ax.bar([label for _, label in names], values, color=["#999999", "#2b7bba", "#9ecae1"])
    for i, (name, _) in enumerate(names):
        per_slice = [s[name]["chars_per_s"] for s in ingest["slices"]]
        ax.scatter([i] * len(per_slice), per_slice, color="black", s=10, zorder=3)
    ax.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in values])
    ax.set_ylabel("characters of article text / s")
    ax.set_title(f"Ingest speed ({ingest['corpus']['chars'] / 1e6:.1f} MB; "
                 f"{ingest['speedup_vs_naive']:.2f}x naive)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def retrieval_plot(retrieval: dict[str, Any], path: Path) -> None:
    """Latency percentiles of each retriever against the number of chunks."""
    plt = _plt()
    sizes = sorted(int(s) for s in retrieval["sizes"])
    fig, ax = plt.subplots(figsize=(6.4, 4))
    colours = {"dense": "#2b7bba", "lexical": "#e6550d", "hybrid": "#31a354"}
    for name, colour in colours.items():
        for pct, style in (("p50", "-"), ("p95", "--")):
            ys = [retrieval["sizes"][str(s)][name][pct] for s in sizes]
            ax.plot(sizes, ys, style, color=colour, marker="o", label=f"{name} {pct}")
    ax.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    ax.axhline(150, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("chunks in the index")
    ax.set_ylabel("ms per query (query encoding included)")
    ax.set_title("Retrieval latency (goal at 100k: hybrid p50 <= 50, p95 <= 150 ms)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _grouped_bars(path: Path, ticks: list[str], series: list[tuple[str, list[float]]],
                  title: str, tick_size: int | None = None) -> None:
    """One bar per series at each tick, on a 0-1 scale (rates and hit ratios)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        ax.bar([t + i * width for t in range(len(ticks))], values, width, label=label)
    ax.set_xticks([t + width for t in range(len(ticks))], ticks, fontsize=tick_size)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quality_plot(quality: dict[str, Any], path: Path) -> None:
    """Retrieval quality on the dev set: naive vs our dense-only vs our hybrid."""
    keys = ["hit@1", "hit@4", "hit@10", "mrr@10"]
    rows = [("naive langchain", quality["naive"]), ("ours, dense only", quality["ours_dense_only"]),
            ("ours, hybrid", quality["ours_hybrid"])]
    _grouped_bars(path, keys, [(label, [block[k] or 0 for k in keys]) for label, block in rows],
                  f"Retrieval on the dev set ({quality['n_questions']} questions)")


def answer_plot(quality: dict[str, Any], path: Path) -> None:
    """Accuracy and refusals of each answerer."""
    keys = [("answer_accuracy", "accuracy"), ("refusal_rate", "refusals (unanswerable)"),
            ("false_refusal_rate", "false refusals")]
    rows = quality["answerers"]
    _grouped_bars(path, [f"{n}\n({rows[n]['questions']} q)" for n in rows],
                  [(label, [rows[n][key] or 0 for n in rows]) for key, label in keys],
                  "Answers on the dev set", tick_size=8)


def llm_plot(llm: dict[str, Any], path: Path) -> None:
    """Time to first token and tokens/s per local model."""
    plt = _plt()
    names = list(llm["models"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.4))
    left.bar(names, [(llm["models"][n]["ttft_ms_median"] or 0) / 1000 for n in names])
    left.set_ylabel("s to first token (median)")
    right.bar(names, [llm["models"][n]["tokens_per_s_median"] or 0 for n in names],
              color="#31a354")
    right.set_ylabel("tokens / s (median)")
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=7, rotation=15)
    fig.suptitle("Local models, 2 CPU threads")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_all(results: dict[str, Any], folder: Path) -> list[Path]:
    """Every figure whose section ran; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    jobs = [("ingest", ingest_plot, "ingest_speed.png"),
            ("retrieval", retrieval_plot, "retrieval_latency.png"),
            ("quality", quality_plot, "retrieval_quality.png"),
            ("quality", answer_plot, "answer_quality.png"),
            ("llm", llm_plot, "llm_speed.png")]
    for section, draw, name in jobs:
        data = results.get(section)
        if not data or (section == "llm" and not data.get("models")):
            continue
        draw(data, folder / name)
        made.append(folder / name)
    return made
