"""Reading and writing a build's files: meta.json, numpy vector files, and
the checks a reader makes of them against meta.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .. import integrity
from ..errors import IndexMismatch
from .layout import FORMAT_VERSION, META

log = logging.getLogger(__name__)


def save_npy(path: Path, array: np.ndarray) -> None:
    """What np.save writes, written by Python's own file writes: on a full disk
    numpy's `tofile` raises an OSError without its errno, these raise ENOSPC."""
    array = np.ascontiguousarray(array)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
        f.write(array.reshape(-1).data.cast("B"))


def read_meta(build: Path) -> dict[str, Any]:
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
# Files this process found sound, by identity: a build that hard-links the
# previous build's files (qa.store.append) is then checked in proportion to
# what it added, not to its size, when a server swaps it in.
_sound: set[tuple[Any, ...]] = set()


def _identity(path: Path, check: str) -> tuple[Any, ...] | None:
    """A file's identity for a check: its inode, size and modification time
    (not its ctime, which a hard link to it changes)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, check)


def verify_digests(build: Path, meta: dict[str, Any]) -> None:
    """Files against meta.json's digests (but files this process already
    checked against the same digest). A build of an earlier version has
    none: it is still served (its other checks pass or it is refused), with a
    warning that a rebuild would add them."""
    recorded = meta.get("digests")
    files = recorded.get("files") if isinstance(recorded, dict) else None
    seen: dict[str, tuple[Any, ...] | None] = {}
    if isinstance(recorded, dict) and isinstance(files, dict):
        seen = {name: _identity(build / name, str(digest)) for name, digest in files.items()}
        unseen = {n: files[n] for n, key in seen.items() if key is None or key not in _sound}
        meta = {**meta, "digests": {**recorded, "files": unseen}}
    if integrity.verify_digests(build, meta):
        _sound.update(key for key in seen.values() if key is not None)
        return
    if build in _unverified:
        return
    _unverified.add(build)
    log.warning(
        "%s: no file digests (built by an earlier version), so a file damaged since "
        "the build may go unnoticed; rebuild the index to add them",
        build / META,
    )


def read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IndexMismatch(
            f"{path}: not a readable vector file ({exc}). Rebuild the index."
        ) from exc


def check_vectors_once(path: Path) -> None:
    """`integrity.check_vector_file`, unless this process already found this
    very file (same inode, size and time) sound."""
    key = _identity(path, "finite")
    if key is not None and key in _sound:
        return
    integrity.check_vector_file(path)
    if key is not None:
        _sound.add(key)
