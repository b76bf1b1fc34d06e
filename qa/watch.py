"""A drop folder: files that land in it, or change, are added to the index.

Polling, not file-system events: every `interval` seconds the folder is listed
again (os.scandir, recursively; names starting with "." or "README" are left
out, as a build leaves them) and each file's modification time and size are
compared with the last listing. Polling behaves the same on every file system
(network shares and container mounts deliver no inotify events) and costs one
stat per file per interval; between listings the process sleeps.

A file is added once it has kept the same time and size for `settle` seconds,
so one still being copied or downloaded is not read half-way (and if a writer
pauses longer than that, the file changes again later and its new version
replaces the half one). Files that settle together are added in one build
(`qa.indexing.add`, under the index's build lock: one build at a time,
whoever else writes the index). A changed file replaces its articles (same
file); re-offering an unchanged one writes no new build.

A file removed from the folder leaves its articles in the index: a drop folder
is an inbox, and moving a file out once it is indexed (archiving it) must not
unpublish it. Remove an article by id (`newsqa build --remove ID`).

At start every file already in the folder is offered once, so files that landed
while no watcher ran are added; those indexed before are found unchanged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .embed import Encoder
from .errors import CorpusMissing
from .indexing import BuildReport, add
from .settings import Settings

Stamp = tuple[int, int]  # (modification time in ns, size in bytes)


def listing(folder: Path) -> dict[Path, Stamp]:
    """Every file under `folder` with its stamp; one that vanishes meanwhile is left out."""
    found: dict[Path, Stamp] = {}
    pending = [folder]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue  # a subfolder removed while listing
        for entry in entries:
            if entry.name.startswith((".", "README")):
                continue
            try:
                if entry.is_dir():
                    pending.append(Path(entry.path))
                elif entry.is_file():
                    st = entry.stat()
                    found[Path(entry.path)] = (st.st_mtime_ns, st.st_size)
            except OSError:
                continue
    return found


@dataclass
class DropFolder:
    """Which files of `folder` are ready to add: new or changed, then unchanged
    for `settle` seconds."""

    folder: Path
    settle: float
    clock: Callable[[], float] = time.monotonic
    # each file's stamp in the last listing, and since when it has had it
    seen: dict[Path, tuple[Stamp, float]] = field(default_factory=dict)
    # each file's stamp when it was last offered to the index
    offered: dict[Path, Stamp] = field(default_factory=dict)

    def ready(self) -> list[Path]:
        if not self.folder.is_dir():
            raise CorpusMissing(f"{self.folder}: no such folder (the watched folder went away).")
        now = self.clock()
        current = listing(self.folder)
        for path, stamp in current.items():
            if path not in self.seen or self.seen[path][0] != stamp:
                self.seen[path] = (stamp, now)
        for gone in set(self.seen) - set(current):
            # Put back later, it is a new file again.
            del self.seen[gone]
            self.offered.pop(gone, None)
        return sorted(
            path
            for path, (stamp, since) in self.seen.items()
            if self.offered.get(path) != stamp and now - since >= self.settle
        )

    def mark_offered(self, paths: list[Path]) -> None:
        """Offered to the index (added, unchanged or skipped): not again until it changes."""
        for path in paths:
            if path in self.seen:
                self.offered[path] = self.seen[path][0]


def watch(
    folder: Path,
    index_dir: Path,
    encoder: Encoder,
    settings: Settings,
    *,
    interval: float,
    settle: float,
    stopped: Callable[[], bool],
    on_build: Callable[[list[Path], BuildReport], None],
) -> None:
    """Add what lands in `folder` to the index in `index_dir` until `stopped()`.

    `stopped` is asked between builds and between listings (a build under way
    is finished first); `on_build` is told each build's files and report.
    Raises the build's error when the index cannot be written or read (an
    IndexProblem); a file that cannot be read is in the report's errors.
    """
    drop = DropFolder(folder, settle)
    while not stopped():
        paths = drop.ready()
        if paths:
            report = add(paths, index_dir, encoder, settings)
            drop.mark_offered(paths)
            on_build(paths, report)
            continue  # more may have settled during the build
        _sleep(interval, stopped)


def _sleep(seconds: float, stopped: Callable[[], bool], step: float = 0.1) -> None:
    """Sleep `seconds`, waking early when `stopped()` turns true."""
    deadline = time.monotonic() + seconds
    while not stopped() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(step, left))
