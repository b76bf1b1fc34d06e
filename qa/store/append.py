"""Changing a build in proportion to the change: a new build folder that
hard-links the previous build's files, adds one segment for the new articles
and marks the removed ones' rows deleted (`qa.store.segments`), published by
the same `current` swap as a full build.

What is written: the new segment's vector files and FAISS lists, tantivy's
new segment and deletion files, the deletion files, meta.json, and a copy of
store.sqlite changed in place by a few inserts and deletes. SQLite is the one
file copied whole (a hard link would let this build's writes reach the
previous build, which readers may still have open): a sequential copy, ~1-2 s
per GB (docs/scaling.md), with no memory held.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import integrity
from ..lexical import content_words
from .build import (
    SPACE_MARGIN,
    build_bytes,
    check_free_space,
    insert_articles,
    vector_files,
    writing_sqlite,
)
from .faiss_backend import FaissBackend
from .files import read_npy, save_npy
from .layout import (
    CHUNKS_NPY,
    HALF_FLOAT_FILES,
    META,
    SENTENCES_NPY,
    SQLITE,
    WORDS_NPY,
    IndexedArticle,
    Vocabulary,
)
from .publish import discard, new_build_id, prune, publish_folder
from .reader import IndexReader
from .segments import DELETED_CHUNKS, DELETED_SENTENCES, SEGMENTS_DIR, Segment

# Written anew in each build, never hard-linked: meta.json and SQLite change,
# the deletion files are rewritten whole (they are small), and the JSON files
# of tantivy's folder are replaced by its commits.
NOT_LINKED = (META, SQLITE, DELETED_CHUNKS, DELETED_SENTENCES)
# Segments appended since the last full build, at most: the add that would
# make one more merges them with its own into one segment (their rows stay
# as they are). Each segment costs every search a little (a FAISS file opened,
# a list to walk per probed IVF list); the merge costs what was appended since
# the last full build or compaction, once per MAX_APPENDED adds.
MAX_APPENDED = 32


def can_append(old: IndexReader, adding: Sequence[IndexedArticle] = ()) -> bool:
    """Whether `old` can take the articles `adding` (or a removal) as a
    segment: a FAISS build made with segments (`FaissBackend.can_append`).
    Others (builds from before segments, Milvus builds, HNSW) are rewritten
    whole, which also turns a build from before into one that can."""
    chunks = sum(len(i.chunks) for i in adding)
    return old.search.kind == FaissBackend.kind and FaissBackend.can_append(old.meta, chunks)


def append_build(
    index_dir: Path,
    old: IndexReader,
    items: Sequence[IndexedArticle],
    removed: Sequence[str],
    new_words: Vocabulary,
) -> Path:
    """Publish `old`'s build plus `items` (one new segment), less the articles
    `removed` (their rows marked deleted), as `index_dir/current`.

    Call it holding `build_lock`, with `can_append(old)`. `new_words` are the
    content words of `items` that `old`'s vocabulary lacks, with their vectors.
    As with a full build, nothing a reader opens changes until the swap, and a
    build that fails (or is killed) leaves the previous one live.
    """
    dim, rows = old.dim, old.rows
    vectors = vector_files(items, new_words, dim, old.rescorer)
    appended = old.segments[1:]
    absorbed = appended if items and len(appended) >= MAX_APPENDED else []
    for name in vectors:  # the merged segment's rows: theirs, then the new ones
        if absorbed:
            kind = vectors[name].dtype  # float32 (saved as float16 or not), or int8 token states
            parts = [np.asarray(read_npy(old.path / s.dir / name), kind) for s in absorbed]
            vectors[name] = np.concatenate([*parts, vectors[name]])
    builds = index_dir / "builds"
    check_free_space(
        builds,
        build_bytes(vectors, items)
        + (old.path / SQLITE).stat().st_size
        + FaissBackend().disk_bytes(len(vectors[CHUNKS_NPY]), dim)
        + SPACE_MARGIN,
    )
    build_id = new_build_id()
    tmp, final = builds / f".tmp-{build_id}", builds / build_id
    try:
        tmp.mkdir()
        linked = _link_files(old.path, tmp, old.meta, {s.dir for s in absorbed})
        shutil.copyfile(old.path / SQLITE, tmp / SQLITE)
        change = _edit_sqlite(tmp / SQLITE, old, items, removed, new_words)
        segments = list(old.meta["segments"])[: len(old.segments) - len(absorbed)]
        if items:
            segment = Segment(
                f"{SEGMENTS_DIR}/{build_id}",
                len(vectors[CHUNKS_NPY]),
                len(vectors[SENTENCES_NPY]),
                len(vectors[WORDS_NPY]),
            )
            (tmp / segment.dir).mkdir(parents=True)
            for name, array in vectors.items():
                half = name in HALF_FLOAT_FILES
                save_npy(tmp / segment.dir / name, array.astype(np.float16) if half else array)
            segments.append(segment.entry())
        deleted_chunks = _mark(tmp / DELETED_CHUNKS, old.deleted_chunks, change["chunk_rows"])
        deleted_sentences = _mark(
            tmp / DELETED_SENTENCES, old.deleted_sentences, change["sentence_rows"]
        )
        FaissBackend.append(
            tmp,
            tmp / f"{SEGMENTS_DIR}/{build_id}",
            absorbed[0].first_chunk if absorbed else rows["chunks"],
            vectors[CHUNKS_NPY],
            [t for i in items for t in i.chunk_terms],
            change["chunk_rows"],
        )
        meta = _meta(old.meta, tmp, build_id, segments, change["counts"], linked)
        meta["deleted"] = {"chunks": len(deleted_chunks), "sentences": len(deleted_sentences)}
        publish_folder(index_dir, tmp, final, meta)
    except BaseException:
        discard(index_dir, build_id, tmp, final)
        raise
    prune(index_dir, keep=final)
    return final


def _link_files(old: Path, new: Path, meta: dict[str, Any], merged: set[str]) -> set[str]:
    """Hard-link the previous build's files into `new` (O(1) each), but those
    rewritten here and those of the segments `merged`; JSON files are copied
    (tantivy replaces its own). Returns the names linked, whose digests carry
    over."""
    linked: set[str] = set()
    for name in meta["files"]:
        if name in NOT_LINKED or str(Path(name).parent) in merged:
            continue
        (new / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".json"):
            shutil.copyfile(old / name, new / name)
        else:
            os.link(old / name, new / name)
            linked.add(name)
    return linked


def _mark(path: Path, before: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The rows marked deleted: those of the previous build and `rows`."""
    deleted = np.union1d(before, rows).astype(np.int64)
    if len(deleted):
        save_npy(path, deleted)
    return deleted


