"""Answerers side by side on the dev set, and the default model's time to first token.

    .venv/bin/python bench/bench_generators.py                      # everything
    .venv/bin/python bench/bench_generators.py --skip-speed --limit 20
    .venv/bin/python bench/bench_generators.py --skip-quality --prompt-chars 600,1500,4000
    .venv/bin/python bench/bench_generators.py --skip-speed --generators qwen2.5-coder-1.5b \
        --llm-prompt-chars 1000 --drafts /tmp/drafts-1.5b.json   # answers kept for re-runs
    .venv/bin/python bench/bench_generators.py --skip-speed --eval-dir bench/seed_probe

Quality (``rag.evaluation.evaluate``, the same Assistant the front ends call) on
shared/eval/rgb: answer accuracy on the 70 answerable questions (an alias of every answer group
in the text), refusal rate on the 30 unanswerable ones, false refusals, and the share of
generated sentences the citation checker could verify. ``--eval-dir bench/seed_probe`` scores
the same on 24 questions about the full-length seed article instead (12 it answers, 12 on its
topic that it does not), written for this project: a small check on full-length news, which the
dev set's snippets are not.

Speed: the default model answers questions about full-length news (seeds/, 900-character
chunks) and dev-set snippets through ``Assistant.ask_stream``, with each ``llm_prompt_chars``
budget: time to first token (from the call, retrieval and prompt processing included), prompt
tokens as the model's tokenizer counts them, and generation tokens/s (streamed pieces after the
first). Wall-clock figures depend on what else the 2 cores run: the load average is recorded,
and so is the process CPU time to the first token, which other load does not inflate (with
``--threads 1`` it is the uncontended single-thread wall time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RGB = REPO.parent / "shared" / "eval" / "rgb"
SEEDS = REPO / "seeds"
SEED_QUESTIONS = [
    "What did Putin offer instead of the Czech radar?",
    "Where did Bush and Putin meet?",
    "How many interceptor missiles would the US base in Poland?",
    "What did Robert Gates say about the Gabala site?",
    "Why does Russia oppose the UN plan for Kosovo?",
]
WARM_UP = "Who hosted Putin in Kennebunkport?"
QUALITY_KEYS = ("answer_accuracy", "refusal_rate", "false_refusal_rate",
                "supported_sentence_rate", "invalid_citations")


def prompt_key(model: str, messages: list[Any]) -> str:
    """The identity of one answer prompt to one model (what greedy decoding depends on)."""
    body = json.dumps([model, [[m.type, m.content] for m in messages]], ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def replaying(drafts: dict[str, str], counts: dict[str, int],
              save: Any = None) -> Any:
    """``make_chat_model`` whose models answer a prompt seen before with the recorded text.

    The local models decode greedily (temperature 0, fixed seed), so the same prompt gives the
    same text: a re-run after a change that leaves the prompts alone (answer checking) costs
    no generation, and a prompt that did change is generated for real and recorded.
    """
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    from rag.llm import factory as llm_factory

    real = llm_factory.make_chat_model

    class Replay(BaseChatModel):
        inner: Any
        model_name: str

        @property
        def _llm_type(self) -> str:
            return "replay"

        def get_num_tokens(self, text: str) -> int:
            return int(self.inner.get_num_tokens(text))

        def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                    **kwargs: Any) -> Any:
            key = prompt_key(self.model_name, messages)
            if key in drafts:
                counts["replayed"] += 1
                yield ChatGenerationChunk(message=AIMessageChunk(content=drafts[key]))
                return
            counts["generated"] += 1
            text = []
            for chunk in self.inner._stream(messages, stop, run_manager, **kwargs):
                text.append(str(chunk.message.content))
                yield chunk
            drafts[key] = "".join(text)
            if save is not None:
                save()

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                      **kwargs: Any) -> Any:
            text = "".join(str(c.message.content) for c in self._stream(messages, stop))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def make(name: str, settings: Any) -> Any:
        return Replay(inner=real(name, settings), model_name=name)

    return make


def quality(generators: list[str], limit: int | None, threads: int, index_dir: Path,
            prompt_chars: int | None = None, drafts_file: Path | None = None,
            eval_dir: Path = RGB) -> dict[str, Any]:
    """rag.evaluation's answer metrics for each generator on an eval set (one shared index)."""
    from rag.evaluation import evaluate
    from rag.llm import factory as llm_factory
    from rag.settings import Settings

    overrides: dict[str, Any] = {"llm_threads": threads}
    if prompt_chars is not None:
        overrides["llm_prompt_chars"] = prompt_chars
    drafts: dict[str, str] = {}
    counts = {"replayed": 0, "generated": 0}
    if drafts_file is not None:
        path = drafts_file
        if path.exists():
            drafts = json.loads(path.read_text(encoding="utf-8"))

        def save() -> None:  # after every new answer: a long run stopped half-way still counts
            path.write_text(json.dumps(drafts, indent=0) + "\n", encoding="utf-8")

        llm_factory.make_chat_model = replaying(drafts, counts, save)  # type: ignore[assignment]
    settings = Settings(**overrides)
    report = evaluate(eval_dir / "corpus.jsonl", eval_dir / "questions.jsonl", settings, generators,
                      limit, dense_baseline=False, progress=True, index_dir=index_dir)
    out: dict[str, Any] = {"eval_set": str(eval_dir), "n_questions": report["n_questions"],
                           "n_answerable": report["n_answerable"],
                           "n_unanswerable": report["n_unanswerable"],
                           "llm_prompt_chars": settings.llm_prompt_chars,
                           "load_avg": [round(x, 2) for x in os.getloadavg()],
                           "generators": {}}
    if drafts_file is not None:
        out["drafts"] = {"file": str(drafts_file), **counts}
    for name, metrics in report["answerers"].items():
        if "error" in metrics:
            out["generators"][name] = {"error": metrics["error"]}
            continue
        row = {key: metrics[key] for key in QUALITY_KEYS}
        row["total_ms_p50"] = metrics["latency_ms"]["total_ms"]["p50"]
        row["answer_ms_p50"] = metrics["latency_ms"]["answer_ms"]["p50"]
        out["generators"][name] = row
    out["answers"] = [{"id": r["id"], "question": r["question"], "answer": r["answer"],
                       **{g: {k: a.get(k) for k in ("text", "refused", "correct",
                                                    "supported_sentences", "total_sentences")}
                          for g, a in r["answers"].items()}} for r in report["rows"]]
    return out


