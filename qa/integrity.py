"""Is a build whole and sound? Digests of its files, SQLite's own check, and
vectors that hold only finite numbers.

A build records a digest of every file in meta.json; loading it recomputes
them, so a file damaged after the build (same size or not) is refused at start
instead of failing every request. A file up to `WHOLE_MAX` bytes is digested
whole; a larger one over `SAMPLES` blocks spread evenly over it, first and last
included, so checking costs a bounded read at any size (SHA-256 runs at
~0.6 GB/s on the 2-core development machine and a build of 1M chunks holds
~12 GB: whole digests would add ~20 s to every start). What the samples miss
in a large file, `PRAGMA quick_check` (SQLite's structure) and the finite check
(every vector is read) still catch in the two ways that broke serving.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexMismatch

WHOLE_MAX = 64 << 20
BLOCK = 1 << 16
SAMPLES = 64
SCHEME = {"algorithm": "sha256", "whole_max": WHOLE_MAX, "block": BLOCK, "samples": SAMPLES}
READ_BYTES = 8 << 20  # how much of a vector file is read and checked at a time


def digest(path: Path, scheme: dict[str, Any] = SCHEME) -> str:
    """SHA-256 of the file, or of its sampled blocks (and its size) if it is large."""
    whole_max, block = int(scheme["whole_max"]), int(scheme["block"])
    samples = int(scheme["samples"])
    h = hashlib.new(str(scheme["algorithm"]))
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size <= whole_max:
            while chunk := f.read(READ_BYTES):
                h.update(chunk)
        else:
            h.update(size.to_bytes(8, "little"))
            for i in range(samples):
                f.seek((size - block) * i // (samples - 1))
                h.update(f.read(block))
    return h.hexdigest()


def digests(folder: Path, names: Iterable[str]) -> dict[str, Any]:
    """meta.json's "digests" entry for the files `names` of a build folder."""
    return {"scheme": SCHEME, "files": {name: digest(folder / name) for name in names}}


def verify_digests(folder: Path, meta: dict[str, Any]) -> bool:
    """Check every file against meta.json's digests; False when it has none
    (a build of an earlier version)."""
    recorded = meta.get("digests")
    if not recorded:
        return False
    try:
        for name, expected in recorded["files"].items():
            if digest(folder / name, recorded["scheme"]) != expected:
                raise IndexMismatch(
                    f"{folder / name}: its content changed since the build (digest differs "
                    "from meta.json): damaged on disk or replaced. Rebuild the index."
                )
    except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError) as exc:
        raise IndexMismatch(
            f"{folder / 'meta.json'}: its 'digests' entry is malformed ({exc!r}). "
            "Rebuild the index."
        ) from exc
    except OSError as exc:
        raise IndexMismatch(
            f"{exc.filename or folder}: cannot be read ({exc.strerror}). Rebuild the index."
        ) from exc
    return True


def check_sqlite(path: Path, db: sqlite3.Connection) -> None:
    """SQLite's structural check: damaged pages fail here, not in a request."""
    try:
        result = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        result = str(exc)
    if result != "ok":
        first = " ".join(str(result).split())[:200]
        raise IndexMismatch(f"{path}: damaged ({first}). Rebuild the index.")


def first_non_finite(vectors: np.ndarray) -> int | None:
    """Row of the first vector holding NaN or infinity, if any."""
    rows = max(1, READ_BYTES // max(1, vectors[:1].nbytes))
    for start in range(0, len(vectors), rows):
        bad = ~np.isfinite(vectors[start : start + rows]).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def check_vector_file(path: Path) -> None:
    """Every vector of a (rows, dim) float .npy file is finite. Read with plain
    reads, not through the server's memory map, so that checking is not counted
    in its memory."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
        except ValueError as exc:
            raise IndexMismatch(
                f"{path}: not a readable vector file ({exc}). Rebuild the index."
            ) from exc
        if fortran or len(shape) != 2 or dtype.kind != "f" or not shape[1]:
            return  # not vectors: the reader's shape checks name what is wrong
        width = shape[1] * dtype.itemsize
        rows = max(1, READ_BYTES // width)
        for start in range(0, shape[0], rows):
            data = f.read(min(rows, shape[0] - start) * width)
            block = np.frombuffer(data[: len(data) // width * width], dtype=dtype)
            row = first_non_finite(block.reshape(-1, shape[1]))
            if row is not None:
                raise IndexMismatch(
                    f"{path}: row {start + row} holds NaN or infinite values. Rebuild the index."
                )
