"""Thumbs up/down on answers, kept in a small SQLite file."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

VOTES = ("up", "down")
MAX_ANSWER_CHARS = 10_000
MAX_ARTICLE_ID_CHARS = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    article_id TEXT,
    start INTEGER,
    "end" INTEGER,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    build_id TEXT
);
"""
COLUMNS = "id created_at question answer article_id start end vote build_id".split()


class InvalidFeedback(ValueError):
    """A feedback record that cannot be stored; the message says why."""


@dataclass(frozen=True)
class Feedback:
    question: str
    answer: str | None
    article_id: str | None
    start: int | None
    end: int | None
    vote: str

    @classmethod
    def parse(cls, data: object, max_question_chars: int) -> Feedback:
        """Check a JSON body; raises InvalidFeedback with a message a person can act on."""
        if not isinstance(data, dict):
            raise InvalidFeedback("The body must be a JSON object.")
        question = data.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InvalidFeedback('"question" must be a non-empty string.')
        if len(question) > max_question_chars:
            raise InvalidFeedback(f'"question" is longer than {max_question_chars} characters.')
        vote = data.get("vote")
        if vote not in VOTES:
            raise InvalidFeedback('"vote" must be "up" or "down".')
        answer = data.get("answer")
        if answer is not None and (not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS):
            raise InvalidFeedback(
                f'"answer" must be null or a string of at most {MAX_ANSWER_CHARS} characters.'
            )
        article_id = data.get("article_id")
        if article_id is not None and (
            not isinstance(article_id, str) or not 0 < len(article_id) <= MAX_ARTICLE_ID_CHARS
        ):
            raise InvalidFeedback('"article_id" must be null or a non-empty string.')
        start, end = data.get("start"), data.get("end")
        if (start is None) != (end is None):
            raise InvalidFeedback('"start" and "end" go together: give both or neither.')
        if start is not None:
            if not _is_int(start) or not _is_int(end) or not 0 <= start <= end:
                raise InvalidFeedback('"start" and "end" must be integers with 0 <= start <= end.')
            if article_id is None:
                raise InvalidFeedback('"start" and "end" need the "article_id" they point into.')
        if answer is not None and article_id is None:
            raise InvalidFeedback('An "answer" needs the "article_id" it was cited from.')
        return cls(question.strip(), answer, article_id, start, end, vote)


def _quote(column: str) -> str:
    return f'"{column}"'  # "end" is an SQL keyword


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FeedbackStore:
    """One SQLite file; a connection per call keeps it safe across server threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            # Created on first use, so a server that never gets feedback writes no file.
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with sqlite3.connect(self.path) as db:
                        db.execute("PRAGMA journal_mode=WAL")
                        db.executescript(SCHEMA)
                    self._ready = True
        db = sqlite3.connect(self.path, timeout=5)
        try:
            with db:
                yield db
        finally:
            db.close()

    def add(self, item: Feedback, build_id: str | None = None) -> dict[str, Any]:
        """Store one record; returns it as listed by `recent`."""
        record: dict[str, Any] = {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **asdict(item),
            "build_id": build_id,
        }
        names = [c for c in COLUMNS if c != "id"]
        with self._connect() as db:
            cur = db.execute(
                f"INSERT INTO feedback ({', '.join(map(_quote, names))}) "
                f"VALUES ({', '.join('?' * len(names))})",
                [record[c] for c in names],
            )
            record["id"] = cur.lastrowid
        return {c: record[c] for c in COLUMNS}

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` records, newest first."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(map(_quote, COLUMNS))} FROM feedback ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]