def _edit_sqlite(
    path: Path,
    old: IndexReader,
    items: Sequence[IndexedArticle],
    removed: Sequence[str],
    new_words: Vocabulary,
) -> dict[str, Any]:
    """Delete the `removed` articles from the copy of SQLite at `path` and
    insert `items`, numbered after the previous build's rows; the vocabulary's
    sentence counts follow, new words appended. Returns the deleted chunk and
    sentence rows and the build's live counts."""
    with writing_sqlite(path) as db:
        db.execute("BEGIN")
        chunk_rows, sentence_rows, df = _delete(db, removed)
        for item in items:
            for words in item.sentence_words:
                df.update(words)
        row_of = _update_vocabulary(db, df, new_words, old.rows["words"])
        insert_articles(db, items, old.rows["chunks"], old.rows["sentences"], row_of)
        counts = {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("articles", "vocab")
        }
        db.execute("COMMIT")
    before = old.counts
    return {
        "chunk_rows": chunk_rows,
        "sentence_rows": sentence_rows,
        "counts": {
            "articles": counts["articles"],
            "chunks": before["chunks"] - len(chunk_rows) + sum(len(i.chunks) for i in items),
            "sentences": before["sentences"]
            - len(sentence_rows)
            + sum(len(i.sentences) for i in items),
            "words": counts["vocab"],
        },
    }


