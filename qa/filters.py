"""Which articles a question may be answered from: a publication-date window
and a list of outlets (`/ask`'s `since`, `until` and `sources`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from .errors import BadQuestion
from .store import IndexReader

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date(value: str) -> str:
    """`value` when it is a real day written YYYY-MM-DD, else ValueError."""
    if not _ISO_DATE.fullmatch(value):
        raise ValueError(f"{value!r} is not a date written YYYY-MM-DD")
    date.fromisoformat(value)  # "2016-02-30" is no day
    return value


@dataclass(frozen=True)
class ArticleFilter:
    """Articles published from `since` to `until` (YYYY-MM-DD, both included)
    by one of `sources` (outlet names, any case). An article with no date is
    outside every date window; one with no outlet outside every source list."""

    since: str | None = None
    until: str | None = None
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                iso_date(value)
            except ValueError as exc:
                raise BadQuestion(f"{name}: {exc}.") from None
        if self.since and self.until and self.since > self.until:
            raise BadQuestion(f"since ({self.since}) is after until ({self.until}).")

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.sources)

    def matches(self, published: str | None, source: str | None) -> bool:
        if self.since or self.until:
            if not published:
                return False
            if (self.since and published < self.since) or (self.until and published > self.until):
                return False
        if self.sources:
            wanted = {s.strip().casefold() for s in self.sources}
            return source is not None and source.strip().casefold() in wanted
        return True

    def allowed(self, reader: IndexReader) -> frozenset[str]:
        """The ids of `reader`'s articles that match."""
        return frozenset(i for i, d, s in _dates_and_sources(reader) if self.matches(d, s))


@lru_cache(maxsize=2)  # a build's, and the one before it while requests finish on it
def _dates_and_sources(reader: IndexReader) -> tuple[tuple[str, str | None, str | None], ...]:
    """(id, date, source) of every article of a build, read once (a build never changes)."""
    return tuple((a["id"], a["date"], a["source"]) for a in reader.list_articles())
