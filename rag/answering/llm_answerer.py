"""Answers written by a language model: LCEL chains that condense a follow-up and answer.

The answer chain sees the best sentences of the retrieved passages (up to
``Settings.llm_prompt_chars``: prompt length is what sets the time to the first token on a
CPU), marked as quoted data. Its streamed text passes through ``MarkerFilter`` so no ``[n]``
that points at no passage is shown, and the finished text goes through the
``CitationChecker`` before it becomes a ``Draft``.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from rag.answering import prompts
from rag.answering.base import Draft, refusal
from rag.answering.citations import CitationChecker, MarkerFilter
from rag.answering.condense import heuristic_condense
from rag.answering.evidence import EvidenceScorer
from rag.answering.markers import MARKER
from rag.embeddings import Embedder
from rag.errors import ModelUnavailable, RagError, Stopped
from rag.records import Passage, Turn
from rag.settings import Settings

_TAG = re.compile(r"</?\s*passage\b[^>]*>?", re.I)


def _as_data(text: str) -> str:
    """Passage text as it goes into the prompt: no tag that could close the quote, no markers."""
    return re.sub(r"[ \t]{2,}", " ", MARKER.sub("", _TAG.sub(" ", text))).strip()


def _attribute(text: str) -> str:
    return re.sub(r"\s+", " ", _as_data(text).replace('"', "'"))


class _StopAtToken(BaseCallbackHandler):
    """Raises ``Stopped`` at the model's next token once the event is set."""

    raise_error = True  # LangChain swallows a callback's exception otherwise

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], *,
                         run_id: UUID, **kwargs: Any) -> None:
        if self.stop.is_set():
            raise Stopped("The answer was stopped.")


