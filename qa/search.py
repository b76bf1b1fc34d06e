"""Chunk search: the part of an index that grows with the corpus, behind one
small interface so that it can live in-process (FAISS + SQLite FTS5, the
default) or in a Milvus cluster (`qa.milvus`) without the rest changing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import faiss
import numpy as np

Hits = list[tuple[int, float]]  # (chunk row, score), best first


class ChunkSearch(Protocol):
    """Dense and lexical search over the chunks of one build."""

    kind: str

    def dense(self, vector: np.ndarray, k: int) -> Hits:
        """The k chunks nearest to a unit `vector` (dim,), scores are cosines."""
        ...

    def lexical(self, terms: Sequence[str], k: int) -> Hits:
        """The k chunks that best match any of `terms` (BM25, higher is better)."""
        ...


class SearchBackend(Protocol):
    """Where a build's chunks are searched, on the writing side."""

    kind: str

    def publish(self, build_id: str, vectors: np.ndarray, terms: list[str]) -> dict[str, Any]:
        """Make the chunks of a build searchable (row i = vectors[i], terms[i],
        space-joined); returns what `open_search` needs, stored in meta.json."""
        ...


class FaissBackend:
    """The default: FAISS and FTS5 files inside the build folder, written there
    by `qa.store.write_build`, so there is nothing more to publish."""

    kind = "faiss"

    def publish(self, build_id: str, vectors: np.ndarray, terms: list[str]) -> dict[str, Any]:
        return {"kind": self.kind}


def backend_for(kind: str, uri: str = "") -> SearchBackend:
    """The backend called `kind` ('faiss' or 'milvus')."""
    if kind == "faiss":
        return FaissBackend()
    if kind == "milvus":
        from .milvus import MilvusBackend

        return MilvusBackend(uri)
    raise ValueError(f"unknown store {kind!r}: use 'faiss' or 'milvus'")


def backend_from_meta(meta: dict[str, Any]) -> SearchBackend:
    """The backend an existing build was published with, for its next build."""
    return backend_for(meta.get("kind", "faiss"), meta.get("uri", ""))


def open_search(
    meta: dict[str, Any], index: faiss.Index, db: Callable[[], sqlite3.Connection]
) -> ChunkSearch:
    """The search a build's meta.json describes."""
    if meta.get("kind", "faiss") == "faiss":
        return FaissFtsSearch(index, db)
    if meta["kind"] == "milvus":
        from .milvus import MilvusSearch

        return MilvusSearch.open(meta)
    raise ValueError(f"unknown search kind {meta['kind']!r} in meta.json")


def drop_search(meta: dict[str, Any]) -> None:
    """Free what a pruned build held outside its folder."""
    if meta.get("kind") == "milvus":
        from .milvus import drop

        drop(meta)


class FaissFtsSearch:
    """FAISS for vectors, SQLite FTS5 for terms; both files of the build folder."""

    kind = "faiss"

    def __init__(self, index: faiss.Index, db: Callable[[], sqlite3.Connection]) -> None:
        self.index = index
        self._db = db  # the reader's per-thread connection

    def dense(self, vector: np.ndarray, k: int) -> Hits:
        if k <= 0 or self.index.ntotal == 0:
            return []
        scores, rows = self.index.search(vector.reshape(1, -1).astype(np.float32), k)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def lexical(self, terms: Sequence[str], k: int) -> Hits:
        return fts_search(self._db(), "chunks_fts", terms, k)


def fts_search(db: sqlite3.Connection, table: str, terms: Sequence[str], k: int) -> Hits:
    """BM25 over an FTS5 table of space-joined terms; any term may match.

    FTS5's bm25() is lower for better matches, so scores are negated.
    """
    query = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms) if t)
    if not query or k <= 0:
        return []
    rows = db.execute(
        f"SELECT rowid, -bm25({table}) FROM {table} WHERE {table} MATCH ? "
        f"ORDER BY bm25({table}) LIMIT ?",
        (query, k),
    ).fetchall()
    return [(int(r), float(s)) for r, s in rows]
