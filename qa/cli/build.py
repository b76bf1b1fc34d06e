"""Build, extend, shrink or watch an index.

    newsqa build --corpus corpus/ --index index/        full rebuild
    newsqa build --index index/ --add a.txt b.html f.rss add articles (a feed: its items)
    newsqa build --index index/ --remove ID [ID ...]    remove articles
    newsqa build --index index/ --compact               merge the segments of adds into one
    newsqa build --index index/ --watch inbox/          add files as they land, until Ctrl-C

An add or a removal costs work in proportion to the change: it adds a segment
to the build and marks removed articles deleted (qa/store/append.py).
--compact rewrites the live articles as one segment, dropping removed rows and
training the IVF quantiser again: run it when many adds have piled up (each
segment adds a little to every search), e.g. nightly.

Articles are .txt, .html, .json/.jsonl records, and RSS or Atom feeds (found
by content, whatever their name). --watch adds new or changed files of a drop
folder once they stop changing, one build at a time; a file removed from the
folder leaves its articles indexed (qa/watch.py). Ctrl-C or SIGTERM stops it
after the build under way, with exit code 0.

Exit codes: 0 done, 1 done but some inputs were skipped, 2 bad input,
3 index problem (damaged index, disk full, no write permission, NaN vectors;
the previous index is then unchanged), 4 encoder cannot load.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from tqdm import tqdm

from qa import indexing
from qa.embed import load_encoder
from qa.errors import CorpusMissing, QAError
from qa.indexing import BuildReport
from qa.settings import Settings
from qa.store import IndexReader, resolve_build


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", type=Path, default=Path(defaults.corpus_dir), help="folder of articles"
    )
    parser.add_argument("--index", type=Path, default=Path(defaults.index_dir), help="index folder")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--add", nargs="+", type=Path, metavar="FILE", help="articles to add")
    action.add_argument("--remove", nargs="+", metavar="ID", help="article ids to remove")
    action.add_argument(
        "--compact",
        action="store_true",
        help="rewrite the index's segments and deletions as one segment (encodes nothing)",
    )
    action.add_argument(
        "--watch", type=Path, metavar="DIR", help="add files as they land in DIR, until Ctrl-C"
    )
    parser.add_argument(
        "--model", help=f"encoder (default: the index's own, else {defaults.model})"
    )
    parser.add_argument(
        "--store",
        choices=("faiss", "milvus"),
        default=defaults.store,
        help="where chunks are searched (a new build only; --add/--remove keep the index's)",
    )
    parser.add_argument("--milvus-uri", default=defaults.milvus_uri, help="Milvus address or file")
    parser.add_argument("--chunk-size", type=int, default=defaults.chunk_size)
    parser.add_argument("--chunk-overlap", type=int, default=defaults.chunk_overlap)
    parser.add_argument(
        "--max-article-bytes",
        type=int,
        default=defaults.max_article_bytes,
        help="skip a larger article (a .txt/.html file, a record's text, a feed item)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=defaults.watch_interval,
        help="--watch: seconds between two listings of the folder",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=defaults.watch_settle,
        help="--watch: seconds a file must stay unchanged before it is added",
    )
    parser.add_argument(
        "--if-missing", action="store_true", help="build only if there is no index yet"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.chunk_overlap >= args.chunk_size or args.chunk_size <= 0 or args.chunk_overlap < 0:
        parser.error("need 0 <= --chunk-overlap < --chunk-size")
    if args.max_article_bytes <= 0:
        parser.error("--max-article-bytes must be positive")
    if args.interval <= 0 or args.settle < 0:
        parser.error("--interval must be positive and --settle not negative")

    if args.if_missing and _has_index(args.index):
        print(f"index already built in {args.index}/; nothing to do")
        return 0
    settings = Settings.from_env(
        index_dir=str(args.index),
        chunk_size=args.chunk_size,
        chunk_overlap=args.chunk_overlap,
        store=args.store,
        milvus_uri=args.milvus_uri,
        max_article_bytes=args.max_article_bytes,
    )
    if args.watch:
        return _watch(args, settings)
    quiet = args.quiet or None  # None: bars only on a terminal
    reading_bar = tqdm(
        unit="B", unit_scale=True, desc="reading", disable=quiet, file=sys.stderr, leave=False
    )
    bar = tqdm(unit="text", desc="encoding", disable=quiet, file=sys.stderr)

    def reading(done: int, total: int, name: str) -> None:
        # Cleaning a large article takes seconds: the bar names the file being read.
        reading_bar.total = total
        reading_bar.n = done
        reading_bar.set_postfix_str(name, refresh=False)
        reading_bar.refresh()

    def progress(done: int, total: int) -> None:
        if bar.total != total:  # a new encoding pass (texts, then new words)
            bar.reset(total=total)
        bar.update(done)

    try:
        model = args.model or _existing_model(args.index) or settings.model
        encoder = load_encoder(model, settings.encoder_threads())
        if args.add:
            report = indexing.add(args.add, args.index, encoder, settings, progress, reading)
        elif args.remove:
            report = indexing.remove(args.remove, args.index, encoder)
        elif args.compact:
            report = indexing.compact(args.index, encoder)
        else:
            report = indexing.build(args.corpus, args.index, encoder, settings, progress, reading)
    except QAError as exc:
        _close(reading_bar, bar)
        return _error(exc)
    except KeyboardInterrupt:
        _close(reading_bar, bar)
        print("interrupted: the previous index is untouched", file=sys.stderr)
        return 130
    _close(reading_bar, bar)
    _print_report(report)
    return 1 if report.errors else 0


def _watch(args: argparse.Namespace, settings: Settings) -> int:
    """Watch the drop folder until Ctrl-C or SIGTERM; 0 when stopped that way."""
    from qa.watch import watch

    stop = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # The build under way finishes; a second Ctrl-C abandons it (the
        # previous index is untouched: builds are swapped in whole).
        stop.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("stopping after the build under way (Ctrl-C again: at once)", file=sys.stderr)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not args.watch.is_dir():
            raise CorpusMissing(f"{args.watch}: no such folder.")
        resolve_build(args.index)  # the index to extend must exist (the error says how)
        model = args.model or _existing_model(args.index) or settings.model
        encoder = load_encoder(model, settings.encoder_threads())
        print(
            f"watching {args.watch}/ for new or changed files (listed every {args.interval:g}s, "
            f"added once unchanged for {args.settle:g}s) into {args.index}/; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        watch(
            args.watch,
            args.index,
            encoder,
            settings,
            interval=args.interval,
            settle=args.settle,
            stopped=lambda: bool(stop),
            on_build=lambda paths, report: _print_report(report),
        )
    except QAError as exc:
        return _error(exc)
    except KeyboardInterrupt:
        print("interrupted: the previous index is untouched", file=sys.stderr)
        return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print("stopped", file=sys.stderr)
    return 0


def _error(exc: QAError) -> int:
    # One line, whatever the message holds.
    print("error: " + " ".join(str(exc).split()), file=sys.stderr)
    return exc.exit_code


def _print_report(report: BuildReport) -> None:
    for error in report.errors:
        print(f"skipped: {error}", file=sys.stderr)
    print(report.summary(), flush=True)


def _close(*bars: tqdm) -> None:
    for bar in bars:
        bar.close()


def _has_index(folder: Path) -> bool:
    try:
        resolve_build(folder)
    except QAError:
        return False
    return True


def _existing_model(folder: Path) -> str | None:
    """Extending an index keeps the encoder it was built with."""
    if not _has_index(folder):
        return None
    try:
        reader = IndexReader(folder, verify=False)  # only meta.json is read
    except QAError:
        return None
    name: str = reader.meta["encoder"]["name"]
    reader.close()
    return name
