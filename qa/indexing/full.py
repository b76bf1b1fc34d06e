"""Full builds: every article (of a corpus folder, or already read) segmented,
chunked and encoded again, and written as a new build of the index."""

from __future__ import annotations

import time
from pathlib import Path

from ..embed import Encoder, load_rescorer
from ..ingest import ReadProgress, corpus_files, read_files
from ..records import Article
from ..settings import Settings
from ..store import backend_for, build_lock, write_build
from ..token_match import TOKENS_KEPT, TokenEncoder
from .encoding import Progress, index_articles, vocabulary
from .report import BuildReport, finish


def _chunking(settings: Settings) -> dict[str, int | str]:
    return {
        "size": settings.chunk_size,
        "overlap": settings.chunk_overlap,
        "unit": "characters, whole sentences",
    }


def dedupe(articles: list[Article]) -> list[Article]:
    seen: dict[str, Article] = {}
    for a in articles:
        seen.setdefault(a.id, a)
    return list(seen.values())


def build(
    corpus: Path,
    index_dir: Path,
    encoder: Encoder,
    settings: Settings,
    progress: Progress | None = None,
    reading: ReadProgress | None = None,
) -> BuildReport:
    """Full rebuild of `index_dir` from every file under `corpus`."""
    started = time.perf_counter()
    report = BuildReport()
    articles, report.errors = read_files(corpus_files(corpus), settings.max_article_bytes, reading)
    return build_from_articles(articles, index_dir, encoder, settings, progress, report, started)


def build_from_articles(
    articles: list[Article],
    index_dir: Path,
    encoder: Encoder,
    settings: Settings,
    progress: Progress | None = None,
    report: BuildReport | None = None,
    started: float | None = None,
    rescorer: Encoder | None = None,
) -> BuildReport:
    """Full rebuild of `index_dir` from articles already read. The second
    sentence encoder is `rescorer`, by default the one `settings` names."""
    started = time.perf_counter() if started is None else started
    report = report or BuildReport()
    rescorer = rescorer or load_rescorer(settings.rescore_model, settings.encoder_threads())
    items, skipped, report.encode_seconds = index_articles(
        dedupe(articles),
        encoder,
        (settings.chunk_size, settings.chunk_overlap),
        progress,
        rescorer,
    )
    report.errors += skipped
    words, seconds = vocabulary(items, encoder, None, progress)
    report.encode_seconds += seconds
    backend = backend_for(settings.store, settings.milvus_uri or str(index_dir / "milvus.db"))
    with build_lock(index_dir):
        report.index_path = write_build(
            index_dir,
            items,
            words,
            encoder_meta(encoder),
            _chunking(settings),
            backend,
            rescorer_meta(rescorer) if rescorer else None,
        )
    report.added = [i.article.id for i in items]
    return finish(report, items, started)


def encoder_meta(encoder: Encoder) -> dict[str, str | int]:
    return {"name": encoder.name, "dim": encoder.dim}


def rescorer_meta(rescorer: Encoder) -> dict[str, str | int]:
    """The second encoder's `encoder_meta`, with the token states kept per
    sentence when it gives them (qa/token_match.py)."""
    if isinstance(rescorer, TokenEncoder):
        return {**encoder_meta(rescorer), "tokens": TOKENS_KEPT}
    return encoder_meta(rescorer)