def _delete(
    db: sqlite3.Connection, removed: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, Counter[str]]:
    """Delete articles with their chunks, sentences and terms. Returns their
    chunk and sentence rows and, negated, their content words' sentence counts."""
    chunk_rows: list[int] = []
    sentence_rows: list[int] = []
    df: Counter[str] = Counter()
    ids = list(dict.fromkeys(removed))
    for at in range(0, len(ids), 500):  # SQLite caps bound parameters
        part = ids[at : at + 500]
        marks = ",".join("?" * len(part))
        chunk_rows += [
            r for (r,) in db.execute(f"SELECT row FROM chunks WHERE article_id IN ({marks})", part)
        ]
        found = db.execute(
            f'SELECT s.row, s.start, s."end", a.text, a.lang FROM sentences s '
            f"JOIN articles a ON a.id = s.article_id WHERE s.article_id IN ({marks})",
            part,
        ).fetchall()
        for row, start, end, text, lang in found:
            sentence_rows.append(row)
            df.subtract(content_words(text[start:end], lang))
        db.execute(f"DELETE FROM chunks WHERE article_id IN ({marks})", part)
        db.execute(f"DELETE FROM sentences WHERE article_id IN ({marks})", part)
        db.execute(f"DELETE FROM articles WHERE id IN ({marks})", part)
    for table, column, rows in (
        ("chunks_fts", "rowid", chunk_rows),
        ("sentences_fts", "rowid", sentence_rows),
        ("sentence_words", "row", sentence_rows),
    ):
        for at in range(0, len(rows), 500):
            part_rows = rows[at : at + 500]
            db.execute(
                f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(part_rows))})",
                part_rows,
            )
    return np.array(sorted(chunk_rows), np.int64), np.array(sorted(sentence_rows), np.int64), df


def _update_vocabulary(
    db: sqlite3.Connection, df: Counter[str], new_words: Vocabulary, first_row: int
) -> dict[str, int]:
    """Apply the change `df` to the vocabulary's sentence counts: a word whose
    count falls to 0 leaves it (its vector row stays unused until a
    compaction), `new_words` get rows from `first_row` on. Returns the row of
    every word with a positive change (the added sentences' words)."""
    new_row = {w: first_row + i for i, w in enumerate(new_words.words)}
    row_of: dict[str, int] = {}
    known = [w for w in df if w not in new_row]
    for at in range(0, len(known), 500):
        part = known[at : at + 500]
        found = db.execute(
            f"SELECT word, row, df FROM vocab WHERE word IN ({','.join('?' * len(part))})", part
        ).fetchall()
        for word, row, count in found:
            if count + df[word] > 0:
                db.execute("UPDATE vocab SET df = ? WHERE word = ?", (count + df[word], word))
                row_of[word] = row
            else:
                db.execute("DELETE FROM vocab WHERE word = ?", (word,))
    for word, row in new_row.items():
        db.execute("INSERT INTO vocab VALUES (?, ?, ?)", (word, row, max(df[word], 1)))
        row_of[word] = row
    return row_of


def _meta(
    old: dict[str, Any],
    folder: Path,
    build_id: str,
    segments: list[dict[str, Any]],
    counts: dict[str, int],
    linked: set[str],
) -> dict[str, Any]:
    """The new build's meta.json: the previous one's, with its segments,
    counts, files and digests (carried over for the files hard-linked)."""
    files = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(".lock") and p != folder / META
    )
    digests = old.get("digests") or {}
    reuse = digests.get("scheme") == integrity.SCHEME
    known = digests.get("files", {}) if reuse else {}
    fresh = integrity.digests(folder, [f for f in files if not (f in linked and f in known)])
    return {
        **old,
        "build_id": build_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "segments": segments,
        "counts": counts,
        "files": {name: (folder / name).stat().st_size for name in files},
        "digests": {
            "scheme": integrity.SCHEME,
            "files": {
                f: known[f] if f in linked and f in known else fresh["files"][f] for f in files
            },
        },
    }
