"""Load test of the HTTP API: POST /ask at 1, 8 and 32 concurrent clients on a 100k-chunk store.

A real ``rag serve`` subprocess (one uvicorn worker, extractive answerer) on a free 127.0.0.1
port answers the 100 dev questions, cycled, from client threads; every non-200 or timeout is an
error. The baseline, measured in the same run, is the same questions answered serially in this
process through ``rag.Assistant.ask`` on the same store (no HTTP), from one pool thread as the
server runs each request (``--baseline-thread main`` asks from the main thread, where torch's
two OpenMP threads made encoding about 3x slower on the shared machine). Each round runs the
baseline and the levels in a rotated order, so the shared machine's load drift hits all of them
alike; the summary gives medians over rounds and ratios to the baseline. The server is always
stopped.

    .venv/bin/python -m bench.load_http            # writes bench/results/load-http.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.retrieval_scale import BUILD_VERSION, build_store, questions

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "load-http.json"
BASELINE = "in-process"
_SAMPLES = 5  # error and mismatch examples kept per measurement


# -- the store ---------------------------------------------------------------------------------
def default_cache() -> Path:
    """Where bench stores live: ``$RAG_DATA_DIR/bench-cache`` (as ``python -m bench``)."""
    from rag.settings import Settings

    return Settings().data_dir.resolve() / "bench-cache"


def prepare_store(size: int, folder: Path, source: Path | None = None) -> dict[str, Any]:
    """A ``size``-chunk synthetic store in ``folder``: reused, copied from ``source``, or built.

    Copying the retrieval bench's store of the same recipe is faster than building; ``source``
    is only read. The copy lands under a temporary name first, so a stopped copy is never reused.
    """
    stamp = f"built-{BUILD_VERSION}.json"
    if (folder / stamp).exists():
        return {**json.loads((folder / stamp).read_text()), "how": "reused"}
    if source is not None and (source / stamp).exists():
        info = json.loads((source / stamp).read_text())
        if info.get("chunks") == size:
            started = time.perf_counter()
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, partial, ignore=shutil.ignore_patterns("write.lock"))
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(partial, folder)
            return {**info, "how": f"copied from {source}",
                    "copy_seconds": round(time.perf_counter() - started, 1)}
    from rag.embeddings import make_embedder
    from rag.settings import Settings

    built = build_store(size, folder, make_embedder(Settings(data_dir=folder)))
    return {**built, "how": "reused" if built.pop("reused") else "built"}


# -- the server --------------------------------------------------------------------------------
def free_port() -> int:
    """A port nobody listens on at the moment, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory_mb(pid: int, field: str) -> float | None:
    """VmRSS / VmHWM (peak) of a process in MB, from /proc (None where /proc is missing)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Server:
    """A ``rag serve`` subprocess on 127.0.0.1 with the extractive answerer over ``store``."""

    def __init__(self, store: Path, log_path: Path, start_timeout: float = 300.0) -> None:
        self.store = store
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.health: dict[str, Any] = {}

    def command(self) -> list[str]:
        """The ``rag serve`` command line (the venv's console script when it is there)."""
        script = Path(sys.executable).parent / "rag"
        head = [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]
        return head + ["--data-dir", str(self.store), "serve", "--host", "127.0.0.1", "--port",
                       str(self.port), "--answerer", "extractive", "--no-chat"]

    def start(self) -> Server:
        """Start the server and wait (bounded) until /health says ok."""
        env = {**os.environ, "RAG_DATA_DIR": str(self.store), "RAG_GENERATOR": "extractive",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rag serve exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            try:
                reply = httpx.get(self.url + "/health", timeout=5)
                if reply.status_code == 200:
                    self.health = reply.json()
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"rag serve was not healthy within {self.start_timeout:.0f} "
                                   f"s: {self.log_tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited within 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def rss_mb(self) -> float | None:
        """The server's resident memory now."""
        return _memory_mb(self.proc.pid, "VmRSS") if self.proc else None

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident memory so far."""
        return _memory_mb(self.proc.pid, "VmHWM") if self.proc else None

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the server's log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@contextmanager
def running_server(store: Path, log_path: Path) -> Iterator[Server]:
    """A started ``Server`` that is stopped however the block ends."""
    server = Server(store, log_path)
    try:
        yield server.start()
    finally:
        server.stop()


# -- measuring ---------------------------------------------------------------------------------
def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _stats(latencies: Sequence[float]) -> dict[str, float | None]:
    """p50 / p95 (nearest rank) / max in milliseconds."""
    from rag.evaluation.metrics import percentiles

    out: dict[str, float | None] = dict(percentiles(latencies))
    out["max"] = round(max(latencies), 1) if latencies else None
    return out


def _summarise(latencies: list[float], wall: float, texts: dict[int, str],
               expected: dict[int, str] | None) -> dict[str, Any]:
    """Throughput, latency percentiles and how many answers differ from the baseline's."""
    out: dict[str, Any] = {"requests": len(latencies) , "seconds": round(wall, 2),
                           "rps": round(len(latencies) / wall, 2) if wall else None,
                           "latency_ms": _stats(latencies)}
    if expected is not None:
        differ = sorted(i for i, text in texts.items() if i in expected and expected[i] != text)
        out["answers_differing_from_baseline"] = len(differ)
        out["differing_examples"] = [{"question": i, "http": texts[i][:200],
                                      "in_process": (expected.get(i) or "")[:200]}
                                     for i in differ[:_SAMPLES]]
    return out


def _stages(timings: Sequence[dict[str, float]]) -> dict[str, float | None]:
    """Median milliseconds of each stage the server reports (retrieve, answer, total)."""
    return {name: _median([t.get(name) for t in timings])
            for name in ("retrieve_ms", "answer_ms", "total_ms")}


def measure_baseline(assistant: Any, qs: Sequence[str], n: int,
                     thread: str = "worker") -> tuple[dict[str, Any], dict[int, str]]:
    """The same questions answered serially in this process, no HTTP.

    ``thread="worker"`` asks from one pool thread, as the server runs every request; "main"
    asks from the main thread, where torch splits each encoding over its OpenMP threads (on
    the shared 2-core machine that measured about 3x slower than a pool thread).
    """
    latencies: list[float] = []
    texts: dict[int, str] = {}
    timings: list[dict[str, float]] = []
    load = _load()
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.perf_counter()
        for i in range(n):
            mark = time.perf_counter()
            question = qs[i % len(qs)]
            answer = (assistant.ask(question) if thread == "main"
                      else pool.submit(assistant.ask, question).result())
            latencies.append((time.perf_counter() - mark) * 1000)
            texts[i % len(qs)] = answer.text
            timings.append(answer.timings_ms)
        wall = time.perf_counter() - started
    result = _summarise(latencies, wall, texts, None)
    result.update(concurrency=1, errors=0, thread=thread, stages_ms=_stages(timings),
                  load_before=load, load_after=_load())
    return result, texts


class Target(Protocol):
    """What a measurement needs of a server: where it listens, and its memory."""

    url: str

    def rss_mb(self) -> float | None:
        """Resident memory in MB, or None when it cannot be read."""


def measure_http(server: Target, qs: Sequence[str], concurrency: int, n: int, timeout: float,
                 expected: dict[int, str] | None) -> dict[str, Any]:
    """``n`` POST /ask requests from ``concurrency`` client threads; any non-200 is an error."""
    latencies: list[float] = []
    timings: list[dict[str, float]] = []
    texts: dict[int, str] = {}
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    def client(http: httpx.Client) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            question = qs[i % len(qs)]
            mark = time.perf_counter()
            try:
                reply = http.post(server.url + "/ask", json={"question": question})
                elapsed = (time.perf_counter() - mark) * 1000
                problem = None if reply.status_code == 200 else \
                    f"HTTP {reply.status_code}: {reply.text[:200]}"
                body = reply.json() if problem is None else {}
            except (httpx.HTTPError, ValueError) as exc:
                elapsed = (time.perf_counter() - mark) * 1000
                problem, body = f"{exc.__class__.__name__}: {exc}"[:200], {}
            with lock:
                latencies.append(elapsed)
                if problem is not None:
                    errors.append(problem)
                else:
                    texts[i % len(qs)] = str(body.get("text", ""))
                    timings.append(dict(body.get("timings_ms") or {}))

    load = _load()
    with httpx.Client(timeout=timeout, limits=limits) as http:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for future in [pool.submit(client, http) for _ in range(concurrency)]:
                future.result()
        wall = time.perf_counter() - started
    result = _summarise(latencies, wall, texts, expected)
    result.update(concurrency=concurrency, errors=len(errors), error_examples=errors[:_SAMPLES],
                  server_total_ms=_stats([t.get("total_ms", 0.0) for t in timings]),
                  stages_ms=_stages(timings), load_before=load, load_after=_load(),
                  server_rss_mb=server.rss_mb())
    return result


def _median(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.median(kept), 2) if kept else None


def summarise_rounds(rounds: list[dict[str, Any]], levels: Sequence[int]) -> dict[str, Any]:
    """Per level: medians over rounds, total errors, and ratios to the in-process baseline."""
    names = [BASELINE] + [str(c) for c in levels]
    out: dict[str, Any] = {}
    for name in names:
        runs = [r["measurements"][name] for r in rounds]
        out[name] = {
            "rounds": len(runs), "requests": sum(m["requests"] for m in runs),
            "errors": sum(m["errors"] for m in runs),
            "rps": _median([m["rps"] for m in runs]),
            "p50_ms": _median([m["latency_ms"]["p50"] for m in runs]),
            "p95_ms": _median([m["latency_ms"]["p95"] for m in runs]),
            "max_ms": max((m["latency_ms"]["max"] or 0.0) for m in runs),
            "load": [m["load_before"] for m in runs],
            "stages_ms": {stage: _median([m["stages_ms"][stage] for m in runs])
                          for stage in ("retrieve_ms", "answer_ms", "total_ms")},
        }
        if name != BASELINE:
            out[name]["server_p50_ms"] = _median([m["server_total_ms"]["p50"] for m in runs])
            out[name]["server_rss_mb"] = max((m["server_rss_mb"] or 0.0) for m in runs)
            out[name]["answers_differing_from_baseline"] = sum(
                m["answers_differing_from_baseline"] for m in runs)
    base = out[BASELINE]
    for name in names[1:]:
        row = out[name]
        row["rps_vs_baseline"] = (round(row["rps"] / base["rps"], 2)
                                  if row["rps"] and base["rps"] else None)
        row["p50_vs_baseline"] = (round(row["p50_ms"] / base["p50_ms"], 2)
                                  if row["p50_ms"] and base["p50_ms"] else None)
    return out


def run(store: Path, *, levels: Sequence[int] = (1, 8, 32), requests: int = 100,
        rounds: int = 3, timeout: float = 120.0, n_questions: int | None = None,
        warmup: int = 3, log_path: Path | None = None,
        baseline_thread: str = "worker") -> dict[str, Any]:
    """Every round: the baseline and each concurrency level, in a rotated order."""
    from rag.assistant import Assistant
    from rag.settings import Settings

    qs = questions(n_questions)
    assistant = Assistant(Settings(data_dir=store, answerer="extractive"))
    # Loads the encoder and the BM25 index before anything is timed.
    measure_baseline(assistant, qs[-warmup:], warmup, baseline_thread)
    expected: dict[int, str] = {}  # the in-process answers, filled by the first baseline
    log_path = log_path or store.parent / "server.log"
    result: dict[str, Any] = {"rounds": []}
    with running_server(store, log_path) as server:
        assert server.proc is not None
        result["server"] = {"command": " ".join(server.command()), "pid": server.proc.pid,
                            "health": server.health,
                            "uvicorn_workers": 1, "threadpool_tokens": 40,
                            "rss_mb_at_start": server.rss_mb()}
        warm = measure_http(server, qs[-warmup:], 1, warmup, timeout, None)
        result["server"]["warmup"] = {k: warm[k] for k in ("errors", "error_examples")}
        names: list[str | int] = [BASELINE, *levels]
        for number in range(rounds):
            shift = number % len(names)
            order = names[shift:] + names[:shift]
            measured: dict[str, Any] = {}
            for name in order:
                if name == BASELINE:
                    measured[BASELINE], texts = measure_baseline(assistant, qs, requests,
                                                                 baseline_thread)
                    expected = expected or texts
                else:
                    assert isinstance(name, int)
                    measured[str(name)] = measure_http(server, qs, name, requests, timeout,
                                                       expected)
                m = measured[str(name)]
                print(f"  round {number + 1} {name!s:>10}: {m['rps']} req/s, p50 "
                      f"{m['latency_ms']['p50']} ms, p95 {m['latency_ms']['p95']} ms, errors "
                      f"{m['errors']}, load {m['load_before']}", flush=True)
            result["rounds"].append({"order": [str(n) for n in order], "measurements": measured})
        result["server"]["peak_rss_mb"] = server.peak_rss_mb()
        result["server"]["log_tail"] = server.log_tail(600)
    result["summary"] = summarise_rounds(result["rounds"], levels)
    result["errors"] = sum(row["errors"] for row in result["summary"].values())
    return result


def markdown(result: dict[str, Any]) -> str:
    """The summary as a markdown table, the baseline first."""
    s = result["summary"]
    meta = result.get("meta", {})
    lines = [f"**HTTP API under load** ({meta.get('chunks', '?'):,} chunks, extractive answerer, "
             f"one `rag serve` process; medians of {meta.get('rounds', '?')} rounds, "
             f"{meta.get('requests', '?')} requests per level per round; load average "
             f"{meta.get('load_before', '?')} -> {meta.get('load_after', '?')}):", "",
             "| clients | req/s | p50 ms | p95 ms | max ms | errors | req/s vs in-process | "
             "p50 vs in-process | retrieve / answer ms inside (median) | load average | "
             "server RSS MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def stages(row: dict[str, Any]) -> str:
        return f"{row['stages_ms']['retrieve_ms']} / {row['stages_ms']['answer_ms']}"

    base = s[BASELINE]
    thread = result["rounds"][0]["measurements"][BASELINE].get("thread", "worker")
    lines.append(f"| in-process `Assistant.ask`, serial, {thread} thread (baseline) | "
                 f"{base['rps']} | {base['p50_ms']} | {base['p95_ms']} | {base['max_ms']} | "
                 f"{base['errors']} / {base['requests']} | 1.00x | 1.00x | {stages(base)} | "
                 f"{', '.join(map(str, base['load']))} | - |")
    for name, row in s.items():
        if name == BASELINE:
            continue
        lines.append(f"| {name} | {row['rps']} | {row['p50_ms']} | {row['p95_ms']} | "
                     f"{row['max_ms']} | {row['errors']} / {row['requests']} | "
                     f"{row['rps_vs_baseline']}x | {row['p50_vs_baseline']}x | "
                     f"{stages(row)} | {', '.join(map(str, row['load']))} | "
                     f"{row['server_rss_mb']} |")
    differ = sum(row.get("answers_differing_from_baseline", 0) for row in s.values())
    lines += ["", f"Answers differing from the in-process ones: {differ}. Server peak RSS "
                  f"{result['server'].get('peak_rss_mb')} MB."]
    return "\n".join(lines)


# -- the command -----------------------------------------------------------------------------
def _commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "rag",
                                "ingest"], capture_output=True, text=True, timeout=10).stdout
        return head + (" (rag/ or ingest/ modified)" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parser() -> argparse.ArgumentParser:
    """The load test's options."""
    p = argparse.ArgumentParser(prog="python -m bench.load_http", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=100_000, help="chunks in the synthetic store")
    p.add_argument("--store", type=Path,
                   help="the store's folder (default $RAG_DATA_DIR/bench-cache/load/store-SIZE)")
    p.add_argument("--copy-from", type=Path,
                   help="a built store to copy instead of building (default the retrieval "
                        "bench's $RAG_DATA_DIR/bench-cache/retrieval/store-SIZE, if built)")
    p.add_argument("--levels", default="1,8,32", help="concurrent clients, comma-separated")
    p.add_argument("--requests", type=int, default=100, help="requests per level per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds, each in a rotated order")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--questions", type=int, help="only the first N dev questions (default 100)")
    p.add_argument("--baseline-thread", choices=("worker", "main"), default="worker",
                   help="ask the in-process baseline from a pool thread, as the server does "
                        "(default), or from the main thread")
    p.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    """Prepare the store, run the rounds, write the JSON and print the table; 1 on any error."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parser().parse_args(argv)
    levels = [int(c) for c in args.levels.split(",")]
    cache = default_cache()
    store = (args.store or cache / "load" / f"store-{args.size}").resolve()
    source = args.copy_from or cache / "retrieval" / f"store-{args.size}"
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
        "commit": _commit(), "command": "python -m bench.load_http " + " ".join(
            sys.argv[1:] if argv is None else argv), "levels": levels,
        "requests": args.requests, "rounds": args.rounds, "timeout_s": args.timeout,
        "load_before": _load(), "method": __doc__.strip() if __doc__ else ""}
    print(f"== store {store}", flush=True)
    meta["store"] = prepare_store(args.size, store, source if source.resolve() != store else None)
    meta["chunks"] = meta["store"]["chunks"]
    print(f"   {meta['store']}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        result = run(store, levels=levels, requests=args.requests, rounds=args.rounds,
                     timeout=args.timeout, n_questions=args.questions,
                     log_path=Path(tmp) / "server.log", baseline_thread=args.baseline_thread)
    meta.update(load_after=_load(), seconds=round(time.perf_counter() - started, 1))
    result = {"meta": meta, **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print()
    print(markdown(result))
    print(f"results: {args.out}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
