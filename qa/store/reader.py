"""Reading a build: `IndexReader` opens the build `current` points at, checks
its files against meta.json and each other, and answers the queries the
pipeline makes (search through the build's backend, rows from SQLite, vectors
from memory-mapped numpy files)."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import integrity
from ..errors import EncoderMismatch, IndexMismatch
from ..lexical import content_words
from ..records import Article, Chunk, Sentence
from .files import check_vectors_once, read_meta, read_npy, verify_digests
from .layout import (
    ARTICLE_FIELDS,
    CHUNKS_NPY,
    META,
    RESCORE_NPY,
    RESCORE_TOKENS_NPY,
    SENTENCES_NPY,
    SQLITE,
    WORDS_NPY,
    ChunkRow,
    IndexedArticle,
    SentenceRow,
    Vocabulary,
)
from .publish import resolve_build
from .search import ChunkSearch, Hit, Hits, fts_search, open_search
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
ARTICLES_KEPT = 512  # articles `articles` keeps: a news article is ~5-20 kB of text


class IndexReader:
    """A loaded, checked build. Thread-safe for reading.

    Opening it checks that the files agree with meta.json and each other and,
    unless `verify` is false (a caller that only reads meta.json), that they
    are sound: digests, finite vectors, SQLite's structure (`verify`).
    """

    def __init__(self, index_dir: Path | str, verify: bool = True) -> None:
        self.index_dir = Path(index_dir)
        self.path = resolve_build(self.index_dir)
        self.meta = read_meta(self.path)
        if verify:
            verify_digests(self.path, self.meta)
        self.build_id: str = self.meta["build_id"]
        self.dim: int = int(self.meta["encoder"]["dim"])
        self.rescorer: dict[str, Any] | None = self.meta.get("rescorer")
        # The second sentence encoder's name, as qa.settings `rescore_model` says it.
        self.rescorer_name: str = self.rescorer["name"] if self.rescorer else "none"
        self._local = threading.local()
        self._articles: dict[str, Article] = {}  # recently read, see `articles`
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
        self.search.close()
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.close()
            self._local.db = None

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

    def chunks_holding(self, sentence_rows: Sequence[int]) -> list[int]:
        """Rows of the chunks that hold any of `sentence_rows`."""
        found = self._by_rows(
            "SELECT DISTINCT c.row FROM sentences s JOIN chunks c ON c.article_id = s.article_id "
            "AND s.idx BETWEEN c.first_sentence AND c.last_sentence WHERE s.row IN ({})",
            sentence_rows,
        )
        return sorted(int(r[0]) for r in found)

    def lexical_sentences(self, terms: Iterable[str], k: int) -> Hits:
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
        # (A build with segments may hold rows of words no longer in use.)
        vectors = self.word_vectors[[r[1] for r in rows]] if rows else self.word_vectors[:0]
        return Vocabulary(
            [r[0] for r in rows], np.asarray(vectors, dtype=np.float32), [r[2] for r in rows]
        )

    def articles(self, ids: Iterable[str]) -> dict[str, Article]:
        """The articles of `ids` that the build holds. A question reads the
        same few several times (retrieval, features, passages): recent ones
        are kept, a build's articles never change."""
        unique = list(dict.fromkeys(ids))
        kept = self._articles
        found = {i: a for i in unique if (a := kept.get(i)) is not None}
        missing = [i for i in unique if i not in found]
        if missing:
            rows = self.db.execute(
                f"SELECT {self._article_columns} FROM articles "
                f"WHERE id IN ({','.join('?' * len(missing))})",
                missing,
            ).fetchall()
            fresh = {r[0]: Article(*r) for r in rows}
            if len(kept) + len(fresh) > ARTICLES_KEPT:
                kept.clear()
            kept.update(fresh)
            found.update(fresh)
        return {i: found[i] for i in unique if i in found}

    def articles_keyed(self, keys: Iterable[str]) -> list[str]:
        """Ids of the articles whose origin or URL is one of `keys`."""
        unique = list(dict.fromkeys(keys))
        columns = self._article_columns.split(", ")
        origin, url = (columns[ARTICLE_FIELDS.index(n)] for n in ("origin", "url"))
        found: list[str] = []
        for i in range(0, len(unique), 250):  # SQLite caps bound parameters
            part = unique[i : i + 250]
            marks = ",".join("?" * len(part))
            found += [
                r[0]
                for r in self.db.execute(
                    f"SELECT id FROM articles WHERE {origin} IN ({marks}) OR {url} IN ({marks})",
                    part + part,
                )
            ]
        return found

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

    def _terms(self, table: str, rows: list[int]) -> list[str]:
        found = dict(self._by_rows(f"SELECT rowid, terms FROM {table} WHERE rowid IN ({{}})", rows))
        return [found[r] for r in rows]


def _named(encoder: tuple[str, int | None] | None) -> str:
    return f"{encoder[0]!r} ({encoder[1]} dimensions)" if encoder else "no encoder"
