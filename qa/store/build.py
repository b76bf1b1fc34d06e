"""Writing a build: every vector file, store.sqlite and the chunk search of
the chosen backend into a temporary folder, meta.json with the size and
digest of every file (`qa.integrity`), then published (`qa.store.publish`)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import integrity
from ..errors import DiskFull, NonFiniteVectors
from .files import save_npy
from .layout import (
    CHUNKS_NPY,
    FORMAT_VERSION,
    HALF_FLOAT_FILES,
    RESCORE_NPY,
    RESCORE_TOKENS_NPY,
    SCHEMA,
    SENTENCES_NPY,
    SQLITE,
    WORDS_NPY,
    IndexedArticle,
    Vocabulary,
)
from .publish import current_build_id, discard, new_build_id, prune, publish_folder
from .search import SearchBackend, backend_for, drop_search
from .segments import Segment


def write_build(
    index_dir: Path,
    items: Sequence[IndexedArticle],
    vocabulary: Vocabulary,
    encoder: dict[str, Any],
    chunking: dict[str, Any],
    backend: SearchBackend | None = None,
    rescorer: dict[str, Any] | None = None,
) -> Path:
    """Write a whole build for `items` and publish it as `index_dir/current`.

    Call it holding `build_lock`. Until the final symlink swap nothing a reader
    opens changes; a build that fails removes its `builds/.tmp-*` folder, and
    one killed outright leaves it for the next build to remove. Vectors that
    are not finite, or a disk without room for the build, are refused before
    anything is written. An external search `backend` (Milvus) gets the
    build's chunks before the swap, so a reader never sees a build whose
    search is not there yet. `rescorer` ({name, dim[, tokens]}) is the second
    sentence encoder, if any: every item then carries its `rescore_vectors`
    (and, with "tokens", its `rescore_tokens`).
    """
    backend = backend or backend_for("faiss")
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    dim = int(encoder["dim"])
    vectors = vector_files(items, vocabulary, dim, rescorer)
    chunk_vectors = vectors[CHUNKS_NPY]
    check_free_space(
        builds,
        build_bytes(vectors, items) + backend.disk_bytes(*chunk_vectors.shape),
    )
    build_id = new_build_id()
    tmp = builds / f".tmp-{build_id}"
    final = builds / build_id
    search: dict[str, Any] = {}
    try:
        tmp.mkdir()
        for name, array in vectors.items():
            save_npy(tmp / name, array.astype(np.float16) if name in HALF_FLOAT_FILES else array)
        _write_sqlite(tmp / SQLITE, items, vocabulary)
        chunk_terms = [t for i in items for t in i.chunk_terms]
        published = backend.publish(tmp, build_id, chunk_vectors, chunk_terms)
        search = published["search"]
        # Every file, those of index folders too (but the lock files that
        # opening an index may create), by its path in the build folder.
        files = sorted(
            str(p.relative_to(tmp))
            for p in tmp.rglob("*")
            if p.is_file() and not p.name.endswith(".lock")
        )
        meta = {
            "format_version": FORMAT_VERSION,
            "build_id": build_id,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "encoder": {"name": encoder["name"], "dim": dim},
            "rescorer": _rescorer_entry(rescorer),
            "chunking": chunking,
            **published,
            # One segment, at the root; adds append others (qa.store.append).
            "segments": [
                Segment(
                    ".", len(chunk_vectors), len(vectors[SENTENCES_NPY]), len(vocabulary.words)
                ).entry()
            ],
            "counts": {
                "articles": len(items),
                "chunks": len(chunk_vectors),
                "sentences": len(vectors[SENTENCES_NPY]),
                "words": len(vocabulary.words),
            },
            "files": {name: (tmp / name).stat().st_size for name in files},
            "digests": integrity.digests(tmp, files),
        }
        publish_folder(index_dir, tmp, final, meta)
    except BaseException:
        if current_build_id(index_dir) != build_id:
            drop_search(search)  # e.g. a Milvus collection, outside the folder
        discard(index_dir, build_id, tmp, final)
        raise
    prune(index_dir, keep=final)
    return final


def vector_files(
    items: Sequence[IndexedArticle],
    vocabulary: Vocabulary,
    dim: int,
    rescorer: dict[str, Any] | None,
) -> dict[str, np.ndarray]:
    """The vector files of `items` and `vocabulary`'s words, by file name,
    refused if any vector is not finite. With a second sentence encoder
    (`rescorer`, {name, dim[, tokens]}) every item must carry its
    `rescore_vectors` (and `rescore_tokens`)."""
    vectors = {
        CHUNKS_NPY: _stack([i.chunk_vectors for i in items], dim),
        SENTENCES_NPY: _stack([i.sentence_vectors for i in items], dim),
        WORDS_NPY: _stack([vocabulary.vectors], dim),
    }
    if rescorer is not None:
        rescore_vectors = [i.rescore_vectors for i in items]
        if any(v is None for v in rescore_vectors):
            raise ValueError("an index with a second sentence encoder needs all its vectors")
        vectors[RESCORE_NPY] = _stack(rescore_vectors, int(rescorer["dim"]))  # type: ignore[arg-type]
        if rescorer.get("tokens"):
            tokens = [i.rescore_tokens for i in items]
            if any(t is None for t in tokens):
                raise ValueError("an index with token states needs them for every sentence")
            width = int(rescorer["tokens"]) * int(rescorer["dim"])
            vectors[RESCORE_TOKENS_NPY] = (
                np.concatenate(tokens)  # type: ignore[arg-type]
                if tokens
                else np.zeros((0, width), dtype=np.int8)
            )
    _refuse_non_finite(vectors, items, vocabulary)
    return vectors


def _rescorer_entry(rescorer: dict[str, Any] | None) -> dict[str, Any] | None:
    """What meta.json says of the second encoder: its name, its dimension and,
    when the index keeps its token states, how many per sentence."""
    if rescorer is None:
        return None
    meta = {"name": rescorer["name"], "dim": int(rescorer["dim"])}
    if rescorer.get("tokens"):
        meta["tokens"] = int(rescorer["tokens"])
    return meta


def _refuse_non_finite(
    vectors: dict[str, np.ndarray], items: Sequence[IndexedArticle], vocabulary: Vocabulary
) -> None:
    """NaN or infinity in a vector would turn every score it touches into NaN.
    Sentences are looked at first: their texts name the fault most precisely."""
    for name in sorted(vectors, key=lambda name: name != SENTENCES_NPY):
        row = integrity.first_non_finite(vectors[name])
        if row is None:
            continue
        what = _row_owner(name, row, items, vocabulary)
        raise NonFiniteVectors(
            f"the encoder returned NaN or infinite values for {what}; nothing was written. "
            "Check the encoder (--model), or leave that article out."
        )


def _row_owner(name: str, row: int, items: Sequence[IndexedArticle], vocabulary: Vocabulary) -> str:
    """What row `row` of the vector file `name` encodes, in words."""
    if name == WORDS_NPY:
        return f"the word {vocabulary.words[row]!r}"
    for item in items:
        texts = (
            [c.text for c in item.chunks]
            if name == CHUNKS_NPY
            else [s.text for s in item.sentences]
        )
        if row < len(texts):
            source = item.article.origin or item.article.id
            return f"{source}: {' '.join(texts[row].split()[:12])!r}"
        row -= len(texts)
    return f"row {row} of {name}"


# What a build writes beyond its vectors, from builds of the PIAF paragraphs:
# store.sqlite is 2-2.9 times the characters of its article texts and lexical terms.
SQLITE_PER_TEXT_CHAR = 3
SPACE_MARGIN = 1 << 20


def build_bytes(vectors: dict[str, np.ndarray], items: Sequence[IndexedArticle]) -> int:
    """A generous estimate of the bytes a build writes, but for its chunk search."""
    text = sum(
        len(i.article.text) + sum(map(len, i.sentence_terms)) + sum(map(len, i.chunk_terms))
        for i in items
    )
    return sum(v.nbytes for v in vectors.values()) + SQLITE_PER_TEXT_CHAR * text + SPACE_MARGIN


def check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DiskFull(
            f"{folder}: the build needs about {_mb(needed)} and the disk has {_mb(free)} free; "
            "nothing was written. Free some space there, or build into an --index folder "
            "on a larger disk."
        )


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e6:.1f} MB"


def _stack(arrays: list[np.ndarray], dim: int) -> np.ndarray:
    if not arrays:
        return np.zeros((0, dim), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(arrays), dtype=np.float32)


@contextlib.contextmanager
def writing_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to write a build's SQLite file, not yet published: no
    journal and no sync per statement (the file is fsynced with its folder
    before it goes live). SQLite's own words for a full disk or a refused
    write leave as the operating system's error, which `build_lock` turns
    into a message."""
    try:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            yield db
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
            raise OSError(errno.EACCES, str(exc), str(path)) from exc
        raise


