"""Reading a build: `IndexReader` opens the build `current` points at, checks
its files against meta.json and each other, and answers the queries the
pipeline makes (search through the build's backend, rows from SQLite through
its `BuildDatabase` side, qa/store/database.py; vectors from memory-mapped
numpy files)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .. import integrity
from ..errors import EncoderMismatch
from ..lexical import content_words
from ..records import Chunk, Sentence
from .database import BuildDatabase
from .files import check_vectors_once, read_meta, read_npy, verify_digests
from .layout import (
    CHUNKS_NPY,
    META,
    RESCORE_NPY,
    RESCORE_TOKENS_NPY,
    SENTENCES_NPY,
    SQLITE,
    WORDS_NPY,
    IndexedArticle,
    Vocabulary,
)
from .publish import resolve_build
from .search import ChunkSearch, Hit, Hits, open_search
from .segments import (
    DELETED_CHUNKS,
    DELETED_SENTENCES,
    RowStack,
    read_deleted,
    row_totals,
    segments_of,
    stacked,
)
from .shapes import check_shapes

RESCORE_BLOCK = 65_536  # sentences scored at once by `rescore_sentences`


class IndexReader(BuildDatabase):
    """A loaded, checked build. Thread-safe for reading. Its rows and terms are
    read from SQLite by `BuildDatabase`'s methods.

    Opening it checks that the files agree with meta.json and each other and,
    unless `verify` is false (a caller that only reads meta.json), that they
    are sound: digests, finite vectors, SQLite's structure (`verify`).
    """

    def __init__(self, index_dir: Path | str, verify: bool = True) -> None:
        self.index_dir = Path(index_dir)
        super().__init__(resolve_build(self.index_dir))
        self.meta = read_meta(self.path)
        if verify:
            verify_digests(self.path, self.meta)
        self.build_id: str = self.meta["build_id"]
        self.dim: int = int(self.meta["encoder"]["dim"])
        self.rescorer: dict[str, Any] | None = self.meta.get("rescorer")
        # The second sentence encoder's name, as qa.settings `rescore_model` says it.
        self.rescorer_name: str = self.rescorer["name"] if self.rescorer else "none"
        self.segments = segments_of(self.meta)
        self.rows = row_totals(self.meta)  # deleted rows included
        # The chunk search first: its files are checked (and named) before the others.
        self.search: ChunkSearch = open_search(self.meta, self.path, lambda: self.db)
        try:
            self.chunk_vectors = self._vectors(CHUNKS_NPY)
            self.sentence_vectors = self._vectors(SENTENCES_NPY)
            self.word_vectors = self._vectors(WORDS_NPY)
            self.rescore_vectors = self._vectors(RESCORE_NPY) if self.rescorer else None
            # Its token states of each sentence, when the build keeps them.
            self.rescore_tokens = (
                self._vectors(RESCORE_TOKENS_NPY)
                if self.rescorer and self.rescorer.get("tokens")
                else None
            )
            # Rows of removed articles still in their segments (qa.store.segments).
            self.deleted_chunks = read_deleted(self.path, self.meta, DELETED_CHUNKS)
            self.deleted_sentences = read_deleted(self.path, self.meta, DELETED_SENTENCES)
            check_shapes(self)
            if verify:
                self.verify()
        except BaseException:
            self.close()
            raise

    def _vectors(self, name: str) -> np.ndarray | RowStack:
        """A vector file of every segment, read as one array of the build's rows."""
        return stacked([read_npy(self.path / s.dir / name) for s in self.segments])

    # -- consistency

    def verify(self) -> None:
        """Every vector finite (a NaN would make every score it touches NaN) and
        SQLite's pages whole (a damaged page fails the requests that read it)."""
        vector_files = (CHUNKS_NPY, SENTENCES_NPY, WORDS_NPY, RESCORE_NPY)
        for name in self.meta["files"]:
            if Path(name).name in vector_files:
                check_vectors_once(self.path / name)
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

    def close(self) -> None:
        self.search.close()
        super().close()

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.meta["counts"])

    # -- search

    def search_chunks(self, vector: np.ndarray, k: int) -> Hits:
        """(chunk row, cosine) for the k nearest chunks, best first."""
        return self.search.dense(vector, k)

    def lexical_chunks(self, terms: Iterable[str], k: int) -> Hits:
        """(chunk row, BM25) for the k chunks best matching any of `terms`."""
        return self.search.lexical(list(terms), k)

    def rescore_sentences(self, vector: np.ndarray, k: int) -> Hits:
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
            self._drop_deleted(scores, at)
            top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
            best_rows.append(top + at)
            best_scores.append(scores[top])
        if not best_rows:
            return []
        rows, scores = np.concatenate(best_rows), np.concatenate(best_scores)
        order = np.argsort(-scores, kind="stable")[:k]
        return [Hit(int(rows[i]), float(scores[i])) for i in order if scores[i] > -np.inf]

    def _drop_deleted(self, scores: np.ndarray, at: int) -> None:
        """Scores of sentences marked deleted in the block starting at row `at`
        set to -inf, so they never rank."""
        deleted = self.deleted_sentences
        if len(deleted):
            lo, hi = np.searchsorted(deleted, [at, at + len(scores)])
            scores[deleted[lo:hi] - at] = -np.inf

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
        if len(self.deleted_sentences):
            total -= np.asarray(self.rescore_vectors[self.deleted_sentences]).sum(axis=0)
        live = len(self.rescore_vectors) - len(self.deleted_sentences)
        return (total / max(live, 1)).astype(np.float32)

    # -- records that read vectors too

    def vocabulary(self) -> Vocabulary:
        rows = self.db.execute("SELECT word, row, df FROM vocab ORDER BY row").fetchall()
        # (A build with segments may hold rows of words no longer in use.)
        vectors = self.word_vectors[[r[1] for r in rows]] if rows else self.word_vectors[:0]
        return Vocabulary(
            [r[0] for r in rows], np.asarray(vectors, dtype=np.float32), [r[2] for r in rows]
        )

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
        rescore_tokens = None if self.rescore_tokens is None else self.rescore_tokens[rows]
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
            rescore_tokens,
        )


def _named(encoder: tuple[str, int | None] | None) -> str:
    return f"{encoder[0]!r} ({encoder[1]} dimensions)" if encoder else "no encoder"
