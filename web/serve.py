"""Serve the question-answering API and chat page (`newsqa serve`, scripts/serve.py).

    newsqa serve [--index index/] [--host 127.0.0.1] [--port 8000] [--threads 1] [--workers 1]

Each process serves with waitress, which reads every request whole before a
thread answers it, so slow or idle clients hold sockets, not threads (see
web/server.py). With --workers 1 (the default) one process serves. With
--workers N > 1, N worker processes are forked from one that has already
loaded the encoder and checked the index: the model's memory is shared
copy-on-write and the index files are memory-mapped, so a worker costs little
memory; they accept on one shared socket, and one that dies is replaced.
Each worker opens its own index reader and follows `current` on its own (no
shared state: any worker may answer any request); --threads is per process.

SIGTERM or Ctrl-C stops it gracefully: no new connection is accepted, the
requests already received or queued are answered, then it exits 0.

Builds the index from --corpus first when there is none. Settings not given
as options come from QA_* environment variables (see qa/settings.py), and
QA_FEEDBACK_DB sets the feedback file (default: <index>/../feedback.sqlite3).
Exit codes as scripts/build_index.py: 2 bad input, 3 index problem, 4 encoder;
1 when the address cannot be bound. Any refusal to start is one line on stderr.

Logs go to stderr: one JSON line per request (logger web.access), then
warnings and errors. /metrics serves Prometheus metrics, summed over all the
workers (prometheus_client's multiprocess mode, in a temporary folder unless
PROMETHEUS_MULTIPROC_DIR is set).

qa/cli/serve.py sets the thread-count variables (OMP_NUM_THREADS and the
like) before numpy loads; call `main` through it (`newsqa serve`, scripts/serve.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from qa import indexing
from qa.embed import Encoder, load_encoder
from qa.errors import IndexMismatch, ModelLoadError, QAError
from qa.pipeline import QAEngine
from qa.settings import Settings
from qa.store import META, IndexReader, resolve_build

if TYPE_CHECKING:
    from flask import Flask

# Measured with scripts/bench_server.py on 2 cores: most of an answer's ~6 ms is
# pure Python (lexical scoring) under the GIL, so extra worker threads only
# contend for it: 1 thread gave 15-30% more answers/s than 2, and 2 more than 4.
# Re-measure (--threads 1 2 4) when the engine's profile changes.
DEFAULT_THREADS = 1

log = logging.getLogger("serve")


def build_parser(
    defaults: Settings | None = None, prog: str | None = "newsqa serve"
) -> argparse.ArgumentParser:
    """The command line; defaults from `Settings` (QA_* variables): 127.0.0.1:8000."""
    defaults = defaults or Settings.from_env()
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
    parser.add_argument(
        "--host", default=defaults.host, help="address to bind (default: loopback only)"
    )
    parser.add_argument("--port", type=int, default=defaults.port, help="port to listen on")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="threads per process that answer requests",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes: more than 1 are forked after loading, sharing the model's memory",
    )
    return parser


def main(argv: list[str] | None = None, prog: str | None = "newsqa serve") -> int:
    parser = build_parser(prog=prog)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    _configure_logging()
    metrics_dir = None
    given_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given_dir:
        os.makedirs(given_dir, exist_ok=True)
    elif args.workers > 1:
        # Must be set before prometheus_client is imported (by web, below).
        metrics_dir = tempfile.mkdtemp(prefix="newsqa-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _serve(args)
    finally:
        # Workers leave through os._exit: only this process gets here.
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(args: argparse.Namespace) -> int:
    from web import create_app
    from web.server import listen, serve_forked, serve_one

    settings = Settings.from_env(
        index_dir=str(args.index), host=args.host, port=args.port, model=args.model
    )
    try:
        encoder = _build_if_missing(args.index, args.corpus, settings)
        if encoder is None or (args.model and encoder.name != args.model):
            encoder = _load_encoder(args.index, args.model, settings)
        engine = QAEngine.load(settings, encoder)
        _warn_if_rescorer_differs(engine, settings)
        app = create_app({"ENGINE": engine})
    except QAError as exc:
        return _refuse(str(exc), exc.exit_code)
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        return _refuse(f"cannot listen on {args.host}:{args.port} ({exc.strerror}).", 1)
    with sock:
        port = int(sock.getsockname()[1])
        if args.workers == 1:
            _announce(engine, args.host, port, f"{args.threads} threads")
            return serve_one(app, sock, args.threads)
        # The workers open their own readers; this process keeps no SQLite
        # connection for them to inherit.
        engine.reader.close()
        return serve_forked(
            app,
            sock,
            args.threads,
            args.workers,
            on_fork=lambda: _own_reader(app),
            on_ready=lambda: _announce(
                engine, args.host, port, f"{args.workers} workers x {args.threads} threads"
            ),
        )


def _warn_if_rescorer_differs(engine: QAEngine, settings: Settings) -> None:
    """The index decides the second sentence encoder; say so when the settings
    name another (an index built before it existed, or with another setting)."""
    built = engine.reader.rescorer_name
    wanted = settings.rescore_model or "none"
    if built != wanted:
        log.warning(
            "the index was built with second sentence encoder %r, the settings name %r: "
            "answering with %r; rebuild the index (scripts/build_index.py) to change it",
            built,
            wanted,
            built,
        )


def _refuse(message: str, code: int) -> int:
    # One line, whatever the message holds: a service manager shows the last line.
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return code


def _configure_logging() -> None:
    """Warnings and errors as text; the access log as bare JSON lines (one per request)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("qa", "web", "serve"):
        logging.getLogger(name).setLevel(logging.INFO)
    # waitress warns for each request that waits for a thread: the normal state
    # of a busy server with one thread per process, and a log line per request.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    access = logging.getLogger("web.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def _load_encoder(index: Path, model: str | None, settings: Settings) -> Encoder:
    """The encoder asked for, else the one the index was built with.

    The index's files are checked first (cheap), so a damaged index is reported
    before a model loads; an encoder named in meta.json that cannot load is
    reported against meta.json.
    """
    reader = IndexReader(index)
    built_with = str(reader.meta["encoder"]["name"])
    meta_path = reader.path / META
    reader.close()
    if model:
        return load_encoder(model, settings.query_encoder_threads())
    try:
        return load_encoder(built_with, settings.query_encoder_threads())
    except ModelLoadError as exc:
        raise ModelLoadError(
            f"{meta_path}: the index was built with encoder {built_with!r}, which cannot be "
            "loaded here: rebuild the index (scripts/build_index.py) or make that encoder "
            f"available. {exc}"
        ) from exc