def _one(assistant: Any, question: str, name: str) -> dict[str, Any]:
    from rag.answering.base import Draft
    from rag.answering.llm_answerer import LLMAnswerer
    from rag.records import Answer

    started, cpu_started = time.perf_counter(), time.process_time()
    first = last = cpu_first = cpu_last = None
    pieces = 0
    answer: Answer | None = None
    # The model's own stream (Assistant.ask_stream shows only the checked answer, at the end).
    passages = assistant.retrieve(question)
    retrieve_ms = round((time.perf_counter() - started) * 1000, 1)
    writer = assistant.answerer(name)
    for event in writer.stream(question, passages):
        now = time.perf_counter()
        if isinstance(event, Draft):
            answer = Answer(question=question, text=event.text, citations=event.citations,
                            refused=event.refused, answerer=writer.name, timings_ms={
                                "retrieve_ms": retrieve_ms})
        elif event:
            pieces += 1
            cpu_last = time.process_time()
            if first is None:
                first, cpu_first = now, cpu_last
            last = now
    assert answer is not None
    llm = assistant.answerer(name)
    row: dict[str, Any] = {"question": question, "refused": answer.refused,
                           "text": answer.text, "retrieve_ms": answer.timings_ms["retrieve_ms"]}
    if answer.refused and not isinstance(llm, LLMAnswerer) or first is None:
        return row
    assert isinstance(llm, LLMAnswerer)
    messages = llm.answer_messages(llm.last_variables)
    row.update(
        ttft_ms=round((first - started) * 1000), pieces=pieces,
        tokens_per_s=round((pieces - 1) / (last - first), 2) if last and last > first else None,
        ttft_cpu_ms=round((cpu_first - cpu_started) * 1000) if cpu_first else None,
        tokens_per_cpu_s=round((pieces - 1) / (cpu_last - cpu_first), 2)
        if cpu_first and cpu_last and cpu_last > cpu_first else None,
        prompt_tokens=sum(llm.model.get_num_tokens(str(m.content)) for m in messages),
        passage_chars=sum(len(p["text"]) for p in llm.last_variables["passages"]))
    return row


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def _llama_build() -> str:
    """The instruction sets llama.cpp was built with ("AVX2 = 1 | AVX512 = 1 ...")."""
    import llama_cpp

    return str(llama_cpp.llama_print_system_info().decode()).strip()


