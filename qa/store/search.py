"""Chunk search: the part of an index that grows with the corpus, behind one
small interface so that it can live in-process (FAISS + SQLite FTS5, the
default) or in a Milvus cluster without the rest changing.

A backend is one module of this package holding one class that implements
`SearchBackend`; `BACKENDS` names it. Adding a backend means adding its module
and its line there.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np


class Hit(NamedTuple):
    """One search result. A named tuple, so `row, score = hit` still reads it."""

    row: int  # chunk (or sentence) row of the build
    score: float  # higher is better: a cosine for dense search, BM25 for lexical


Hits = list[Hit]  # best first

Connect = Callable[[], sqlite3.Connection]  # the reader's per-thread connection


class ChunkSearch(Protocol):
    """Dense and lexical search over the chunks of one build (reader side)."""

    kind: str

    def dense(self, vector: np.ndarray, k: int) -> Hits:
        """The k chunks nearest to a unit `vector` (dim,), scores are cosines."""
        ...

    def lexical(self, terms: Sequence[str], k: int) -> Hits:
        """The k chunks that best match any of `terms` (BM25, higher is better)."""
        ...

    def close(self) -> None: ...


class SearchBackend(Protocol):
    """Where a build's chunks are searched.

    The writer makes one with the backend's settings (`backend_for`) and
    calls `publish`; a reader calls the class's `open` with meta.json, and a
    pruned build's search is freed with `drop`.
    """

    kind: str

    def publish(
        self, folder: Path, build_id: str, vectors: np.ndarray, terms: list[str]
    ) -> dict[str, Any]:
        """Make the chunks of a build searchable (row i = vectors[i], terms[i],
        space-joined): files written into `folder`, the build being written,
        are published with it. Returns entries for meta.json: "search" (what
        `open` needs) and any of the backend's own."""
        ...

    def disk_bytes(self, n_vectors: int, dim: int) -> int:
        """About how many bytes `publish` writes into the build folder."""
        ...

    @staticmethod
    def open(meta: dict[str, Any], folder: Path, db: Connect) -> ChunkSearch:
        """The search of the build in `folder`, described by its meta.json."""
        ...

    @staticmethod
    def drop(search: dict[str, Any]) -> None:
        """Free what a pruned build's search held outside its folder (never raises)."""
        ...


# Backend name -> "module:class", imported when first asked for (pymilvus is
# an optional dependency: a FAISS deployment never imports it).
BACKENDS = {
    "faiss": "qa.store.faiss_backend:FaissBackend",
    "milvus": "qa.store.milvus_backend:MilvusBackend",
}


def backend_class(kind: str) -> type[SearchBackend]:
    try:
        where = BACKENDS[kind]
    except KeyError:
        names = " or ".join(map(repr, BACKENDS))
        raise ValueError(f"unknown store {kind!r}: use {names}") from None
    module, name = where.split(":")
    cls: type[SearchBackend] = getattr(importlib.import_module(module), name)
    return cls


def backend_for(kind: str, uri: str = "") -> SearchBackend:
    """The backend called `kind` ('faiss' or 'milvus'), for writing."""
    return backend_class(kind)(uri)  # type: ignore[call-arg]


def backend_from_meta(search: dict[str, Any]) -> SearchBackend:
    """The backend an existing build was published with (its meta.json
    "search" entry), for its next build. A backend class whose builds continue
    the previous one's search (Milvus: one collection changed in place) says
    so with a `following(search)` constructor."""
    cls = backend_class(search.get("kind", "faiss"))
    following = getattr(cls, "following", None)
    if following is not None:
        backend: SearchBackend = following(search)
        return backend
    return backend_for(search.get("kind", "faiss"), search.get("uri", ""))


def open_search(meta: dict[str, Any], folder: Path, db: Connect) -> ChunkSearch:
    """The search a build's meta.json describes."""
    return backend_class((meta.get("search") or {}).get("kind", "faiss")).open(meta, folder, db)


def drop_search(search: dict[str, Any]) -> None:
    """Free what a pruned build (its meta.json "search" entry) held outside its folder."""
    kind = search.get("kind", "faiss")
    if kind in BACKENDS:
        backend_class(kind).drop(search)


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
    return [Hit(int(r), float(s)) for r, s in rows]