def _own_reader(app: Flask) -> None:
    """In a fresh worker: an engine with its own index reader (its own SQLite
    connections, its own view of `current`), sharing the preloaded encoder."""
    engine: QAEngine = app.extensions["qa_engine"]
    try:
        app.extensions["qa_engine"] = QAEngine(
            engine.index_dir, engine.encoder, engine.settings, rescorer=engine.rescorer
        )
    except QAError as exc:  # e.g. the build went bad since start-up: keep the checked one
        log.error("worker %d keeps the start-up index reader: %s", os.getpid(), exc)


def _announce(engine: QAEngine, host: str, port: int, how: str) -> None:
    reader = engine.reader
    print(
        f"serving {indexing.counted(reader.counts['articles'], 'article')} "
        f"(build {reader.build_id}) on "
        f"http://{host}:{port}/ with {how}",
        file=sys.stderr,
        flush=True,
    )


def _build_if_missing(index: Path, corpus: Path, settings: Settings) -> Encoder | None:
    """Build the index when the folder has none; returns the encoder it loaded, if any.

    A folder that has a build, even a damaged one, is left alone: the engine
    then says what is wrong with it.
    """
    current = index / "current"
    if current.is_symlink() and not current.exists():
        # A published index whose build folder went away is damaged, not missing:
        # building a new one from whatever --corpus holds would hide that.
        raise IndexMismatch(
            f"{current}: points at {os.readlink(current)}, which is missing. Rebuild the "
            f"index: python scripts/build_index.py --corpus {corpus} --index {index}"
        )
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