def _write_sqlite(path: Path, items: Sequence[IndexedArticle], vocabulary: Vocabulary) -> None:
    with writing_sqlite(path) as db:
        db.executescript("BEGIN;\n" + SCHEMA)  # one transaction for the whole build
        db.executemany(
            "INSERT INTO vocab VALUES (?, ?, ?)",
            (
                (w, i, df)
                for i, (w, df) in enumerate(zip(vocabulary.words, vocabulary.df, strict=True))
            ),
        )
        row_of = {w: i for i, w in enumerate(vocabulary.words)}
        insert_articles(db, items, 0, 0, row_of)
        db.execute("COMMIT")
        db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        db.execute("INSERT INTO sentences_fts(sentences_fts) VALUES ('optimize')")


def insert_articles(
    db: sqlite3.Connection,
    items: Sequence[IndexedArticle],
    chunk_row: int,
    sentence_row: int,
    row_of: dict[str, int],
) -> None:
    """Insert `items` with their chunks and sentences, numbered from the rows
    given; `row_of` maps each content word to its vocabulary row."""
    for item in items:
        a = item.article
        db.execute(
            "INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (a.id, a.title, a.text, a.lang, a.url, a.date, a.origin, a.credit, a.source, a.author),
        )
        for idx, (s, terms) in enumerate(zip(item.sentences, item.sentence_terms, strict=True)):
            db.execute(
                "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?)",
                (sentence_row, a.id, idx, s.start, s.end, int(s.heading)),
            )
            db.execute(
                "INSERT INTO sentences_fts(rowid, terms) VALUES (?, ?)", (sentence_row, terms)
            )
            # Vocabulary rows of its content words, so soft matching at query
            # time reads them instead of re-tokenising the sentence.
            word_rows = " ".join(str(row_of[w]) for w in item.sentence_words[idx] if w in row_of)
            db.execute("INSERT INTO sentence_words VALUES (?, ?)", (sentence_row, word_rows))
            sentence_row += 1
        for c, terms in zip(item.chunks, item.chunk_terms, strict=True):
            db.execute(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (chunk_row, c.chunk_id, a.id, c.start, c.end, c.first_sentence, c.last_sentence),
            )
            db.execute("INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)", (chunk_row, terms))
            chunk_row += 1
