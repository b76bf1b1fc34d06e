"""The consistency check a build passes when it is opened: vector files and
SQLite agree with meta.json and with each other."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ..errors import IndexMismatch
from .layout import (
    CHUNKS_NPY,
    META,
    RESCORE_NPY,
    RESCORE_TOKENS_NPY,
    SENTENCES_NPY,
    SQLITE,
    WORDS_NPY,
)

if TYPE_CHECKING:
    from .reader import IndexReader


def check_shapes(reader: IndexReader) -> None:
    """Every vector file holds a row per row of the build (deleted ones
    too) at the dimension meta.json names, and SQLite the live counts: a
    file from another build fails here, by name, rather than in a query."""
    counts = reader.meta["counts"]
    rows = reader.rows  # vector files hold deleted rows too, SQLite only live ones
    where = reader.path
    if reader.chunk_vectors.shape != (rows["chunks"], reader.dim):
        raise IndexMismatch(
            f"{where / CHUNKS_NPY}: shape {reader.chunk_vectors.shape}, meta.json says "
            f"({rows['chunks']}, {reader.dim}). Rebuild the index."
        )
    legacy = reader.meta.get("sentence_encoder")
    if legacy and legacy["name"] != reader.meta["encoder"]["name"]:
        raise IndexMismatch(
            f"{where / META}: sentence vectors by {legacy['name']!r} in place of the "
            "encoder's, a layout this version no longer reads. Rebuild the index."
        )
    if reader.sentence_vectors.shape != (rows["sentences"], reader.dim):
        raise IndexMismatch(
            f"{where / SENTENCES_NPY}: shape {reader.sentence_vectors.shape}, meta.json says "
            f"({rows['sentences']}, {reader.dim}). Rebuild the index."
        )
    if reader.rescorer is not None and reader.rescore_vectors is not None:
        shape = (rows["sentences"], int(reader.rescorer["dim"]))
        if reader.rescore_vectors.shape != shape:
            raise IndexMismatch(
                f"{where / RESCORE_NPY}: shape {reader.rescore_vectors.shape}, meta.json "
                f"says {shape}. Rebuild the index."
            )
    if reader.rescorer is not None and reader.rescore_tokens is not None:
        shape = (rows["sentences"], int(reader.rescorer["tokens"]) * int(reader.rescorer["dim"]))
        if reader.rescore_tokens.shape != shape:
            raise IndexMismatch(
                f"{where / RESCORE_TOKENS_NPY}: shape {reader.rescore_tokens.shape}, meta.json "
                f"says {shape}. Rebuild the index."
            )
    if reader.word_vectors.shape != (rows["words"], reader.dim):
        raise IndexMismatch(
            f"{where / WORDS_NPY}: shape {reader.word_vectors.shape}, meta.json says "
            f"({rows['words']}, {reader.dim}). Rebuild the index."
        )
    try:
        found = {
            table: reader.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("articles", "chunks", "sentences")
        }
    except sqlite3.DatabaseError as exc:
        raise IndexMismatch(f"{where / SQLITE}: unreadable ({exc}). Rebuild the index.") from exc
    for table, n in found.items():
        if n != counts[table]:
            raise IndexMismatch(
                f"{where / SQLITE}: {n} {table}, meta.json says {counts[table]}. Rebuild the index."
            )