class LLMAnswerer:
    """Writes answers with a chat model; every sentence it keeps is checked against a passage."""

    def __init__(self, name: str, model: BaseChatModel, embedder: Embedder, settings: Settings,
                 *, checker: CitationChecker | None = None,
                 scorer: EvidenceScorer | None = None) -> None:
        self.name = name
        self.model = model
        self.settings = settings
        self.scorer = scorer or EvidenceScorer(embedder)
        self.checker = checker or CitationChecker(self.scorer,
                                                  answer_floor=settings.answer_floor)
        self.last_raw = ""
        self.last_variables: dict[str, Any] = {}
        parse = StrOutputParser()
        self.condense_chain: Runnable[dict[str, Any], str] = (
            RunnableLambda(self.condense_messages)
            | model.bind(stop=["\n"], max_tokens=64) | parse)
        self.answer_chain: Runnable[dict[str, Any], str] = (
            RunnableLambda(self.answer_messages) | model | parse)

    # -- prompts ----------------------------------------------------------------------------
    @staticmethod
    def condense_messages(variables: dict[str, Any]) -> list[BaseMessage]:
        """The condense prompt for ``{"question", "history"}``."""
        return [HumanMessage(prompts.render("condense", **variables))]

    @staticmethod
    def answer_messages(variables: dict[str, Any]) -> list[BaseMessage]:
        """System prompt, worked examples, then the passages and question.

        Everything before the last message is the same for every question, so a local model
        keeps it in its cache and only the passages and question cost time to first token.
        """
        messages: list[BaseMessage] = [SystemMessage(prompts.render("system"))]
        for example in prompts.examples():
            messages += [HumanMessage(prompts.render("answer", question=example["question"],
                                                     passages=example["passages"])),
                         AIMessage(example["reply"])]
        return [*messages, HumanMessage(prompts.render("answer", **variables))]

    def excerpts(self, question: str, passages: Sequence[Passage]) -> list[tuple[int, str]]:
        """(passage index, text shown) for the passages the model sees, in retrieval order.

        Within the character budget the best-scoring sentences are kept, each once (chunks
        overlap); gaps become "…".
        """
        budget = self.settings.llm_prompt_chars
        if sum(len(p.text) for p in passages) <= budget:
            return list(enumerate(p.text for p in passages))
        chosen: dict[int, list[tuple[int, int]]] = {}
        seen: set[str] = set()  # neighbouring chunks overlap: a sentence is shown once
        used = 0
        for item in self.scorer.score(question, passages):
            length = item.end - item.start
            key = " ".join(item.text.split())
            if used + length > budget or key in seen:
                continue
            seen.add(key)
            chosen.setdefault(item.passage, []).append((item.start, item.end))
            used += length + 2
        shown = []
        for index in sorted(chosen):
            text = passages[index].text
            spans = sorted(chosen[index])
            parts = [text[spans[0][0]:spans[0][1]]]
            for (_, end), (start, stop) in zip(spans, spans[1:], strict=False):
                parts.append(" " if not text[end:start].strip() else " … ")
                parts.append(text[start:stop])
            shown.append((index, "".join(parts)))
        return shown

    @staticmethod
    def prompt_variables(question: str, cited: Sequence[Passage],
                         texts: Sequence[str]) -> dict[str, Any]:
        """The answer prompt's variables: each passage's title, date and text as quoted data."""
        return {"question": question, "passages": [
            {"headline": _attribute(p.headline), "published": p.published or "",
             "text": _as_data(text)} for p, text in zip(cited, texts, strict=True)]}

    # -- the Answerer protocol ---------------------------------------------------------------
    def condense(self, question: str, history: Sequence[Turn]) -> str:
        """A follow-up rewritten by the model; a question that stands alone is kept as it is."""
        question = question.strip()
        fallback = heuristic_condense(question, history)
        if fallback == question:
            return question
        turns = [{"role": t.role, "content": _clip(MARKER.sub("", t.content), 400)}
                 for t in history[-4:]]
        try:
            rewritten = self.condense_chain.invoke({"question": question, "history": turns})
        except RagError:
            raise
        except Exception as exc:
            raise self._failure(exc) from exc
        rewritten = rewritten.strip().strip('"“”').strip()
        rewritten = re.sub(r"^(standalone question|question)\s*:\s*", "", rewritten, flags=re.I)
        if not rewritten or len(rewritten) > 400:
            return fallback
        return rewritten

    def stream(self, question: str, passages: Sequence[Passage], *,
               stop: threading.Event | None = None) -> Iterator[str | Draft]:
        """Yield the model's text as it is written (markers filtered), then the checked Draft.

        Once ``stop`` is set the model's next token raises ``Stopped`` from a callback: closing
        an LCEL stream would not do, as LangChain then reads the model's output to its end.
        """
        shown = self.excerpts(question, passages)
        if not shown:
            draft = refusal(question)
            yield draft.text
            yield draft
            return
        if self.settings.llm_passage_order == "date":
            shown.sort(key=lambda item: (passages[item[0]].published or dt.date.min, item[0]))
        cited = [passages[i] for i, _ in shown]
        variables = self.prompt_variables(question, cited, [text for _, text in shown])
        self.last_variables = variables
        guard = MarkerFilter(len(cited))
        raw: list[str] = []
        try:
            config: RunnableConfig = {"callbacks": [_StopAtToken(stop)]} if stop else {}
            for piece in self.answer_chain.stream(variables, config):
                raw.append(piece)
                visible = guard.feed(piece)
                if visible:
                    yield visible
        except RagError:
            raise
        except Exception as exc:
            raise self._failure(exc) from exc
        tail = guard.flush()
        if tail:
            yield tail
        self.last_raw = "".join(raw)
        yield self.checker.check(self.last_raw, question, cited)

    def _failure(self, exc: Exception) -> ModelUnavailable:
        where = f" at {self.settings.openai_base_url}" if self.name == "openai" else ""
        return ModelUnavailable(
            f"The language model '{self.name}'{where} failed to answer ({type(exc).__name__}).")


def _clip(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
