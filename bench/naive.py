"""The pipeline a langchain user writes first: the baseline every ingest and retrieval ratio uses.

RecursiveCharacterTextSplitter(1000, 200) + Chroma.from_documents + HuggingFaceEmbeddings on the
same all-MiniLM-L6-v2 weights, all with their default settings; retrieval is
``similarity_search(question, k)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.encoder_weights import offline, resolve_model_path


def load_documents(corpus: Path) -> list[Any]:
    """The JSON Lines records as langchain Documents, keeping id, url and title."""
    from langchain_core.documents import Document

    docs = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            docs.append(Document(page_content=rec["text"], metadata={
                "id": str(rec.get("id", "")), "source": rec.get("url") or "",
                "title": rec.get("title") or ""}))
    return docs


def embeddings() -> Any:
    """HuggingFaceEmbeddings on the packaged weights (the langchain-huggingface class)."""
    offline()
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=resolve_model_path("all-MiniLM-L6-v2"),
                                 model_kwargs={"device": "cpu", "local_files_only": True})


def split(docs: list[Any]) -> list[Any]:
    """The default splitter every tutorial shows."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)


def build(corpus: Path, directory: Path, embedding: Any) -> tuple[Any, int]:
    """Load, split, embed and store ``corpus``; the vector store and its chunk count."""
    import chromadb.config
    from langchain_chroma import Chroma

    chunks = split(load_documents(corpus))
    store = Chroma.from_documents(
        chunks, embedding, persist_directory=str(directory), collection_name="naive",
        client_settings=chromadb.config.Settings(anonymized_telemetry=False,
                                                 is_persistent=True,
                                                 persist_directory=str(directory)))
    return store, len(chunks)


def retrieve_ids(store: Any, question: str, k: int = 10) -> list[str]:
    """The record ids of the ``k`` nearest chunks."""
    return [str(doc.metadata.get("id", "")) for doc in store.similarity_search(question, k=k)]
