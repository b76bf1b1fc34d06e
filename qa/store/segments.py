"""A build as immutable segments plus deletion marks (docs/scaling.md, "Builds").

A full build is one segment, its files at the build folder's root. An add
(`qa.store.append`) makes a new build folder that hard-links every file of the
previous one and adds one segment under `segments/<build_id>/`: its vector
files and its FAISS lists. Rows are numbered across segments, a segment
starting where the previous one ended, so no row changes until a compaction
(a full build) renumbers them. A removal marks rows deleted
(`deleted_chunks.npy`, `deleted_sentences.npy`, sorted rows) instead of
rewriting the segment that holds them; searches skip marked rows.

meta.json lists the segments in row order:

    "segments": [{"dir": ".", "chunks": 100000, "sentences": 250000, "words": 80000},
                 {"dir": "segments/<build_id>", "chunks": 3000, ...}],
    "rows": {"chunks": 103000, "sentences": ..., "words": ...},   (all segments)
    "counts": {...}                                               (live rows only)

A build made before segments has no such entry: it is read as one segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import read_npy

SEGMENTS_DIR = "segments"
DELETED_CHUNKS = "deleted_chunks.npy"
DELETED_SENTENCES = "deleted_sentences.npy"
ROW_KINDS = ("chunks", "sentences", "words")


@dataclass(frozen=True)
class Segment:
    """One segment: its folder in the build and the rows it holds."""

    dir: str  # relative to the build folder; "." for the first
    chunks: int
    sentences: int
    words: int
    first_chunk: int = 0  # its first row of each kind in the build
    first_sentence: int = 0
    first_word: int = 0

    def entry(self) -> dict[str, Any]:
        """Its meta.json entry."""
        return {
            "dir": self.dir,
            "chunks": self.chunks,
            "sentences": self.sentences,
            "words": self.words,
        }


def segments_of(meta: dict[str, Any]) -> list[Segment]:
    """The segments of a build, their first rows filled in."""
    listed = meta.get("segments")
    if listed is None:  # a build from before segments: one, at the root
        listed = [{"dir": ".", **{k: int(meta["counts"][k]) for k in ROW_KINDS}}]
    out: list[Segment] = []
    chunk = sentence = word = 0
    for s in listed:
        out.append(
            Segment(
                str(s["dir"]),
                int(s["chunks"]),
                int(s["sentences"]),
                int(s["words"]),
                chunk,
                sentence,
                word,
            )
        )
        chunk, sentence, word = (
            chunk + int(s["chunks"]),
            sentence + int(s["sentences"]),
            word + int(s["words"]),
        )
    return out


def row_totals(meta: dict[str, Any]) -> dict[str, int]:
    """Rows of each kind over all segments, deleted ones included."""
    segments = segments_of(meta)
    return {k: sum(getattr(s, k) for s in segments) for k in ROW_KINDS}


def read_deleted(build: Path, meta: dict[str, Any], name: str) -> np.ndarray:
    """The rows a deletion file marks (sorted int64), none if the build has none."""
    if name not in meta["files"]:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(read_npy(build / name), dtype=np.int64)


class RowStack:
    """Several segments' vector files read as one array: row i of the build is
    row i - first of the segment holding it. Indexing by an int, a slice or a
    list of rows returns a new array, as numpy's fancy indexing does."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self.shape: tuple[int, int] = (int(self.starts[-1]), int(parts[0].shape[1]))
        self.dtype = parts[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[[int(rows)]][0]
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range 0..{len(self) - 1}")
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        part = np.searchsorted(self.starts, rows, side="right") - 1
        for p in np.unique(part):
            mask = part == p
            out[mask] = self.parts[p][rows[mask] - self.starts[p]]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate([np.asarray(p) for p in self.parts])
        return whole if dtype is None else whole.astype(dtype)


def stacked(parts: list[np.ndarray]) -> np.ndarray | RowStack:
    """One segment's file as it is (memory-mapped), several as a RowStack."""
    return parts[0] if len(parts) == 1 else RowStack(parts)
