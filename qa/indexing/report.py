"""What a build did: the `BuildReport` of a full build, an add, a removal or
a compaction, and its one-line summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..store import IndexedArticle


@dataclass
class BuildReport:
    """What a build did, for the one-line summary."""

    index_path: Path | None = None
    articles: int = 0
    chunks: int = 0
    sentences: int = 0
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    encode_seconds: float = 0.0
    total_seconds: float = 0.0

    def summary(self) -> str:
        rate = self.sentences / self.total_seconds if self.total_seconds else 0.0
        parts = [
            f"{counted(self.articles, 'article')}, {counted(self.chunks, 'chunk')}, "
            f"{counted(self.sentences, 'sentence')}",
            f"+{len(self.added)} -{len(self.removed)} ={len(self.unchanged)}",
            f"{len(self.errors)} skipped",
            f"{self.total_seconds:.2f}s ({self.encode_seconds:.2f}s encoding)",
        ]
        return (
            " | ".join(parts)
            + f" -> {self.index_path}"
            + (f" [{rate:.0f} sentences/s]" if rate else "")
        )


def finish(report: BuildReport, items: list[IndexedArticle], started: float) -> BuildReport:
    report.articles = len(items)
    report.chunks = sum(len(i.chunks) for i in items)
    report.sentences = sum(len(i.sentences) for i in items)
    report.total_seconds = time.perf_counter() - started
    return report


def counted(n: int, noun: str) -> str:
    """`n` with its English noun: "1 article", "12 articles", "0 articles"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