def speed(name: str, budgets: list[int], threads: int, questions: int,
          work: Path) -> dict[str, Any]:
    """TTFT, prompt tokens and tokens/s of ``name`` for each prompt budget, on two corpora."""
    from rag.assistant import Assistant
    from rag.evaluation import load_questions
    from rag.settings import Settings

    dev = [q.question for q in load_questions(RGB / "questions.jsonl") if q.is_answerable]
    # The warm-up question (last) puts the system prompt in the model's cache, as in a session.
    corpora = {"seeds (full-length news)": ([SEEDS], SEED_QUESTIONS[:questions], WARM_UP),
               "rgb dev snippets": ([RGB / "corpus.jsonl"], dev[:questions], dev[-1])}
    out: dict[str, Any] = {"model": name, "threads": threads, "llama_cpp": _llama_build(),
                           "runs": []}
    for label, (paths, asked, warm_up) in corpora.items():
        index = work / label.split()[0]
        Assistant(Settings(data_dir=index)).ingest(paths)
        for budget in budgets:
            settings = Settings(data_dir=index, llm_threads=threads, llm_prompt_chars=budget)
            assistant = Assistant(settings)
            assistant.answerer(name)
            _one(assistant, warm_up, name)
            rows = [_one(assistant, q, name) for q in asked]
            run = {"corpus": label, "llm_prompt_chars": budget, "questions": len(rows),
                   "load_avg_1m": round(os.getloadavg()[0], 2),
                   **{f"{key}_median": _median(rows, key) for key in (
                       "ttft_ms", "prompt_tokens", "passage_chars", "tokens_per_s",
                       "ttft_cpu_ms", "tokens_per_cpu_s")},
                   "rows": rows}
            out["runs"].append(run)
            print(f"  {label}, llm_prompt_chars={budget}: ttft {run['ttft_ms_median']} ms, "
                  f"{run['prompt_tokens_median']} prompt tokens, "
                  f"{run['tokens_per_s_median']} tokens/s (load {run['load_avg_1m']})",
                  flush=True)
    return out


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def tables(result: dict[str, Any]) -> str:
    """Markdown tables of a result."""
    lines: list[str] = []
    if "quality" in result:
        q = result["quality"]
        replay = q.get("drafts")
        lines += [f"Dev set: {q['n_questions']} questions ({q['n_answerable']} answerable, "
                  f"{q['n_unanswerable']} unanswerable), llm_prompt_chars "
                  f"{q.get('llm_prompt_chars', '-')}, load average {q.get('load_avg', '-')}"
                  + (f", {replay['replayed']} answers replayed, {replay['generated']} generated"
                     if replay else ""), "",
                  "| answerer | accuracy | refusals | false refusals | supported sentences "
                  "| invalid citations | answer p50 ms |", "|---|---|---|---|---|---|---|"]
        for name, m in q["generators"].items():
            if "error" in m:
                lines.append(f"| {name} | skipped: {m['error']} |")
            else:
                lines.append(f"| {name} | " + " | ".join(_fmt(m[k]) for k in QUALITY_KEYS)
                             + f" | {_fmt(m['answer_ms_p50'])} |")
        lines.append("")
    if "speed" in result:
        s = result["speed"]
        lines += [f"{s['model']}, {s['threads']} threads (medians)", "",
                  "| passages from | llm_prompt_chars | passage chars | prompt tokens "
                  "| first token ms | tokens/s | CPU ms to first token | tokens per CPU s "
                  "| load avg |", "|---|---|---|---|---|---|---|---|---|"]
        for run in s["runs"]:
            lines.append(f"| {run['corpus']} | {run['llm_prompt_chars']} | "
                         f"{_fmt(run['passage_chars_median'])} | "
                         f"{_fmt(run['prompt_tokens_median'])} | {_fmt(run['ttft_ms_median'])}"
                         f" | {_fmt(run['tokens_per_s_median'])} | "
                         f"{_fmt(run['ttft_cpu_ms_median'])} | "
                         f"{_fmt(run['tokens_per_cpu_s_median'])} | {run['load_avg_1m']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from rag.llm.local_models import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", default=f"{DEFAULT_MODEL},qwen2.5-coder-0.5b,extractive")
    parser.add_argument("--limit", type=int, help="only the first N dev questions")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--speed-model", default=DEFAULT_MODEL)
    parser.add_argument("--speed-questions", type=int, default=4)
    parser.add_argument("--prompt-chars", default="800,1500,4000",
                        help="llm_prompt_chars budgets to time")
    parser.add_argument("--llm-prompt-chars", type=int,
                        help="passage text the models see in the quality run (default: Settings)")
    parser.add_argument("--drafts", type=Path,
                        help="JSON of the models' answers by prompt: replayed when a prompt is in "
                             "it, generated and added when not")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--index-dir", type=Path, help="keep the dev-set index here")
    parser.add_argument("--eval-dir", type=Path, default=RGB,
                        help="corpus.jsonl and questions.jsonl to score (default: the RGB dev "
                             "set; bench/seed_probe holds 24 questions on the seed article)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" /
                        "generators.json")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-generators-") as tmp:
        work = Path(tmp)
        if not args.skip_quality:
            result["quality"] = quality(args.generators.split(","), args.limit, args.threads,
                                        args.index_dir or work / "rgb-quality",
                                        args.llm_prompt_chars, args.drafts, args.eval_dir)
        if not args.skip_speed:
            budgets = [int(b) for b in args.prompt_chars.split(",")]
            result["speed"] = speed(args.speed_model, budgets, args.threads,
                                    args.speed_questions, work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(tables(result))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
