"""rag: ask questions of your news articles, offline, with cited answers.

Each subcommand is one call into the library; errors are one line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.records import IngestReport


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from rag.settings import Settings

    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "answerer", None):
        overrides["answerer"] = args.answerer
    return Settings(**overrides)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest files and folders (into the local index, or through a running server)."""
    if args.server:
        from rag.remote import ingest_through

        if args.prune:
            raise RagError("--prune works on the local index only, not with --server.")
        report = ingest_through(args.server, args.paths)
    else:
        from rag.assistant import Assistant

        report = Assistant(_settings(args)).ingest(args.paths, prune=args.prune,
                                                   progress=not args.quiet)
    return _print_report(report, args.json)


def _print_report(report: IngestReport, as_json: bool) -> int:
    if as_json:
        print(report.model_dump_json(indent=2))
        return 0
    print(report.summary())
    for where, reason in report.skipped_reasons.items():
        print(f"  skipped {where}: {reason}")
    if report.skipped and not (report.added or report.updated or report.unchanged):
        print("error: none of the given paths could be read as articles.", file=sys.stderr)
        return 1
    return 0


def cmd_articles(args: argparse.Namespace) -> int:
    """List the indexed articles."""
    from rag.assistant import Assistant

    articles = Assistant(_settings(args)).articles()
    if args.json:
        print(json.dumps([a.model_dump(mode="json") for a in articles], indent=2))
        return 0
    if not articles:
        print("Nothing is indexed yet: add articles with `rag ingest PATH`.")
        return 0
    for art in articles:
        date = art.published.isoformat() if art.published else "undated"
        print(f"{art.article_id[:12]}  {date:10}  {art.chunks:3} "
              f"chunk{'' if art.chunks == 1 else 's'}  {art.headline or '(no headline)'}")
        print(f"{'':14}{', '.join(art.files) or art.source}")
    print(f"{len(articles)} article{'' if len(articles) == 1 else 's'}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Forget articles by id."""
    from rag.assistant import Assistant

    for art in Assistant(_settings(args)).delete_articles(args.ids):
        print(f"deleted {art.article_id[:12]}  {art.headline or art.source}")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Read articles from their files again and embed them anew."""
    from rag.assistant import Assistant

    report = Assistant(_settings(args)).reindex(args.ids or None)
    return _print_report(report, args.json)


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question and print its sources."""
    from rag.assistant import Assistant
    from rag.records import Filters

    filters = Filters(sources=args.source or None, published_from=args.since,
                      published_to=args.until, today=args.today)
    assistant = Assistant(_settings(args))
    answer = assistant.ask(args.question, filters=filters, top_k=args.top_k)
    if args.json:
        print(answer.model_dump_json(indent=2))
        return 0
    print(answer.text)
    if answer.as_of:
        print(f"(as of {answer.as_of.isoformat()}, the newest article cited)")
    if answer.citations:
        print()
        for cite in answer.citations:
            date = f", {cite.published}" if cite.published else ""
            copies = f"; {cite.also_published()}" if cite.also_published_by else ""
            print(f"[{cite.number}] {cite.headline} ({cite.source}{date}{copies})")
            print(f"    “{cite.quote}”")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP API (and the chat page) on HOST:PORT."""
    from rag.api.serve import serve

    serve(_settings(args), host=args.host, port=args.port, with_chat=not args.no_chat)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate on a corpus and question set."""
    from rag.evaluation.report import run_cli

    return run_cli(args)


def cmd_slack(args: argparse.Namespace) -> int:
    """Run the Slack bot."""
    from rag.slack_bot import run

    run(_settings(args), port=args.port)
    return 0


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from exc


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rag`` command."""
    top = argparse.ArgumentParser(prog="rag", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--data-dir", help="where the index lives (default: $RAG_DATA_DIR or .data)")
    top.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add articles from files and folders")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="article files or folders (.txt .md .html .pdf .json .jsonl .rss .atom "
                        ".xml), or http(s) URLs of articles and feeds")
    p.add_argument("--prune", action="store_true", help="forget articles whose files are gone")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--server", metavar="URL",
                   help="add them through the running server at URL (e.g. "
                        "http://127.0.0.1:8000; key from $RAG_API_KEY) instead of the local "
                        "index: files are uploaded, URLs are fetched by the server")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("articles", help="list the indexed articles")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_articles)

    p = sub.add_parser("delete", help="forget indexed articles")
    p.add_argument("ids", nargs="+", metavar="ID",
                   help="article ids from `rag articles` (a unique start of 6+ characters will do)")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("reindex", help="read articles from their files again and embed them anew")
    p.add_argument("ids", nargs="*", metavar="ID", help="article ids (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("ask", help="answer a question from the indexed articles")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    p.add_argument("--answerer", "--generator", dest="answerer",
                   help="extractive, a local model name, or openai")
    p.add_argument("--top-k", type=int, default=None, help="passages to answer from")
    p.add_argument("--source", action="append", help="only this source or site (repeatable)")
    p.add_argument("--since", type=_date, help="published on or after YYYY-MM-DD")
    p.add_argument("--until", type=_date, help="published on or before YYYY-MM-DD")
    p.add_argument("--today", type=_date,
                   help="the date 'this week' or 'yesterday' in the question count from "
                        "(YYYY-MM-DD; default today)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="run the HTTP API",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--answerer", "--generator", dest="answerer",
                   help="extractive, a local model name, or openai")
    p.add_argument("--no-chat", action="store_true", help="do not mount the chat page at /chat")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("slack", help="run the Slack bot")
    p.add_argument("--port", type=int, default=3000, help="HTTP mode's port")
    p.add_argument("--answerer", "--generator", dest="answerer",
                   help="extractive, a local model name, or openai")
    p.set_defaults(func=cmd_slack)

    p = sub.add_parser("eval", help="measure retrieval and answers on a question set")
    p.add_argument("--corpus", required=True)
    p.add_argument("--questions", required=True)
    p.add_argument("--answerer", "--generator", dest="answerer", action="append",
                   help="answerer(s) to compare (repeatable; default extractive)")
    p.add_argument("--json-out", help="write the JSON report here")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--no-naive", action="store_true",
                   help="leave out the naive LangChain pipeline's retrieval figures")
    p.set_defaults(func=cmd_eval)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user errors print one line and exit 2."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one sentence, no traceback
        if args.verbose:
            raise
        print(f"error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
