"""LangChain chat models: a local GGUF run by llama-cpp-python, and a fake with queued replies.

langchain-community's ``ChatLlamaCpp`` would bring a large dependency tree for one class, so this
is a small ``BaseChatModel`` over ``Llama.create_chat_completion`` (the GGUF's own chat
template), streaming token by token. One ``Llama`` is not thread-safe: calls are serialised.
"""

from __future__ import annotations

import atexit
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from rag.errors import ModelUnavailable


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    raise ValueError(f"unsupported message type: {message.type}")


def _content(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(part if isinstance(part, str) else str(part.get("text", ""))
                   for part in message.content)


class LlamaCppChatModel(BaseChatModel):
    """A local GGUF chat model (llama-cpp-python), greedy by default, streaming."""

    model_path: Path
    n_ctx: int = 4096
    n_threads: int = 2
    n_batch: int = 512
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def load(self) -> LlamaCppChatModel:
        """Load the weights now (otherwise the first call does), so a bad file fails early."""
        with self._lock:
            self._load()
        return self

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelUnavailable(
                    "llama-cpp-python is not installed, so local models cannot run "
                    "(install the 'llm' extra, or use the extractive answerer).") from exc
            try:
                self._llama = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx,
                                    n_threads=self.n_threads, n_batch=self.n_batch,
                                    seed=self.seed, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise ModelUnavailable(
                    f"The model file {self.model_path.name} could not be loaded.") from exc
            # Freed before interpreter teardown: llama.cpp's own __del__ then finds its
            # modules gone and prints "Exception ignored in Llama.__del__".
            atexit.register(self.close)
        return self._llama

    def close(self) -> None:
        """Free the weights now; the next call loads them again."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer."""
        with self._lock:
            return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": str(self.model_path), "n_ctx": self.n_ctx,
                "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        chat = [{"role": _role(m), "content": _content(m)} for m in messages]
        with self._lock:
            llama = self._load()
            stream = llama.create_chat_completion(
                chat, stream=True, stop=stop or [],
                max_tokens=kwargs.get("max_tokens", self.max_tokens),
                temperature=kwargs.get("temperature", self.temperature),
            )
            for part in stream:
                choice = part["choices"][0]
                text = choice["delta"].get("content") or ""
                finish = choice.get("finish_reason")
                if not text and not finish:
                    continue
                meta = {"finish_reason": finish} if finish else {}
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(content=text, response_metadata=meta))
                if run_manager and text:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))


class FakeChatModel(BaseChatModel):
    """A chat model for tests: replies with queued strings, streamed word by word.

    >>> model = FakeChatModel()
    >>> model.enqueue("Putin offered a radar in Azerbaijan [1].")
    >>> model.invoke("What did Putin offer?").content
    'Putin offered a radar in Azerbaijan [1].'
    """

    replies: list[str] = Field(default_factory=list)
    default: str | None = Field(default=None, description="Reply when the queue is empty.")
    calls: list[list[BaseMessage]] = Field(default_factory=list,
                                           description="The messages of every call, in order.")

    def enqueue(self, *replies: str) -> None:
        """Queue replies, used one per call in order."""
        self.replies.extend(replies)

    @property
    def _llm_type(self) -> str:
        return "fake"

    def _next(self, messages: list[BaseMessage]) -> str:
        self.calls.append(list(messages))
        if self.replies:
            return self.replies.pop(0)
        if self.default is not None:
            return self.default
        raise RuntimeError("FakeChatModel has no queued reply for this call")

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        reply = self._next(messages)
        for stop_word in stop or []:
            if stop_word in reply:
                reply = reply[: reply.index(stop_word)]
        for piece in re.split(r"(?<=\s)", reply):
            if piece:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                if run_manager:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        text = "".join(str(c.message.content) for c in self._stream(messages, stop))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
