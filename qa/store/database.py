"""The build's SQLite database, read-only: the rows of its articles, chunks,
sentences and vocabulary, and their full-text terms. `IndexReader`
(qa/store/reader.py) is one, with the build's vectors and chunk search."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import IndexMismatch
from ..records import Article
from .layout import ARTICLE_FIELDS, SQLITE, ChunkRow, SentenceRow
from .search import Hits, fts_search

ARTICLES_KEPT = 512  # articles `articles` keeps: a news article is ~5-20 kB of text


class BuildDatabase:
    """The store.sqlite of the build at `path`: one connection per thread,
    opened on first use. Thread-safe for reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._articles: dict[str, Article] = {}  # recently read, see `articles`

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
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.close()
            self._local.db = None

    # -- search

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

    def _terms(self, table: str, rows: list[int]) -> list[str]:
        found = dict(self._by_rows(f"SELECT rowid, terms FROM {table} WHERE rowid IN ({{}})", rows))
        return [found[r] for r in rows]
