"""The default encoder (the packaged MiniLM run by ONNX Runtime) against the model it came from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SEEDS

NEWS = [
    "Putin countered with an offer to use a Russian radar site in Azerbaijan.",
    "The recall now covers 112,000 units, up from 38,500 in May.",
    "Harbour officials said the ferry would resume service on Monday after repairs.",
    "Gates said the Gabala site could not substitute for the planned array.",
    "Shares fell 4 percent.",
    "A long sentence " + "about the council's budget and its many line items " * 30,
]


@pytest.fixture(scope="module")
def onnx():  # type: ignore[no-untyped-def]
    from rag.embeddings import make_embedder
    from rag.onnx_embedder import OnnxEmbedder
    from rag.settings import Settings

    embedder = make_embedder(Settings())
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


def test_vectors_match_the_unquantized_model(onnx) -> None:  # type: ignore[no-untyped-def]
    from rag.embeddings import SentenceTransformerEmbedder

    exact = SentenceTransformerEmbedder(quantize=False).embed(NEWS)
    ours = onnx.embed(NEWS)
    assert ours.shape == exact.shape == (len(NEWS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * exact).sum(axis=1)
    assert cosines.min() > 0.97, cosines


def test_a_texts_vector_does_not_depend_on_what_it_is_sent_with(onnx) -> None:  # type: ignore[no-untyped-def]
    alone = np.stack([onnx.embed([text])[0] for text in NEWS])
    together = onnx.embed(NEWS * 3)  # over the small-batch size: the thread pool runs
    for block in range(3):
        assert np.array_equal(together[block * len(NEWS):(block + 1) * len(NEWS)], alone)


def test_the_export_is_named_by_the_weights_it_came_from(tmp_path: Path) -> None:
    from rag.encoder_weights import resolve_model_path
    from rag.errors import ModelUnavailable
    from rag.onnx_export import onnx_file

    path = resolve_model_path("all-MiniLM-L6-v2")
    first = onnx_file(tmp_path, path, True, "all-MiniLM-L6-v2")
    assert first == onnx_file(tmp_path, path, True, "all-MiniLM-L6-v2")
    assert first != onnx_file(tmp_path, path, False, "all-MiniLM-L6-v2")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.safetensors").write_bytes(b"other weights")
    assert onnx_file(tmp_path, str(copy), True, "all-MiniLM-L6-v2") != first
    with pytest.raises(ModelUnavailable):
        onnx_file(tmp_path, str(tmp_path / "nowhere"), True)


def test_an_extractive_answer_does_not_import_torch(data_dir: Path) -> None:
    script = (
        "import sys\n"
        "from rag.assistant import Assistant\n"
        "from rag.settings import Settings\n"
        f"a = Assistant(Settings(answerer='extractive'))\n"
        f"a.ingest([{str(SEEDS)!r}])\n"
        "answer = a.ask('What did Putin offer instead of the Czech radar?')\n"
        "assert 'Azerbaijan' in answer.text, answer.text\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'sentence_transformers')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
