"""The index folder: FAISS for chunk vectors, a numpy file for sentence
vectors, SQLite for articles, chunks, sentences and their lexical (FTS5) index,
and `meta.json` describing the build.

Layout of an index folder `DIR`:

    DIR/current -> builds/<build_id>      (symlink, swapped atomically)
    DIR/builds/<build_id>/meta.json
                          chunks.faiss    (row i = chunks.row i; exact or approximate search)
                          chunks.npy      (row i = chunks.row i, float32, unit rows: exact vectors)
                          sentences.npy   (row i = sentences.row i, float32, unit rows)
                          words.npy       (row i = vocab.row i: content-word vectors)
                          store.sqlite

A build is written into a temporary folder, then renamed and published by
replacing the `current` symlink, so a reader only ever sees a whole build.
meta.json records the size and digest of every other file (`qa.integrity`),
checked with the vectors and SQLite's structure when a reader opens the build.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from . import integrity
from .errors import (
    DiskFull,
    EncoderMismatch,
    IndexMismatch,
    IndexMissing,
    IndexProblem,
    IndexUnwritable,
    NonFiniteVectors,
)
from .lexical import content_words
from .records import Article, Chunk, Sentence
from .search import (
    ChunkSearch,
    FaissBackend,
    SearchBackend,
    drop_search,
    fts_search,
    open_search,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META = "meta.json"
CHUNKS_FAISS = "chunks.faiss"
CHUNKS_NPY = "chunks.npy"
SENTENCES_NPY = "sentences.npy"
RESCORE_NPY = "rescore_sentences.npy"  # by the second encoder, when there is one
RESCORE_BLOCK = 65_536  # sentences scored at once by `rescore_sentences`
SQLITE = "store.sqlite"
WORDS_NPY = "words.npy"
# Below this many chunks search is exact (flat); from it on, IVF lists of 8-bit
# scalar-quantised vectors (a quarter of float32's memory; the exact vectors stay
# in chunks.npy). Why 50,000 (scripts/bench_scale.py, one query on one core):
# exact search costs ~0.08 ms per 1,000 vectors, ~4 ms at 50k, which is what
# IVF-SQ8 costs at the probe count below (~3 ms of CPU at any size, recall@10
# 0.97-0.99 against exact search); past it exact search grows linearly (15 ms
# p95 at 100k, 150 ms at 1M) and IVF does not. Dev corpora (< 1k chunks) stay
# exact. Measurements: docs/scaling.md.
IVF_THRESHOLD = 50_000
# IVF lists: ~2·sqrt(n) rounded to a power of two (2048 at 1M: k-means trains in
# ~20-40 s on 2 cores, 4096 lists took ~3 min for +0.01 recall at the same scan),
# trained on a fixed-seed sample of IVF_TRAIN_PER_LIST rows per list.
IVF_MIN_LISTS = 256
IVF_MAX_LISTS = 8192
IVF_TRAIN_PER_LIST = 50
# Lists probed per query: enough to scan ~IVF_SCAN vectors (at a fixed scan,
# recall@10 grows with the corpus: 0.98 at 100k, 0.97-0.98 at 1M on the
# benchmark's mixtures, ~3 ms of CPU), never under 1/32 of the lists, so that
# recall holds past 1M (latency then grows: see docs/scaling.md).
IVF_SCAN = 40_000
IVF_MIN_PROBE_FRACTION = 32
# HNSW over the same 8-bit codes ('hnsw_sq8') is not picked by `faiss_kind`: at
# 1M it searches faster (0.5 ms p95, recall@10 0.97) but builds in 230-280 s
# where IVF takes 20-90 s (and every add rebuilds the index), and FAISS reads its
# graph and codes into each worker's own memory (~800 MB) where IVF lists are
# memory-mapped and shared. It can be built for comparison (bench_scale.py
# --kind hnsw_sq8), and HNSW builds of earlier versions still open.
# qa.milvus uses the HNSW constants for the Milvus index (its own FLAT -> HNSW
# switch at HNSW_THRESHOLD).
HNSW_THRESHOLD = 200_000
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80
HNSW_TRAIN_SIZE = 100_000  # rows that fit the scalar quantiser's ranges

# The articles table's columns, in `Article`'s field order.
ARTICLE_FIELDS = (
    "id",
    "title",
    "text",
    "lang",
    "url",
    "date",
    "origin",
    "credit",
    "source",
    "author",
)

SCHEMA = """
CREATE TABLE articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, lang TEXT NOT NULL,
    url TEXT, date TEXT, origin TEXT, credit TEXT, source TEXT, author TEXT
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, article_id TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    first_sentence INTEGER NOT NULL, last_sentence INTEGER NOT NULL
);
CREATE TABLE sentences (
    row INTEGER PRIMARY KEY, article_id TEXT NOT NULL, idx INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, heading INTEGER NOT NULL,
    UNIQUE (article_id, idx)
);
CREATE VIRTUAL TABLE chunks_fts USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE sentences_fts USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE sentences_vocab USING fts5vocab(sentences_fts, 'row');
CREATE INDEX chunks_by_article ON chunks(article_id);
CREATE TABLE vocab (word TEXT PRIMARY KEY, row INTEGER NOT NULL, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE sentence_words (row INTEGER PRIMARY KEY, words TEXT NOT NULL);
"""


@dataclass(frozen=True)
class IndexedArticle:
    """An article with everything the index keeps of it."""

    article: Article
    sentences: list[Sentence]
    chunks: list[Chunk]
    sentence_terms: list[str]  # space-joined lexical terms, one per sentence
    chunk_terms: list[str]
    sentence_words: list[list[str]]  # content words of each sentence (soft matching)
    sentence_vectors: np.ndarray  # (len(sentences), dim)
    chunk_vectors: np.ndarray  # (len(chunks), dim)
    # By the second encoder (qa.settings `rescore_model`), when the index has one.
    rescore_vectors: np.ndarray | None = None  # (len(sentences), rescorer dim)


@dataclass(frozen=True)
class Vocabulary:
    """Content words of all sentences with their vectors and sentence counts."""

    words: list[str]
    vectors: np.ndarray  # (len(words), dim)
    df: list[int]  # in how many sentences each word occurs


@dataclass(frozen=True)
class SentenceRow:
    row: int
    article_id: str
    idx: int
    start: int
    end: int
    heading: bool


@dataclass(frozen=True)
class ChunkRow:
    row: int
    chunk_id: str
    article_id: str
    start: int
    end: int
    first_sentence: int
    last_sentence: int


# ---------------------------------------------------------------- writing


def new_build_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def faiss_kind(n_vectors: int) -> str:
    """The FAISS structure for `n_vectors` chunks: 'flat' (exact) or 'ivf_sq8'."""
    return "ivf_sq8" if n_vectors >= IVF_THRESHOLD else "flat"


def ivf_lists(n_vectors: int) -> int:
    """IVF lists for `n_vectors`: a power of two near 2·sqrt(n), and no more
    than the vectors can train (which only binds below IVF_THRESHOLD, in tests)."""
    target = 2 * max(n_vectors, 1) ** 0.5
    nlist = min(IVF_MAX_LISTS, max(IVF_MIN_LISTS, 2 ** round(np.log2(target))))
    return int(min(nlist, max(1, n_vectors // IVF_TRAIN_PER_LIST)))


def ivf_probes(nlist: int, n_vectors: int) -> int:
    """Lists to probe per query: ~IVF_SCAN vectors, at least 1/32 of the lists."""
    scan = -(-IVF_SCAN * nlist // max(n_vectors, 1))  # ceil
    return min(nlist, max(scan, nlist // IVF_MIN_PROBE_FRACTION))


def faiss_meta(kind: str, n_vectors: int) -> dict[str, Any]:
    """What meta.json records about the chunk index (its "faiss" entry)."""
    meta: dict[str, Any] = {"kind": kind, "metric": "inner_product"}
    if kind == "ivf_sq8":
        nlist = ivf_lists(n_vectors)
        meta |= {
            "nlist": nlist,
            "nprobe": ivf_probes(nlist, n_vectors),
            "quantizer": "QT_8bit",
            "train_size": min(n_vectors, nlist * IVF_TRAIN_PER_LIST),
        }
    elif kind == "hnsw_sq8":
        meta |= {
            "hnsw_m": HNSW_M,
            "ef_construction": HNSW_EF_CONSTRUCTION,
            "ef_search": HNSW_EF_SEARCH,
            "quantizer": "QT_8bit",
        }
    return meta


def make_faiss_index(vectors: np.ndarray, kind: str) -> faiss.Index:
    """An inner-product index over unit rows (so scores are cosines, exact for
    'flat', 8-bit quantised for the others). Its parameters: `faiss_meta`."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    params = faiss_meta(kind, n)
    index: faiss.Index
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf_sq8":
        coarse = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(
            coarse, dim, params["nlist"], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.nprobe = params["nprobe"]  # stored in the file too
        index.train(_training_sample(vectors, params["train_size"]))
    elif kind == "hnsw_sq8":
        sq8: Any = faiss.ScalarQuantizer.QT_8bit  # (typed as a ScalarQuantizer by the stub)
        index = faiss.IndexHNSWSQ(dim, sq8, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.train(_training_sample(vectors, HNSW_TRAIN_SIZE))
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}")
    if n:
        index.add(vectors)
    return index


def set_search_params(index: faiss.Index, meta: dict[str, Any]) -> None:
    """Search-time parameters of a loaded chunk index, from meta.json's "faiss"."""
    if isinstance(index, faiss.IndexIVF):
        index.nprobe = int(meta.get("nprobe", index.nprobe))
    elif hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(meta.get("ef_search", HNSW_EF_SEARCH))


def _training_sample(vectors: np.ndarray, size: int) -> np.ndarray:
    """A fixed-seed sample of rows (the same vectors always train the same index)."""
    if size >= len(vectors):
        return vectors
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), size, replace=False))
    return vectors[rows]


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
    search is not there yet. `rescorer` ({name, dim}) is the second sentence
    encoder, if any: every item then carries its `rescore_vectors`.
    """
    backend = backend or FaissBackend()
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    dim = int(encoder["dim"])
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
    _refuse_non_finite(vectors, items, vocabulary)
    chunk_vectors = vectors[CHUNKS_NPY]
    kind = faiss_kind(len(chunk_vectors))
    _check_free_space(builds, _build_bytes(vectors, items, kind))
    build_id = new_build_id()
    tmp = builds / f".tmp-{build_id}"
    final = builds / build_id
    search: dict[str, Any] = {}
    try:
        tmp.mkdir()
        # Serialised in memory, then written by Python: a full disk is then an
        # OSError (ENOSPC) like every other write, not a FAISS RuntimeError.
        index_bytes = faiss.serialize_index(make_faiss_index(chunk_vectors, kind))
        with open(tmp / CHUNKS_FAISS, "wb") as f:
            f.write(index_bytes.data)
        for name, array in vectors.items():
            _save_npy(tmp / name, array)
        _write_sqlite(tmp / SQLITE, items, vocabulary)
        files = [CHUNKS_FAISS, *vectors, SQLITE]
        chunk_terms = [t for i in items for t in i.chunk_terms]
        search = backend.publish(build_id, chunk_vectors, chunk_terms)
        meta = {
            "format_version": FORMAT_VERSION,
            "build_id": build_id,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "encoder": {"name": encoder["name"], "dim": dim},
            "rescorer": (
                {"name": rescorer["name"], "dim": int(rescorer["dim"])} if rescorer else None
            ),
            "chunking": chunking,
            "faiss": faiss_meta(kind, len(chunk_vectors)),
            "search": search,
            "counts": {
                "articles": len(items),
                "chunks": len(chunk_vectors),
                "sentences": len(vectors[SENTENCES_NPY]),
                "words": len(vocabulary.words),
            },
            "files": {name: (tmp / name).stat().st_size for name in files},
            "digests": integrity.digests(tmp, files),
        }
        (tmp / META).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        _fsync_folder(tmp)
        os.rename(tmp, final)
        _publish(index_dir, final)
    except BaseException:
        if current_build_id(index_dir) != build_id:
            # The build never went live: free everything it wrote.
            drop_search(search)
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            (index_dir / f".current-{build_id}").unlink(missing_ok=True)
        raise
    _prune(index_dir, keep=final)
    return final


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


def _build_bytes(vectors: dict[str, np.ndarray], items: Sequence[IndexedArticle], kind: str) -> int:
    """A generous estimate of the bytes a build will write."""
    chunks = vectors[CHUNKS_NPY]
    index = chunks.nbytes if kind == "flat" else len(chunks) * (chunks.shape[1] + 8)
    text = sum(
        len(i.article.text) + sum(map(len, i.sentence_terms)) + sum(map(len, i.chunk_terms))
        for i in items
    )
    return (
        sum(v.nbytes for v in vectors.values()) + index + SQLITE_PER_TEXT_CHAR * text + SPACE_MARGIN
    )


def _check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DiskFull(
            f"{folder}: the build needs about {_mb(needed)} and the disk has {_mb(free)} free; "
            "nothing was written. Free some space there, or build into an --index folder "
            "on a larger disk."
        )


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e6:.1f} MB"


def _save_npy(path: Path, array: np.ndarray) -> None:
    """What np.save writes, written by Python's own file writes: on a full disk
    numpy's `tofile` raises an OSError without its errno, these raise ENOSPC."""
    array = np.ascontiguousarray(array)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
        f.write(array.reshape(-1).data.cast("B"))


