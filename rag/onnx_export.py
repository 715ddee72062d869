"""The encoder as an ONNX file, exported once from the packaged weights (no download).

Set-up runs ``python -m rag.onnx_export``; an embedder that finds no file exports it then. Export
needs torch, transformers and onnx; running the file needs only onnxruntime and tokenizers, which
is what keeps a ``rag`` command from importing torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path

from rag.errors import ModelUnavailable

log = logging.getLogger(__name__)
OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_file(model_dir: Path, model_path: str, quantize: bool, name: str = "encoder") -> Path:
    """Where the ONNX export of the weights at ``model_path`` lives (named by those weights)."""
    weights = Path(model_path) / "model.safetensors"
    try:
        stat = weights.stat()
    except OSError as exc:
        raise ModelUnavailable(f"The embedding model has no weights at {weights}.") from exc
    stamp = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{OPSET}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    name = re.sub(r"[^\w.-]+", "_", name)
    return model_dir / "onnx" / f"{name}-{digest}{'-int8' if quantize else ''}.onnx"


def export(model_path: str, out: Path, quantize: bool) -> Path:
    """Export the transformer at ``model_path`` to ``out`` (int8 weights when ``quantize``).

    The file appears whole or not at all (written beside it, then renamed), so processes that
    export at the same time cannot see half a model.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:  # pragma: no cover - install problem
        raise ModelUnavailable("Exporting the encoder needs torch and transformers.") from exc

    class _Hidden(torch.nn.Module):
        """The transformer's last hidden state (pooling runs outside, in numpy)."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    out.parent.mkdir(parents=True, exist_ok=True)
    model = AutoModel.from_pretrained(model_path, local_files_only=True).eval()
    ids = torch.ones(1, 8, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "hidden")}
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        plain = Path(tmp) / "plain.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shapes fixed by one-text inputs
            torch.onnx.export(_Hidden(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                              str(plain), input_names=list(_INPUTS), output_names=["hidden"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        final = plain
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            final = Path(tmp) / "int8.onnx"
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # its advice to pre-process is for image models
            try:
                # Weights int8 per output channel; activations are quantized per run, and each
                # text runs alone, so a text's vector never depends on what it is batched with.
                quantize_dynamic(str(plain), str(final), weight_type=QuantType.QInt8,
                                 per_channel=True)
            finally:
                root.setLevel(level)
        os.replace(final, out)
    log.info("exported the encoder to %s", out)
    return out


def main() -> None:
    """Export the configured encoder unless it is there already; print where it is."""
    from rag.encoder_weights import resolve_model_path
    from rag.settings import Settings

    settings = Settings()
    path = resolve_model_path(settings.embedding_model)
    out = onnx_file(settings.model_dir, path, settings.embedding_quantize,
                    settings.embedding_model)
    if not out.exists():
        export(path, out, settings.embedding_quantize)
    print(out)


if __name__ == "__main__":
    main()
