"""Typed records passed between pipeline stages.

Every span carries character offsets into its article's cleaned text, so that
`article.text[start:end] == span.text` always holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """One cleaned article. `text` is what offsets point into."""

    id: str
    title: str
    text: str
    lang: str
    url: str | None = None
    date: str | None = None  # publication date, YYYY-MM-DD
    origin: str | None = None  # the file (and record) it came from, for messages only
    credit: str | None = None  # e.g. "agences et rédaction": metadata, never answered
    source: str | None = None  # the outlet that published it, e.g. "Le Monde"
    author: str | None = None


@dataclass(frozen=True)
class Sentence:
    """A sentence (or heading) of an article, `text == article.text[start:end]`."""

    start: int
    end: int
    text: str
    heading: bool = False


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences, the unit that is embedded and retrieved."""

    article_id: str
    chunk_id: str
    start: int
    end: int
    text: str
    first_sentence: int  # index of its first sentence in the article
    last_sentence: int  # index of its last sentence, inclusive


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its retrieval score."""

    article_id: str
    chunk_id: str
    text: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Citation:
    """A sentence of an article offered as evidence, best first in an Answer."""

    article_id: str
    title: str
    url: str | None
    sentence: str
    start: int
    end: int
    score: float
    date: str | None = None  # the article's publication date, YYYY-MM-DD
    source: str | None = None  # the article's outlet


@dataclass(frozen=True)
class ShortAnswer:
    """A span inside the cited sentence; offsets are in the article."""

    text: str
    start: int
    end: int
    # A relative date ("mercredi", "last week") resolved against the article's
    # publication date (qa.dates): "2016-01-20", or a range "2016-01-18/2016-01-24".
    resolved: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the service returns for one question (the `/ask` contract)."""

    question: str
    language: str
    answered: bool
    answer: str | None
    short_answer: ShortAnswer | None
    message: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    took_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