def _stack(arrays: list[np.ndarray], dim: int) -> np.ndarray:
    if not arrays:
        return np.zeros((0, dim), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(arrays), dtype=np.float32)


def _write_sqlite(path: Path, items: Sequence[IndexedArticle], vocabulary: Vocabulary) -> None:
    try:
        _fill_sqlite(path, items, vocabulary)
    except sqlite3.OperationalError as exc:
        # SQLite reports a full disk or a refused write in its own words: make it
        # the operating system's error, which `build_lock` turns into a message.
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
            raise OSError(errno.EACCES, str(exc), str(path)) from exc
        raise


def _fill_sqlite(path: Path, items: Sequence[IndexedArticle], vocabulary: Vocabulary) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        # A temporary file, fsynced with its folder before it is published:
        # no journal and no sync per statement.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.executescript("BEGIN;\n" + SCHEMA)  # one transaction for the whole build
        db.executemany(
            "INSERT INTO vocab VALUES (?, ?, ?)",
            (
                (w, i, df)
                for i, (w, df) in enumerate(zip(vocabulary.words, vocabulary.df, strict=True))
            ),
        )
        row_of = {w: i for i, w in enumerate(vocabulary.words)}
        chunk_row = sentence_row = 0
        for item in items:
            a = item.article
            db.execute(
                "INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    a.id,
                    a.title,
                    a.text,
                    a.lang,
                    a.url,
                    a.date,
                    a.origin,
                    a.credit,
                    a.source,
                    a.author,
                ),
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
                word_rows = " ".join(
                    str(row_of[w]) for w in item.sentence_words[idx] if w in row_of
                )
                db.execute("INSERT INTO sentence_words VALUES (?, ?)", (sentence_row, word_rows))
                sentence_row += 1
            for c, terms in zip(item.chunks, item.chunk_terms, strict=True):
                db.execute(
                    "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        chunk_row,
                        c.chunk_id,
                        a.id,
                        c.start,
                        c.end,
                        c.first_sentence,
                        c.last_sentence,
                    ),
                )
                db.execute("INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)", (chunk_row, terms))
                chunk_row += 1
        db.execute("COMMIT")
        db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        db.execute("INSERT INTO sentences_fts(sentences_fts) VALUES ('optimize')")
    finally:
        db.close()


