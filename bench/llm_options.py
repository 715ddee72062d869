"""llama.cpp options for the default model on full-length news: time per answer and accuracy.

Each option is one ``Llama`` of the packaged default model built with its own keyword arguments
(threads, flash attention, a quantized KV cache, batch size, speculative decoding), or one way of
using it (the KV cache of the fixed prompt prefix dropped before each question; follow-ups
condensed by the 0.5B model; earlier prompts' states kept in RAM). Every dev-set question is
asked through ``Assistant.ask``, exactly as the product asks it; per question the options run
one after the other with the order rotating, so load drifts alike for all. Reported per option:
median and p90 of the whole question (``total_ms``) over the questions the model wrote, its
ratio to the first option, how many answers are word for word the first option's (greedy
decoding), and accuracy by kind.

    python -m bench.llm_options                         # every option, every newsroom question
    python -m bench.llm_options --options "1 thread,2 threads" --busy 1 --limit 30

``--busy N`` runs N processes spinning on the CPU meanwhile (a machine doing something else).
Run it on an AVX2-only build by putting that build of llama-cpp-python first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GGML_TYPE_Q8_0 = 8

OPTIONS: dict[str, dict[str, Any]] = {
    "1 thread": {"llama": {"n_threads": 1}},
    "2 threads": {"llama": {"n_threads": 2}},
    "flash attention": {"llama": {"n_threads": 1, "flash_attn": True}},
    "flash attention + KV q8_0": {"llama": {"n_threads": 1, "flash_attn": True,
                                           "type_k": GGML_TYPE_Q8_0,
                                           "type_v": GGML_TYPE_Q8_0}},
    "batch 128": {"llama": {"n_threads": 1, "n_batch": 128, "n_ubatch": 128}},
    "prefix cache dropped each question": {"llama": {"n_threads": 1}, "reset": True},
    "prompt-lookup drafts (10 tokens)": {"llama": {"n_threads": 1}, "draft": "lookup"},
    "0.5B drafts (4 tokens)": {"llama": {"n_threads": 1}, "draft": "0.5b"},
    "0.5B condenses follow-ups": {"llama": {"n_threads": 1}, "condenser": "0.5b"},
    "prompt states kept in RAM": {"llama": {"n_threads": 1}, "ram_cache": True},
}


def _flags() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return " ".join(sorted({w for w in out.split() if w.startswith("avx")}))


def _build_info() -> str:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    return f"{llama_cpp.__file__}: {info.strip()}"


def _spin() -> None:
    while True:
        pass


class SmallModelDraft:
    """Draft tokens from a smaller model of the same family, greedily (llama.cpp verifies them)."""

    def __init__(self, llama: Any, tokens: int) -> None:
        self.llama = llama
        self.tokens = tokens

    def __call__(self, input_ids: Any, /, **kwargs: Any) -> Any:
        import numpy as np

        out: list[int] = []
        # generate() keeps the longest common prefix of its last call in the KV cache.
        for token in self.llama.generate(input_ids.tolist(), temp=0.0, top_k=1):
            if token == self.llama.token_eos():
                break
            out.append(token)
            if len(out) >= self.tokens:
                break
        return np.array(out, dtype=np.intc)


def _prompt_states(capacity_bytes: int = 256 << 20) -> Any:
    """States of earlier prompts by prompt (llama-cpp-python's RAM cache), 256 MB.

    Without the logits array llama-cpp-python copies into every state: nothing samples from it,
    as a restored state decodes its last token again before sampling.
    """
    import numpy as np
    from llama_cpp.llama_cache import LlamaRAMCache

    class PromptStates(LlamaRAMCache):
        def __setitem__(self, key: Any, value: Any) -> None:
            value.scores = np.zeros((1, value.scores.shape[1]), dtype=np.single)
            super().__setitem__(key, value)

    return PromptStates(capacity_bytes=capacity_bytes)


def _assistants(settings: Any, base: Any, names: list[str]) -> dict[str, Any]:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.runnables import RunnableLambda
    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    from rag.answering.llm_answerer import LLMAnswerer
    from rag.assistant import Assistant
    from rag.llm.chat_model import LlamaCppChatModel
    from rag.llm.local_models import DEFAULT_MODEL, ensure_model

    path = ensure_model(DEFAULT_MODEL, settings)
    n_ctx = min(settings.llm_context, 4096)
    out = {}
    for name in names:
        option = OPTIONS[name]
        kwargs = dict(option["llama"])
        model = LlamaCppChatModel(model_path=path, n_ctx=n_ctx, n_threads=kwargs["n_threads"],
                                  max_tokens=settings.max_new_tokens)
        if option.get("draft") == "lookup":
            kwargs["draft_model"] = LlamaPromptLookupDecoding(num_pred_tokens=10)
        elif option.get("draft") == "0.5b":
            small = Llama(model_path=str(ensure_model("qwen2.5-coder-0.5b", settings)),
                          n_ctx=n_ctx, n_threads=1, verbose=False)
            kwargs["draft_model"] = SmallModelDraft(small, 4)
        if "draft_model" in kwargs:
            # Drafts are verified against every position's logits; llama-cpp-python sizes its
            # logits array by this argument, not by the draft model it then forces it for.
            kwargs["logits_all"] = True
        kwargs.setdefault("n_batch", model.n_batch)
        model._llama = Llama(model_path=str(path), n_ctx=n_ctx, seed=model.seed, verbose=False,
                             **kwargs)
        if option.get("ram_cache"):
            # A follow-up's condense prompt evicts the answer prompt's prefix from the KV cache;
            # a saved state brings it back.
            model._llama.set_cache(_prompt_states())
        writer = LLMAnswerer(DEFAULT_MODEL, model, base.embedder, settings, scorer=base.scorer)
        if option.get("condenser") == "0.5b":
            small_model = LlamaCppChatModel(
                model_path=ensure_model("qwen2.5-coder-0.5b", settings), n_ctx=2048,
                n_threads=1, max_tokens=settings.max_new_tokens).load()
            writer.condense_chain = (RunnableLambda(writer.condense_messages)
                                     | small_model.bind(stop=["\n"], max_tokens=64)
                                     | StrOutputParser())
        out[name] = Assistant(settings, embedder=base.embedder, answerer=writer)
    return out


def _row(q: Any, answer: Any) -> dict[str, Any]:
    from rag.evaluation.scoring import is_correct, mentions_any

    correct = (not answer.refused) and is_correct(answer.text, q.answer)
    row = {"id": q.id, "kind": q.kind, "answerable": q.is_answerable, "refused": answer.refused,
           "correct": correct, "text": answer.text, "answerer": answer.answerer,
           "supported_sentences": answer.supported_sentences,
           "total_sentences": answer.total_sentences, "citation_problems": [],
           "timings_ms": answer.timings_ms}
    if q.stale:
        row["stale"] = not answer.refused and not correct and mentions_any(answer.text, q.stale)
    return row


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from rag.evaluation.metrics import answer_metrics, by_kind

    keys = ("answer_accuracy", "wrong_answer_rate", "refusal_rate", "false_refusal_rate",
            "stale_answer_rate")
    overall = answer_metrics(rows)
    kinds = by_kind(rows, answer_metrics)
    wrong = sum(1 for r in rows if r["answerable"] and not r["refused"] and not r["correct"])
    wrong += sum(1 for r in rows if not r["answerable"] and not r["refused"])
    return {**{k: overall[k] for k in keys}, "answered_wrong_of_all": round(wrong / len(rows), 4),
            "by_kind": {kind: {k: m[k] for k in keys} for kind, m in kinds.items()}}


def run(eval_dir: Path, names: list[str], limit: int | None, index: Path, busy: int,
        kind: str | None = None) -> dict[str, Any]:
    from rag.assistant import Assistant
    from rag.evaluation.questions import load_questions
    from rag.llm.local_models import DEFAULT_MODEL
    from rag.settings import Settings

    settings = Settings(data_dir=index, chroma_mode="embedded", answerer="extractive")
    base = Assistant(settings)
    base.ingest([eval_dir / "corpus.jsonl"])
    questions = [q for q in load_questions(eval_dir / "questions.jsonl")
                 if kind is None or q.kind == kind][:limit]
    assistants = _assistants(settings, base, names)
    for assistant in assistants.values():
        assistant.ask(questions[0].question)  # warm: the fixed prompt prefix is in the cache
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
    for spinner in spinners:
        spinner.start()
    loads: list[float] = []
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    try:
        for i, q in enumerate(questions):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                assistant = assistants[name]
                if OPTIONS[name].get("reset"):
                    assistant.answerer(DEFAULT_MODEL).model._llama.reset()
                answer = assistant.ask(q.question, q.history,
                                       filters={"today": q.today} if q.today else None)
                rows[name].append(_row(q, answer))
            loads.append(os.getloadavg()[0])
            print(f"{i + 1}/{len(questions)} load {loads[-1]:.2f}", flush=True)
    finally:
        for spinner in spinners:
            spinner.kill()
    first = names[0]
    written = [i for i, r in enumerate(rows[first]) if r["answerer"] == DEFAULT_MODEL]
    options = {}
    for name in names:
        times = sorted(rows[name][i]["timings_ms"]["total_ms"] for i in written)
        options[name] = {
            "option": {k: v for k, v in OPTIONS[name].items()},
            "total_ms_p50": round(statistics.median(times), 1) if times else None,
            "total_ms_p90": round(times[int(0.9 * (len(times) - 1))], 1) if times else None,
            "same_answer_as_first": sum(a["text"] == b["text"]
                                        for a, b in zip(rows[name], rows[first], strict=True)),
            **_summary(rows[name]),
        }
    p50 = options[first]["total_ms_p50"]
    for name in names:
        value = options[name]["total_ms_p50"]
        options[name]["ratio_to_first"] = round(value / p50, 3) if value and p50 else None
    return {
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu_flags": _flags(),
        "llama_build": _build_info(), "cpus": os.cpu_count(), "busy_processes": busy, "kind": kind,
        "eval_dir": str(eval_dir), "questions": len(questions), "model_written": len(written),
        "load_avg_median": round(statistics.median(loads), 2) if loads else None,
        "options": options, "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path,
                        default=REPO.parent / "shared" / "eval" / "newsroom")
    parser.add_argument("--options", default=",".join(OPTIONS),
                        help="comma-separated option names; the first is the baseline")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--kind", default=None, help="questions of this kind only")
    parser.add_argument("--busy", type=int, default=0, help="CPU-spinning processes meanwhile")
    parser.add_argument("--index", type=Path, default=Path("/tmp/bench-llm-options-index"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results"
                        / "llm-options.json")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.options.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPTIONS]
    if unknown:
        parser.error(f"unknown options {unknown}; known: {list(OPTIONS)}")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    result = {"started": started,
              **run(args.eval_dir, names, args.limit, args.index, args.busy, args.kind)}
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, row in result["options"].items():
        print(f"{name}: p50 {row['total_ms_p50']} ms (x{row['ratio_to_first']}), same answer "
              f"{row['same_answer_as_first']}/{result['questions']}, right "
              f"{row['answer_accuracy']}, wrong of all {row['answered_wrong_of_all']}, hard "
              f"refused {row['refusal_rate']}")
    print(f"CPU flags: {result['cpu_flags']}\n{result['llama_build']}\n"
          f"load median {result['load_avg_median']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
