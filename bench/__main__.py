"""``python -m bench``: measure ingest, retrieval at scale, dev-set quality and local models.

Writes bench/results/results.json and the PNGs under docs/bench/, and prints markdown tables.
``--quick`` is a smoke run on small sizes (written to bench/results/quick/ unless told).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("ingest", "retrieval", "llm", "quality")


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def parser() -> argparse.ArgumentParser:
    """The bench's options."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--out", type=Path, help="results JSON (default bench/results/results.json)")
    p.add_argument("--plots", type=Path, help="PNG folder (default docs/bench)")
    p.add_argument("--cache", type=Path,
                   help="where the large synthetic stores are kept between runs "
                        "(default $RAG_DATA_DIR/bench-cache)")
    p.add_argument("--ingest-chars", type=int, help="synthetic ingest corpus size (3.2M)")
    p.add_argument("--ingest-slices", type=int, default=3)
    p.add_argument("--sizes", help="retrieval store sizes, comma-separated (1000,10000,100000)")
    p.add_argument("--queries", type=int, help="queries per store size (all 100 dev questions)")
    p.add_argument("--llm-questions", type=int, default=20,
                   help="dev questions each local model answers for its quality row")
    p.add_argument("--merge", action="store_true",
                   help="keep the other sections already in the results file")
    p.add_argument("--models", help="only these local models (comma-separated)")
    p.add_argument("--strict", action="store_true", help="stop at the first failing section")
    p.add_argument("--llm-prompts", type=int, default=5, help="prompts per model for TTFT")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections; every figure lands in one JSON file."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parser().parse_args(argv)
    from rag.settings import Settings

    quick = args.quick
    sections = [s.strip() for s in args.only.split(",")] if args.only else list(SECTIONS)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        print(f"error: unknown section(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results_dir = REPO / "bench" / "results"
    out = args.out or (results_dir / "quick" / "results.json" if quick
                       else results_dir / "results.json")
    plots = args.plots or (results_dir / "quick" if quick else REPO / "docs" / "bench")
    cache = args.cache or Settings().data_dir.resolve() / "bench-cache"
    cache.mkdir(parents=True, exist_ok=True)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    previous: dict[str, Any] = {}
    if args.merge and out.exists():
        previous = json.loads(out.read_text(encoding="utf-8"))
    results: dict[str, Any] = {"meta": {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(), "load_before": _load(), "python": platform.python_version(),
        "commit": _commit(), "command": command.strip(), "quick": quick, "seconds": {}}}
    if previous:
        kept = [k for k in SECTIONS if k in previous and k not in sections]
        results.update({k: previous[k] for k in kept})
        results["meta"]["merged"] = {k: {"command": previous["meta"]["command"],
                                         "date": previous["meta"]["date"],
                                         "commit": previous["meta"]["commit"]} for k in kept}
        results["meta"]["merged"].update({k: v for k, v in previous["meta"].get(
            "merged", {}).items() if k in kept and k not in results["meta"]["merged"]})
        results["meta"]["seconds"].update({k: previous["meta"]["seconds"].get(k) for k in kept})

    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        for section in sections:
            started = time.perf_counter()
            print(f"== {section}", flush=True)
            try:
                results[section] = _run(section, args, work, cache, quick)
            except Exception as exc:  # one broken section must not lose the others' figures
                if args.strict:
                    raise
                results.setdefault("errors", {})[section] = f"{exc.__class__.__name__}: {exc}"
                print(f"  {section} failed: {results['errors'][section]}", flush=True)
            results["meta"]["seconds"][section] = round(time.perf_counter() - started, 1)
            results["meta"]["load_after"] = _load()
            _write(out, results)

    from bench.plots import draw_all
    from bench.report import markdown

    made = draw_all(results, plots)
    print()
    print(markdown(results))
    print(f"results: {out}; plots: {', '.join(str(p) for p in made) or 'none'}")
    return 1 if results.get("errors") else 0


def _write(out: Path, results: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


def _run(section: str, args: argparse.Namespace, work: Path, cache: Path,
         quick: bool) -> dict[str, Any]:
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    if section == "ingest":
        from bench.ingest_speed import bench_ingest

        chars = args.ingest_chars or (60_000 if quick else 3_200_000)
        return bench_ingest(chars, 2 if quick else args.ingest_slices, work)
    if section == "retrieval":
        from bench.retrieval_scale import bench_retrieval

        default = "300,1000" if quick else "1000,10000,100000"
        sizes = [int(s) for s in (args.sizes or default).split(",")]
        return bench_retrieval(sizes, cache / "retrieval", args.queries or (10 if quick else None))
    if section == "quality":
        from bench.quality import bench_quality

        return bench_quality(work, 4 if quick else args.llm_questions, quick, models)
    from bench.llm_speed import bench_llm

    return bench_llm(work, 1 if quick else args.llm_prompts, quick, models)


if __name__ == "__main__":
    sys.exit(main())