def _fsync_folder(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(index_dir: Path, build: Path) -> None:
    link = index_dir / f".current-{build.name}"
    link.symlink_to(Path("builds") / build.name)
    os.replace(link, index_dir / "current")  # atomic on POSIX
    _fsync_folder_entry(index_dir)


def _fsync_folder_entry(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_leftovers(index_dir: Path) -> None:
    """Remove what killed builds left: their `builds/.tmp-*` folders and
    `.current-*` links. Only a writer holding `build_lock` may call this: then
    no other build is under way, so every one of them is stale."""
    for tmp in (index_dir / "builds").glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in index_dir.glob(".current-*"):
        stale.unlink(missing_ok=True)


def _prune(index_dir: Path, keep: Path, keep_previous: int = 1) -> None:
    """Remove all but the newest old builds.

    One previous build is kept so that a server still answering from it while
    it notices the swap never sees its files vanish.
    """
    builds = index_dir / "builds"
    old = sorted((p for p in builds.iterdir() if p.is_dir() and p != keep), key=lambda p: p.name)
    for p in old[: max(0, len(old) - keep_previous)]:
        with contextlib.suppress(OSError, ValueError, KeyError):
            drop_search(json.loads((p / META).read_text()).get("search") or {})
        shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index folder (readers never wait).

    Holding it, the writer first removes what killed builds left behind. An
    error of the operating system inside (a full disk, a refused write) leaves
    as a named IndexProblem with a one-line message.
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        with open(index_dir / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                _remove_leftovers(index_dir)
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    except OSError as exc:
        raise _write_error(exc, index_dir) from exc


def _write_error(exc: OSError, index_dir: Path) -> IndexProblem:
    """The named error for an OSError met while building `index_dir`."""
    where = exc.filename or index_dir
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"{where}: no space left on the disk; the build was abandoned and what it "
            "wrote removed, the previous index is unchanged. Free some space there, or "
            "build into an --index folder on a larger disk."
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return IndexUnwritable(
            f"{where}: {exc.strerror or exc}; the previous index is unchanged. Give this "
            "user write access to the index folder, or build into another --index folder."
        )
    return IndexUnwritable(
        f"{where}: {exc.strerror or exc} while building; the previous index is unchanged. "
        "Check the disk, then build again."
    )


# ---------------------------------------------------------------- reading


def resolve_build(index_dir: Path) -> Path:
    """The build folder an index folder points at (or the folder itself)."""
    current = index_dir / "current"
    if current.exists():
        return current.resolve()
    if (index_dir / META).exists():
        return index_dir
    raise IndexMissing(
        f"No index in {index_dir}/: build one with "
        f"`python scripts/build_index.py --corpus corpus --index {index_dir}`."
    )


def current_build_id(index_dir: Path) -> str | None:
    """Cheap check for a newer build: the name `current` points at."""
    try:
        return os.readlink(index_dir / "current").rsplit("/", 1)[-1]
    except OSError:
        return None


class IndexReader:
    """A loaded, checked build. Thread-safe for reading.

    Opening it checks that the files agree with meta.json and each other and,
    unless `verify` is false (a caller that only reads meta.json), that they
    are sound: digests, finite vectors, SQLite's structure (`_verify`).
    """

    def __init__(self, index_dir: Path | str, verify: bool = True) -> None:
        self.index_dir = Path(index_dir)
        self.path = resolve_build(self.index_dir)
        self.meta = _read_meta(self.path)
        if verify:
            _verify_digests(self.path, self.meta)
        self.build_id: str = self.meta["build_id"]
        self.dim: int = int(self.meta["encoder"]["dim"])
        self.rescorer: dict[str, Any] | None = self.meta.get("rescorer")
        # The second sentence encoder's name, as qa.settings `rescore_model` says it.
        self.rescorer_name: str = self.rescorer["name"] if self.rescorer else "none"
        self.chunk_index = _read_faiss(self.path / CHUNKS_FAISS)
        set_search_params(self.chunk_index, self.meta.get("faiss") or {})
        self.chunk_vectors = _read_npy(self.path / CHUNKS_NPY)
        self.sentence_vectors = _read_npy(self.path / SENTENCES_NPY)
        self.word_vectors = _read_npy(self.path / WORDS_NPY)
        self.rescore_vectors = _read_npy(self.path / RESCORE_NPY) if self.rescorer else None
        self._local = threading.local()
        self._check()
        if verify:
            self._verify()
        self.search: ChunkSearch = open_search(
            self.meta.get("search") or {"kind": "faiss"}, self.chunk_index, lambda: self.db
        )

    # -- consistency

    def _check(self) -> None:
        counts = self.meta["counts"]
        where = self.path
        if self.chunk_index.d != self.dim or self.chunk_index.ntotal != counts["chunks"]:
            raise IndexMismatch(
                f"{where / CHUNKS_FAISS}: holds {self.chunk_index.ntotal} vectors of dimension "
                f"{self.chunk_index.d}, meta.json says {counts['chunks']} of {self.dim}. "
                "Rebuild the index."
            )
        if self.chunk_vectors.shape != (counts["chunks"], self.dim):
            raise IndexMismatch(
                f"{where / CHUNKS_NPY}: shape {self.chunk_vectors.shape}, meta.json says "
                f"({counts['chunks']}, {self.dim}). Rebuild the index."
            )
        legacy = self.meta.get("sentence_encoder")
        if legacy and legacy["name"] != self.meta["encoder"]["name"]:
            raise IndexMismatch(
                f"{where / META}: sentence vectors by {legacy['name']!r} in place of the "
                "encoder's, a layout this version no longer reads. Rebuild the index."
            )
        if self.sentence_vectors.shape != (counts["sentences"], self.dim):
            raise IndexMismatch(
                f"{where / SENTENCES_NPY}: shape {self.sentence_vectors.shape}, meta.json says "
                f"({counts['sentences']}, {self.dim}). Rebuild the index."
            )
        if self.rescorer is not None and self.rescore_vectors is not None:
            shape = (counts["sentences"], int(self.rescorer["dim"]))
            if self.rescore_vectors.shape != shape:
                raise IndexMismatch(
                    f"{where / RESCORE_NPY}: shape {self.rescore_vectors.shape}, meta.json "
                    f"says {shape}. Rebuild the index."
                )
        if self.word_vectors.shape != (counts["words"], self.dim):
            raise IndexMismatch(
                f"{where / WORDS_NPY}: shape {self.word_vectors.shape}, meta.json says "
                f"({counts['words']}, {self.dim}). Rebuild the index."
            )
        try:
            found = {
                table: self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("articles", "chunks", "sentences")
            }
        except sqlite3.DatabaseError as exc:
            raise IndexMismatch(
                f"{where / SQLITE}: unreadable ({exc}). Rebuild the index."
            ) from exc
        for table, n in found.items():
            if n != counts[table]:
                raise IndexMismatch(
                    f"{where / SQLITE}: {n} {table}, meta.json says {counts[table]}. "
                    "Rebuild the index."
                )

    def _verify(self) -> None:
        """Every vector finite (a NaN would make every score it touches NaN) and
        SQLite's pages whole (a damaged page fails the requests that read it)."""
        for name in (CHUNKS_NPY, SENTENCES_NPY, WORDS_NPY, RESCORE_NPY):
            if name in self.meta["files"]:
                integrity.check_vector_file(self.path / name)
        integrity.check_sqlite(self.path / SQLITE, self.db)

    def check_encoder(self, name: str, dim: int) -> None:
        built = self.meta["encoder"]
        if built["name"] != name or int(built["dim"]) != dim:
            raise EncoderMismatch(
                f"{self.path / META}: index built with encoder {built['name']!r} "
                f"({built['dim']} dimensions), but asked to query it with {name!r} ({dim}). "
                f"Query with --model {built['name']!r} or rebuild the index with {name!r}."
            )

    def check_rescorer(self, name: str | None, dim: int | None) -> None:
        """The second sentence encoder must be the one the index was built with."""
        built = (self.rescorer["name"], int(self.rescorer["dim"])) if self.rescorer else None
        asked = (name, dim) if name else None
        if built != asked:
            raise EncoderMismatch(
                f"{self.path / META}: second sentence vectors by {_named(built)}, but asked "
                f"to score them with {_named(asked)}. Restart to follow the index, or rebuild it."
            )

    # -- SQLite, one connection per thread

    @property
    def db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "db", None)
        if conn is None:
            uri = f"file:{self.path / SQLITE}?mode=ro&immutable=1"
            try:
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            except sqlite3.Error as exc:
                raise IndexMismatch(f"{self.path / SQLITE}: cannot open ({exc}).") from exc
            self._local.db = conn
        return conn

    def close(self) -> None:
        getattr(self.search, "close", lambda: None)()
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.close()
            self._local.db = None

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.meta["counts"])

    # -- search

    def search_chunks(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk row, cosine) for the k nearest chunks, best first."""
        return self.search.dense(vector, k)

    def lexical_chunks(self, terms: Iterable[str], k: int) -> list[tuple[int, float]]:
        """(chunk row, BM25) for the k chunks best matching any of `terms`."""
        return self.search.lexical(list(terms), k)

    def rescore_sentences(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(sentence row, cosine) of the k sentences nearest to `vector` by the
        second encoder, best first; none when the index has no second encoder.
        Exhaustive, in blocks: exact, but ~10 ms per 100k sentences on one core,
        so past about 100k sentences it wants an ANN index (docs/scaling.md)."""
        if self.rescore_vectors is None or k <= 0:
            return []
        n = len(self.rescore_vectors)
        best_rows: list[np.ndarray] = []
        best_scores: list[np.ndarray] = []
        for at in range(0, n, RESCORE_BLOCK):
            block = np.asarray(self.rescore_vectors[at : at + RESCORE_BLOCK], dtype=np.float32)
            scores = block @ vector
            top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
            best_rows.append(top + at)
            best_scores.append(scores[top])
        if not best_rows:
            return []
        rows, scores = np.concatenate(best_rows), np.concatenate(best_scores)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(rows[i]), float(scores[i])) for i in order]

    @functools.cached_property
    def rescore_centroid(self) -> np.ndarray | None:
        """The mean of the second encoder's sentence vectors: a question's
        inner product with it is its mean cosine with the index's sentences.
        Read once per build (~1 s per million sentences)."""
        if self.rescore_vectors is None or not len(self.rescore_vectors):
            return None
        total = np.zeros(self.rescore_vectors.shape[1], dtype=np.float64)
        for at in range(0, len(self.rescore_vectors), RESCORE_BLOCK):
            total += np.asarray(self.rescore_vectors[at : at + RESCORE_BLOCK]).sum(axis=0)
        return (total / len(self.rescore_vectors)).astype(np.float32)

    def chunks_holding(self, sentence_rows: Sequence[int]) -> list[int]:
        """Rows of the chunks that hold any of `sentence_rows`."""
        found = self._by_rows(
            "SELECT DISTINCT c.row FROM sentences s JOIN chunks c ON c.article_id = s.article_id "
            "AND s.idx BETWEEN c.first_sentence AND c.last_sentence WHERE s.row IN ({})",
            sentence_rows,
        )
        return sorted(int(r[0]) for r in found)

    def lexical_sentences(self, terms: Iterable[str], k: int) -> list[tuple[int, float]]:
        return fts_search(self.db, "sentences_fts", list(terms), k)

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """In how many sentences each term occurs."""
        unique = list(dict.fromkeys(terms))
        if not unique:
            return {}
        marks = ",".join("?" * len(unique))
        rows = self.db.execute(
            f"SELECT term, doc FROM sentences_vocab WHERE term IN ({marks})", unique
        ).fetchall()
        found = {t: int(d) for t, d in rows}
        return {t: found.get(t, 0) for t in unique}

    # -- records

    def chunks(self, rows: Sequence[int]) -> dict[int, ChunkRow]:
        return {
            r[0]: ChunkRow(*r)
            for r in self._by_rows(
                'SELECT row, chunk_id, article_id, start, "end", first_sentence, last_sentence '
                "FROM chunks WHERE row IN ({})",
                rows,
            )
        }

    def chunk_rows_of(self, article_ids: Iterable[str]) -> list[int]:
        """Rows of every chunk of these articles, in row order."""
        unique = list(dict.fromkeys(article_ids))
        found: list[int] = []
        for i in range(0, len(unique), 500):  # SQLite caps bound parameters
            part = unique[i : i + 500]
            found += [
                int(r[0])
                for r in self.db.execute(
                    f"SELECT row FROM chunks WHERE article_id IN ({','.join('?' * len(part))})",
                    part,
                )
            ]
        return sorted(found)

    def sentences_of(self, article_id: str, first: int, last: int) -> list[SentenceRow]:
        rows = self.db.execute(
            'SELECT row, article_id, idx, start, "end", heading FROM sentences '
            "WHERE article_id = ? AND idx BETWEEN ? AND ? ORDER BY idx",
            (article_id, first, last),
        ).fetchall()
        return [SentenceRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def sentence_windows(self, windows: Sequence[tuple[str, int, int]]) -> list[list[SentenceRow]]:
        """The sentences of each (article_id, first idx, last idx) window, in one query."""
        if not windows:
            return []
        where = " OR ".join(["(article_id = ? AND idx BETWEEN ? AND ?)"] * len(windows))
        rows = self.db.execute(
            f'SELECT row, article_id, idx, start, "end", heading FROM sentences WHERE {where}',
            [v for w in windows for v in w],
        ).fetchall()
        by_key = {(r[1], r[2]): SentenceRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}
        return [
            [by_key[(a, i)] for i in range(first, last + 1) if (a, i) in by_key]
            for a, first, last in windows
        ]

    def sentences(self, rows: Sequence[int]) -> dict[int, SentenceRow]:
        return {
            r[0]: SentenceRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
            for r in self._by_rows(
                'SELECT row, article_id, idx, start, "end", heading FROM sentences '
                "WHERE row IN ({})",
                rows,
            )
        }

    def _by_rows(self, sql: str, rows: Sequence[int]) -> list[tuple[Any, ...]]:
        unique = list(dict.fromkeys(int(r) for r in rows))
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(unique), 500):  # SQLite caps bound parameters
            part = unique[i : i + 500]
            out += self.db.execute(sql.format(",".join("?" * len(part))), part).fetchall()
        return out

    def article(self, article_id: str) -> Article | None:
        row = self.db.execute(
            f"SELECT {self._article_columns} FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        return Article(*row) if row else None

    def chunk_terms(self, rows: Sequence[int]) -> dict[int, set[str]]:
        """Lexical terms of each chunk row."""
        found = self._by_rows("SELECT rowid, terms FROM chunks_fts WHERE rowid IN ({})", rows)
        return {int(r): set(t.split()) for r, t in found}

    def sentence_terms(self, rows: Sequence[int]) -> dict[int, list[str]]:
        """Lexical terms of each sentence row, in order."""
        found = self._by_rows("SELECT rowid, terms FROM sentences_fts WHERE rowid IN ({})", rows)
        return {int(r): t.split() for r, t in found}

    def sentence_word_rows(self, rows: Sequence[int]) -> dict[int, list[int]]:
        """Vocabulary rows (of `word_vectors`) of each sentence's content words."""
        found = self._by_rows("SELECT row, words FROM sentence_words WHERE row IN ({})", rows)
        return {int(r): [int(w) for w in words.split()] for r, words in found}

    def words(self, words: Iterable[str]) -> dict[str, tuple[int, int]]:
        """(vector row, sentence count) of each word the vocabulary holds."""
        unique = list(dict.fromkeys(words))
        found: dict[str, tuple[int, int]] = {}
        # SQLite caps the number of bound parameters: look words up in slices.
        for i in range(0, len(unique), 500):
            part = unique[i : i + 500]
            rows = self.db.execute(
                f"SELECT word, row, df FROM vocab WHERE word IN ({','.join('?' * len(part))})", part
            )
            found.update({w: (int(r), int(df)) for w, r, df in rows})
        return found

    def vocabulary(self) -> Vocabulary:
        rows = self.db.execute("SELECT word, row, df FROM vocab ORDER BY row").fetchall()
        return Vocabulary(
            [r[0] for r in rows],
            np.asarray(self.word_vectors, dtype=np.float32),
            [r[2] for r in rows],
        )

    def articles(self, ids: Iterable[str]) -> dict[str, Article]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return {}
        rows = self.db.execute(
            f"SELECT {self._article_columns} FROM articles "
            f"WHERE id IN ({','.join('?' * len(unique))})",
            unique,
        ).fetchall()
        return {r[0]: Article(*r) for r in rows}

    def article_keys(self) -> list[tuple[str, str | None, str | None]]:
        """(id, origin, url) of every article: what a new article may replace."""
        columns = self._article_columns.split(", ")
        picked = ", ".join(columns[ARTICLE_FIELDS.index(n)] for n in ("id", "origin", "url"))
        return [tuple(r) for r in self.db.execute(f"SELECT {picked} FROM articles")]

    def article_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM articles ORDER BY rowid")]

    def list_articles(self) -> list[dict[str, Any]]:
        names = ("id", "title", "url", "lang", "date", "source", "author")
        columns = self._article_columns.split(", ")
        picked = ", ".join(columns[ARTICLE_FIELDS.index(n)] for n in names)
        rows = self.db.execute(f"SELECT {picked} FROM articles ORDER BY rowid")
        return [dict(zip(names, r, strict=True)) for r in rows]

    @functools.cached_property
    def _article_columns(self) -> str:
        """The SELECT list for `Article(*row)`. Builds made before articles had
        an outlet and an author named their file `source`: read as the origin."""
        have = {r[1] for r in self.db.execute("PRAGMA table_info(articles)")}
        if "origin" in have:
            return ", ".join(ARTICLE_FIELDS)
        old = {"origin": "source", "source": "NULL", "author": "NULL"}
        return ", ".join(old.get(name, name) for name in ARTICLE_FIELDS)

    def article_sentences(self, article_id: str) -> list[SentenceRow]:
        return self.sentences_of(article_id, 0, 1 << 30)

    def indexed_article(self, article_id: str) -> IndexedArticle:
        """Everything stored for one article, to carry it into a new build."""
        article = self.article(article_id)
        if article is None:
            raise KeyError(article_id)
        srows = self.article_sentences(article_id)
        crows = self.db.execute(
            'SELECT row, chunk_id, article_id, start, "end", first_sentence, last_sentence '
            "FROM chunks WHERE article_id = ? ORDER BY row",
            (article_id,),
        ).fetchall()
        sentences = [
            Sentence(s.start, s.end, article.text[s.start : s.end], s.heading) for s in srows
        ]
        chunks = [
            Chunk(article_id, r[1], r[3], r[4], article.text[r[3] : r[4]], r[5], r[6])
            for r in crows
        ]
        s_terms = self._terms("sentences_fts", [s.row for s in srows])
        c_terms = self._terms("chunks_fts", [r[0] for r in crows])
        chunk_vectors = (
            np.asarray(self.chunk_vectors[[int(r[0]) for r in crows]], dtype=np.float32)
            if crows
            else np.zeros((0, self.dim), np.float32)
        )
        rows = [s.row for s in srows]
        sentence_vectors = np.asarray(self.sentence_vectors[rows], dtype=np.float32)
        rescore_vectors = (
            None
            if self.rescore_vectors is None
            else np.asarray(self.rescore_vectors[rows], dtype=np.float32)
        )
        return IndexedArticle(
            article,
            sentences,
            chunks,
            s_terms,
            c_terms,
            [content_words(s.text, article.lang) for s in sentences],
            sentence_vectors,
            chunk_vectors,
            rescore_vectors,
        )

    def _terms(self, table: str, rows: list[int]) -> list[str]:
        found = dict(self._by_rows(f"SELECT rowid, terms FROM {table} WHERE rowid IN ({{}})", rows))
        return [found[r] for r in rows]


def _named(encoder: tuple[str, int | None] | None) -> str:
    return f"{encoder[0]!r} ({encoder[1]} dimensions)" if encoder else "no encoder"


def _read_meta(build: Path) -> dict[str, Any]:
    path = build / META
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise IndexMismatch(f"{path}: missing. Rebuild the index.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexMismatch(f"{path}: not valid JSON ({exc}). Rebuild the index.") from exc
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"{path}: format {meta.get('format_version') if isinstance(meta, dict) else '?'}, "
            f"this version reads format {FORMAT_VERSION}. Rebuild the index."
        )
    for key in ("build_id", "encoder", "counts", "chunking", "files"):
        if key not in meta:
            raise IndexMismatch(f"{path}: no {key!r} entry. Rebuild the index.")
    for name, size in meta["files"].items():
        file = build / name
        if not file.exists():
            raise IndexMismatch(f"{file}: missing. Rebuild the index.")
        if file.stat().st_size != size:
            raise IndexMismatch(
                f"{file}: {file.stat().st_size} bytes, meta.json says {size} "
                "(truncated or replaced). Rebuild the index."
            )
    return meta


_unverified: set[Path] = set()  # builds already warned about, once per process


def _verify_digests(build: Path, meta: dict[str, Any]) -> None:
    """Files against meta.json's digests. A build of an earlier version has
    none: it is still served (its other checks pass or it is refused), with a
    warning that a rebuild would add them."""
    if integrity.verify_digests(build, meta) or build in _unverified:
        return
    _unverified.add(build)
    log.warning(
        "%s: no file digests (built by an earlier version), so a file damaged since "
        "the build may go unnoticed; rebuild the index to add them",
        build / META,
    )


def _read_faiss(path: Path) -> faiss.Index:
    try:
        # Memory-mapped: several server processes share one copy in the page cache.
        # IO_FLAG_MMAP_IFC maps flat, HNSW and IVF files alike (FAISS >= 1.11).
        flags = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
        return faiss.read_index(str(path), flags)
    except RuntimeError as exc:
        raise IndexMismatch(f"{path}: not a readable FAISS index. Rebuild the index.") from exc


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IndexMismatch(
            f"{path}: not a readable vector file ({exc}). Rebuild the index."
        ) from exc
