#!/usr/bin/env python3
"""Serve the question-answering API and chat page with waitress.

    serve.py [--index index/] [--host 127.0.0.1] [--port 8000] [--threads 1]

Builds the index from --corpus first when there is none. Settings not given
as options come from QA_* environment variables (see qa/settings.py), and
QA_FEEDBACK_DB sets the feedback file (default: <index>/../feedback.sqlite3).
Exit codes as scripts/build_index.py: 2 bad input, 3 index problem, 4 encoder.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

# Before numpy and faiss load: one BLAS/OpenMP thread per request. A server
# overlaps requests on its threads; per-call thread pools on top of that
# oversubscribe the cores and a query goes from ~2 ms to 100+ ms under load
# (scripts/bench_server.py). Set these variables to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("QA_THREADS", "1")

import _bootstrap  # noqa: F401
from waitress import create_server

from qa import indexing
from qa.embed import Encoder, load_encoder
from qa.errors import QAError
from qa.pipeline import QAEngine
from qa.settings import Settings
from qa.store import resolve_build
from web import create_app

# Measured with scripts/bench_server.py on 2 cores: most of an answer's ~6 ms is
# pure Python (lexical scoring) under the GIL, so extra worker threads only
# contend for it: 1 thread gave 15-30% more answers/s than 2, and 2 more than 4.
# Re-measure (--threads 1 2 4) when the engine's profile changes.
DEFAULT_THREADS = 1


def main(argv: list[str] | None = None) -> int:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=Path(defaults.index_dir), help="index folder")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(defaults.corpus_dir),
        help="articles to build the index from when it is missing",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("QA_MODEL") or None,
        help="encoder to query with (default: the one the index was built with); "
        "must match the index",
    )
    parser.add_argument("--host", default=defaults.host, help="address to bind")
    parser.add_argument("--port", type=int, default=defaults.port, help="port to listen on")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help="waitress worker threads"
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("qa", "web", "serve"):
        logging.getLogger(name).setLevel(logging.INFO)
    settings = Settings.from_env(
        index_dir=str(args.index), host=args.host, port=args.port, model=args.model
    )
    try:
        encoder = _build_if_missing(args.index, args.corpus, settings)
        if args.model and (encoder is None or encoder.name != args.model):
            encoder = load_encoder(args.model, settings.encoder_threads())
        engine = QAEngine.load(settings, encoder)
        app = create_app({"ENGINE": engine})
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        server = create_server(app, host=args.host, port=args.port, threads=args.threads)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port} ({exc.strerror}).", file=sys.stderr)
        return 1
    # SIGTERM (bench, service managers) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    reader = engine.reader
    print(
        f"serving {reader.counts['articles']} articles (build {reader.build_id}) on "
        f"http://{args.host}:{server.effective_port}/ with {args.threads} threads",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _build_if_missing(index: Path, corpus: Path, settings: Settings) -> Encoder | None:
    """Build the index when the folder has none; returns the encoder it loaded, if any.

    A folder that has a build, even a damaged one, is left alone: the engine
    then says what is wrong with it.
    """
    try:
        resolve_build(index)
        return None
    except QAError:
        pass
    print(f"no index in {index}/: building it from {corpus}/ …", file=sys.stderr, flush=True)
    encoder = load_encoder(settings.model, settings.encoder_threads())
    report = indexing.build(corpus, index, encoder, settings)
    for error in report.errors:
        print(f"skipped: {error}", file=sys.stderr)
    print(report.summary(), file=sys.stderr, flush=True)
    return encoder


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
