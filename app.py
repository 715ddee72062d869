"""The chat: `python app.py` opens http://127.0.0.1:7860 over the indexed news articles.

On first start (an empty index) the articles in `seeds/` are ingested. Every RAG_ setting
applies (RAG_DATA_DIR moves the index, RAG_GENERATOR picks the answerer, ...).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Gradio must not phone home; set before gradio is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.errors import RagError  # noqa: E402

SEEDS = Path(__file__).resolve().parent / "seeds"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--data-dir",
                        help="where the index lives (default: $RAG_DATA_DIR or .data)")
    parser.add_argument("--answerer", "--generator", dest="answerer",
                        help="extractive, a local model name, or openai")
    parser.add_argument("--seeds", type=Path, default=SEEDS,
                        help="articles to ingest when the index is empty (default: seeds/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from rag.assistant import Assistant
    from rag.chat import build_demo, serve_options
    from rag.process import start_service
    from rag.settings import Settings

    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.answerer:
        overrides["answerer"] = args.answerer
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        start_service(settings)  # the chat reads for hours: no other process may write under it
        assistant = Assistant(settings)
        if assistant.stats()["chunks"] == 0 and args.seeds.is_dir():
            print(f"Empty index: adding the articles in {args.seeds} ...", file=sys.stderr)
            print(assistant.ingest([args.seeds]).summary(), file=sys.stderr)
        elif count := assistant.reembed():
            print(f"Embedded {count} stored chunks again for the new encoder.", file=sys.stderr)
        assistant.warm_up()  # the local model loads while the page starts
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    demo = build_demo(assistant)
    print(f"Chat on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        demo.queue().launch(server_name=args.host, server_port=args.port, inbrowser=False,
                            quiet=True, **serve_options(settings))
    except OSError as exc:  # the port is taken, or the host cannot be bound
        print(f"error: cannot serve on {args.host}:{args.port} ({exc.strerror or exc}).",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
