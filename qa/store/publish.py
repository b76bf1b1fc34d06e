"""Publishing builds: one writer at a time per index folder, a build made
live by an atomic swap of the `current` symlink, old builds pruned, and the
build folder a reader should open.

    DIR/current -> builds/<build_id>      (symlink, swapped atomically)
    DIR/builds/<build_id>/...             (one whole build: see qa.store.layout)
    DIR/builds/.tmp-<build_id>/           (a build being written)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DiskFull, IndexMissing, IndexProblem, IndexUnwritable
from .layout import META
from .search import drop_search


def new_build_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def fsync_folder(folder: Path) -> None:
    """Every file under `folder`, and the folders themselves, on disk."""
    for p in folder.iterdir():
        if p.is_dir():
            fsync_folder(p)
            continue
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    _fsync_folder_entry(folder)


def publish(index_dir: Path, build: Path) -> None:
    link = index_dir / f".current-{build.name}"
    link.symlink_to(Path("builds") / build.name)
    os.replace(link, index_dir / "current")  # atomic on POSIX
    _fsync_folder_entry(index_dir)


def publish_folder(index_dir: Path, tmp: Path, final: Path, meta: dict[str, Any]) -> None:
    """Write `meta` into the build being written at `tmp`, put it on disk,
    rename it to `final` and make it live: the last steps of every writer."""
    (tmp / META).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    fsync_folder(tmp)
    os.rename(tmp, final)
    publish(index_dir, final)


def discard(index_dir: Path, build_id: str, tmp: Path, final: Path) -> bool:
    """After a writer failed: free everything build `build_id` wrote, unless it
    already went live (then it is the index). True if it was discarded."""
    if current_build_id(index_dir) == build_id:
        return False
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    (index_dir / f".current-{build_id}").unlink(missing_ok=True)
    return True


def _fsync_folder_entry(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(index_dir: Path) -> None:
    """Remove what killed builds left: their `builds/.tmp-*` folders and
    `.current-*` links. Only a writer holding `build_lock` may call this: then
    no other build is under way, so every one of them is stale."""
    for tmp in (index_dir / "builds").glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in index_dir.glob(".current-*"):
        stale.unlink(missing_ok=True)


def prune(index_dir: Path, keep: Path, keep_previous: int = 1) -> None:
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
                remove_leftovers(index_dir)
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
