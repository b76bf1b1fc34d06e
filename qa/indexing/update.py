"""Changes to an existing index: articles added or removed (a segment
appended when the build can take one, else every article written again with
its stored vectors), and compaction into one segment."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..embed import Encoder, load_rescorer
from ..errors import InputError
from ..ingest import ReadProgress, read_files
from ..records import Article
from ..settings import Settings
from ..store import (
    META,
    IndexedArticle,
    IndexReader,
    Vocabulary,
    append_build,
    backend_from_meta,
    build_lock,
    can_append,
    resolve_build,
    verify_digests,
    write_build,
)
from .encoding import Progress, encode_in_batches, index_articles, vocabulary
from .full import dedupe, encoder_meta
from .report import BuildReport, finish


def add(
    paths: list[Path],
    index_dir: Path,
    encoder: Encoder,
    settings: Settings,
    progress: Progress | None = None,
    reading: ReadProgress | None = None,
) -> BuildReport:
    """Add articles to an existing index. An article already there with the same
    content is left alone; one from the same source or URL with new content
    replaces the old version (its old sentences can no longer be cited)."""
    started = time.perf_counter()
    report = BuildReport()
    articles, report.errors = read_files(paths, settings.max_article_bytes, reading)
    with build_lock(index_dir):
        old = _open_checked(index_dir, encoder)
        fresh = [a for a in dedupe(articles) if not _same_as_stored(old, a)]
        fresh_ids = {a.id for a in fresh}
        report.unchanged = [a.id for a in articles if a.id not in fresh_ids]
        if not fresh:
            # Nothing new (a feed or a drop folder offered again): the current
            # build stays, rather than a copy of it being written.
            return _unchanged(report, old, started)
        replaced = _replaced_by(old, fresh)
        # New articles are chunked as the index was, whatever the caller's settings.
        chunking = (int(old.meta["chunking"]["size"]), int(old.meta["chunking"]["overlap"]))
        # ...and their sentences encoded by the index's second encoder, if any.
        rescorer = load_rescorer(old.rescorer_name, settings.encoder_threads())
        new_items, skipped, report.encode_seconds = index_articles(
            fresh, encoder, chunking, progress, rescorer
        )
        report.errors += skipped
        report.removed = sorted(replaced)
        report.added = [i.article.id for i in new_items]
        if can_append(old, new_items):
            words, seconds = _new_words(new_items, encoder, old, progress)
            report.encode_seconds += seconds
            report.index_path = append_build(index_dir, old, new_items, sorted(replaced), words)
            return _appended(report, old, started)
        kept = [old.indexed_article(i) for i in old.article_ids() if i not in replaced]
        items = kept + new_items
        report.index_path = _rewrite(index_dir, old, items, encoder, report, progress)
    return finish(report, items, started)


def remove(ids: list[str], index_dir: Path, encoder: Encoder) -> BuildReport:
    """Remove articles by id. Unknown ids are reported as errors; nothing else changes."""
    started = time.perf_counter()
    report = BuildReport()
    with build_lock(index_dir):
        old = _open_checked(index_dir, encoder)
        # Looked up one by one: listing every id would read the whole table.
        found = {i for i in dict.fromkeys(ids) if old.article(i) is not None}
        report.errors = [
            InputError(f"{i}: no article with this id in {index_dir}.")
            for i in ids
            if i not in found
        ]
        report.removed = [i for i in ids if i in found]
        if can_append(old):
            if report.removed:
                empty = Vocabulary([], np.zeros((0, old.dim), np.float32), [])
                report.index_path = append_build(index_dir, old, [], report.removed, empty)
                return _appended(report, old, started)
            return _unchanged(report, old, started)
        items = [old.indexed_article(i) for i in old.article_ids() if i not in found]
        report.unchanged = [i.article.id for i in items]
        report.index_path = _rewrite(index_dir, old, items, encoder, report, None)
    return finish(report, items, started)


def _rewrite(
    index_dir: Path,
    old: IndexReader,
    items: list[IndexedArticle],
    encoder: Encoder,
    report: BuildReport,
    progress: Progress | None,
) -> Path:
    """Publish `items` as the next build of `old`'s index, reusing its word vectors
    and chunking parameters."""
    words, seconds = vocabulary(items, encoder, old.vocabulary(), progress)
    report.encode_seconds += seconds
    backend = backend_from_meta(old.meta.get("search") or {})
    path = write_build(
        index_dir,
        items,
        words,
        encoder_meta(encoder),
        old.meta["chunking"],
        backend,
        old.rescorer,
    )
    old.close()
    return path


def compact(index_dir: Path, encoder: Encoder) -> BuildReport:
    """Rewrite an index's live articles as one segment: rows renumbered, the
    rows of removed articles dropped, the IVF quantiser trained again on what
    the index now holds. Nothing is encoded but words (there are none to
    encode unless the vocabulary lost some)."""
    started = time.perf_counter()
    report = BuildReport()
    with build_lock(index_dir):
        old = _open_checked(index_dir, encoder)
        items = [old.indexed_article(i) for i in old.article_ids()]
        report.unchanged = [i.article.id for i in items]
        report.index_path = _rewrite(index_dir, old, items, encoder, report, None)
    return finish(report, items, started)


def _open_checked(index_dir: Path, encoder: Encoder) -> IndexReader:
    """The current build, to change. Its files are checked against meta.json
    and their digests; reading every vector to check it is finite (O(N)) is
    left to the full rewrite, which reads them all anyway."""
    resolve_build(index_dir)
    reader = IndexReader(index_dir, verify=False)
    try:
        verify_digests(reader.path, reader.meta)
        if not can_append(reader):
            reader.verify()
        reader.check_encoder(encoder.name, encoder.dim)
    except BaseException:
        reader.close()
        raise
    return reader


def _new_words(
    items: Sequence[IndexedArticle], encoder: Encoder, old: IndexReader, progress: Progress | None
) -> tuple[Vocabulary, float]:
    """Content words of `items` that `old`'s vocabulary lacks, encoded, with
    their sentence counts among `items`; and the seconds spent encoding."""
    df: dict[str, int] = {}
    for item in items:
        for sentence_words in item.sentence_words:
            for w in sentence_words:
                df[w] = df.get(w, 0) + 1
    known = old.words(df)
    words = sorted(w for w in df if w not in known)
    started = time.perf_counter()
    vectors = (
        encode_in_batches(encoder, words, progress)
        if words
        else np.zeros((0, encoder.dim), dtype=np.float32)
    )
    return Vocabulary(words, vectors, [df[w] for w in words]), time.perf_counter() - started


def _appended(report: BuildReport, old: IndexReader, started: float) -> BuildReport:
    """The report of a build published by `append_build`, with its counts."""
    old.close()
    assert report.index_path is not None
    counts = json.loads((report.index_path / META).read_text())["counts"]
    report.articles, report.chunks, report.sentences = (
        counts["articles"],
        counts["chunks"],
        counts["sentences"],
    )
    report.total_seconds = time.perf_counter() - started
    return report


def _same_as_stored(old: IndexReader, article: Article) -> bool:
    stored = old.article(article.id)
    return stored is not None and stored.text == article.text


def _replaced_by(old: IndexReader, fresh: list[Article]) -> set[str]:
    """Ids of stored articles that a new one replaces: same id with other text,
    or the same source file or URL."""
    keys = {k for a in fresh for k in (a.origin, a.url) if k}
    replaced = {a.id for a in fresh if old.article(a.id) is not None}
    return replaced | set(old.articles_keyed(keys))


def _unchanged(report: BuildReport, old: IndexReader, started: float) -> BuildReport:
    report.index_path = old.path
    counts = old.counts
    report.articles, report.chunks, report.sentences = (
        counts["articles"],
        counts["chunks"],
        counts["sentences"],
    )
    old.close()
    report.total_seconds = time.perf_counter() - started
    return report
