"""Thumbs up/down on answers, kept in a small SQLite file, and the limits of
the /feedback routes (web/api.py serves them; `init_app` guards them):

- POST: at most `QA_FEEDBACK_RATE` posts a minute per client (remote address),
  counted by each server process; past it, 429 with Retry-After.
- GET lists every user's questions: only with `Authorization: Bearer
  $QA_ADMIN_TOKEN` (401 otherwise); with no token set, the route answers 404.
- The store keeps the newest `QA_FEEDBACK_MAX_ROWS` rows, each of bounded size,
  and refuses a record it cannot hold (`InvalidFeedback`, a 400).
"""

from __future__ import annotations

import hmac
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, get_args

from flask import Flask, Response, request

if TYPE_CHECKING:
    from qa.settings import Settings

# The bounds of a record, here once: the store checks them, and the request
# model (web/schemas.py) and so the OpenAPI document are built from them.
Vote = Literal["up", "down"]
VOTES: tuple[str, ...] = get_args(Vote)
MAX_ANSWER_CHARS = 10_000
MAX_ARTICLE_ID_CHARS = 500
# Offsets into an article's text. SQLite holds up to 2^63-1 (past it sqlite3
# raises OverflowError, once a 500); 2^31-1 is far past any article and an
# integer every JSON client reads exactly.
MAX_OFFSET = 2**31 - 1
# Clients the rate limiter remembers before it forgets the idle ones.
RATE_CLIENTS = 10_000
ErrorResponse = Callable[[int, str, str], tuple[Response, int]]

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
    vote: Vote


def _quote(column: str) -> str:
    return f'"{column}"'  # "end" is an SQL keyword


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bounds(item: Feedback, max_question_chars: int) -> None:
    """What the store holds is bounded whoever built the record (the API checks
    requests against the same bounds first)."""
    texts = (
        ("question", item.question, max_question_chars),
        ("answer", item.answer, MAX_ANSWER_CHARS),
        ("article_id", item.article_id, MAX_ARTICLE_ID_CHARS),
    )
    for name, text, limit in texts:
        if text is not None and (not isinstance(text, str) or len(text) > limit):
            raise InvalidFeedback(f'"{name}" must be a string of at most {limit} characters.')
    for name, offset in (("start", item.start), ("end", item.end)):
        if offset is not None and (not _is_int(offset) or not 0 <= offset <= MAX_OFFSET):
            raise InvalidFeedback(f'"{name}" must be an integer from 0 to {MAX_OFFSET}.')
    if item.vote not in VOTES:
        raise InvalidFeedback('"vote" must be "up" or "down".')


@dataclass(frozen=True)
class StoreSize:
    rows: int
    bytes: int  # the SQLite file and its write-ahead log


class FeedbackStore:
    """One SQLite file; a connection per call keeps it safe across server threads.
    Holds the newest `max_rows` records: each insert deletes those past it."""

    def __init__(self, path: Path, max_rows: int = 50_000, max_question_chars: int = 2000) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_question_chars = max_question_chars
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
        """Store one record; returns it as listed by `recent`. Raises InvalidFeedback
        for a record out of the store's bounds."""
        _check_bounds(item, self.max_question_chars)
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
            # Ids only grow (AUTOINCREMENT): the rows past the cap are the oldest.
            db.execute("DELETE FROM feedback WHERE id <= ?", (int(record["id"]) - self.max_rows,))
        return {c: record[c] for c in COLUMNS}

    def size(self) -> StoreSize:
        """Rows held and bytes on disk; zero, and no file made, before the first vote."""
        if not self.path.exists():
            return StoreSize(0, 0)
        with self._connect() as db:
            rows = db.execute("SELECT count(*) FROM feedback").fetchone()[0]
        files = (self.path, self.path.with_name(self.path.name + "-wal"))
        return StoreSize(int(rows), sum(f.stat().st_size for f in files if f.exists()))

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` records, newest first."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(map(_quote, COLUMNS))} FROM feedback ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


class RateLimiter:
    """At most `per_minute` events per key in any minute, a token bucket per key
    (`per_minute` tokens, refilled evenly). In memory: each server process
    counts for itself."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Take one event for `key`: 0 when allowed, else the seconds until one is."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / rate
            if len(self._buckets) >= RATE_CLIENTS:
                self._forget_idle(now, rate)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0

    def _forget_idle(self, now: float, rate: float) -> None:
        """Drop the keys whose bucket has refilled: they are as good as new."""
        full = self.per_minute
        idle = [
            k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * rate >= full
        ]
        for key in idle:
            del self._buckets[key]


def init_app(app: Flask, settings: Settings) -> None:
    """The store for `app.config["FEEDBACK_DB"]`, the /feedback guards, and a 400
    for a record the store refuses wherever it is raised."""
    from .api import error_response  # web.api imports this module

    app.extensions["qa_feedback"] = FeedbackStore(
        Path(app.config["FEEDBACK_DB"]), settings.feedback_max_rows, settings.max_question_chars
    )
    limiter = RateLimiter(settings.feedback_rate)
    token = settings.admin_token

    @app.before_request
    def _guard_feedback() -> tuple[Response, int] | None:
        rule = request.url_rule
        if rule is None or rule.rule != "/feedback":
            return None
        if request.method == "POST":
            wait = limiter.wait(request.remote_addr or "")
            if wait:
                response = error_response(
                    429,
                    "too_many_requests",
                    f"At most {limiter.per_minute} feedback posts a minute; "
                    f"retry in {math.ceil(wait)} s.",
                )
                response[0].headers["Retry-After"] = str(math.ceil(wait))
                return response
            return None
        if request.method in ("GET", "HEAD"):
            return _check_admin(token, error_response)
        return None

    @app.errorhandler(InvalidFeedback)
    def _invalid(exc: InvalidFeedback) -> tuple[Response, int]:
        return error_response(400, "invalid_feedback", str(exc))


def _check_admin(token: str, error_response: ErrorResponse) -> tuple[Response, int] | None:
    if not token:
        # No token, no listing: the route is as absent as any unknown path.
        return error_response(
            404, "not_found", f"No such endpoint: {request.path}. See /openapi.json."
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant time: how much of a guess matched must not show in the timing.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        response = error_response(
            401, "unauthorized", "Listing feedback needs 'Authorization: Bearer <admin token>'."
        )
        response[0].headers["WWW-Authenticate"] = 'Bearer realm="feedback"'
        return response
    return None
