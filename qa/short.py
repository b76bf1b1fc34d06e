"""Short answers: the span of the cited sentence that answers a typed
question (a date, a number, a person…), given only when it is clearly the
one the question asks about."""

from __future__ import annotations

import re

import numpy as np

from .dates import resolve
from .features import SOFT_MATCH_MIN
from .lexical import content_words, fold, terms, words
from .qtype import DATE, NUMBER
from .records import ShortAnswer
from .retrieve import Query
from .scorer import ScoredSentence
from .spans import Span, answer_spans
from .store import IndexReader

# A short answer must be tied to the question: within this many characters of
# one of its words (when the sentence holds any), and, among several spans of
# the asked-for kind, at most this share of the next one's distance. On PIAF
# (typed questions whose cited sentence is right) this gives 114 short answers
# instead of 144, 80% of them matching the expected answer instead of 66%.
SHORT_NEAR_CHARS = 60
SHORT_CLEAR_LEAD = 0.5


def short_answer(
    best: ScoredSentence, query: Query, reader: IndexReader | None = None
) -> ShortAnswer | None:
    """A span of the cited sentence that answers a typed question, when sure:
    near the question's words and clearly nearer than any other candidate
    span; the only candidate when none of the question's words is found.
    With `reader`, a question in another language finds its words through
    word vectors ("minister" at "ministre")."""
    kind = query.kind
    if kind is None:
        return None
    text = best.text
    question_words = {fold(w) for w in words(query.text)}
    spans = answer_spans(text, kind, question_words, query.measure, query.named)
    # A number followed by what the question counts is right by it.
    counted = [False] * len(spans)
    if kind == NUMBER:
        spans, counted = _with_counted(text, spans, query, best.article.lang, reader)
    anchors = _anchor_positions(text, query)
    if reader is not None and query.lang != best.article.lang:
        # Names match across languages, the other words only by meaning.
        anchors += _soft_anchor_positions(reader, text, best.article.lang, query)
    if not spans or (len(spans) > 1 and not anchors):
        return None
    if anchors:
        distance = [
            0 if c else _distance(sp, anchors) for sp, c in zip(spans, counted, strict=True)
        ]
        order = sorted(range(len(spans)), key=distance.__getitem__)
        nearest = distance[order[0]]
        if nearest > SHORT_NEAR_CHARS:
            return None
        if len(spans) > 1 and nearest > SHORT_CLEAR_LEAD * distance[order[1]]:
            return None
        spans = [spans[order[0]]]
    span = spans[0]
    start = best.sentence.start + span.start
    # "mercredi" means a day only with the article's date: say which.
    resolved = resolve(span.text, best.article.date) if kind == DATE else None
    return ShortAnswer(span.text, start, start + len(span.text), resolved)


_NEXT_WORD = re.compile(r"\s+(?:(?:de|of)\s+|d['’])?([^\W\d_]+)")


def _with_counted(
    sentence: str, spans: list[Span], query: Query, lang: str, reader: IndexReader | None
) -> tuple[list[Span], list[bool]]:
    """`spans` widened to the word after a number when that word is what the
    question counts: "52 matchs" for "Combien de matchs…", not "52". In
    another language (with `reader`), the word nearest in meaning to it, if
    near enough: "17 000 étudiants" for "How many students…". Also says which
    spans were widened."""
    if not query.counted:
        return spans, [False] * len(spans)
    after = [_NEXT_WORD.match(sentence, span.end) for span in spans]
    if lang == query.lang:
        wanted = set(terms(" ".join(query.counted), lang))
        counted = [bool(a and wanted & set(terms(a.group(1), lang))) for a in after]
    else:
        counted = [False] * len(spans)
        found = [a.group(1) if a else "" for a in after]
        for noun in query.counted:
            near = _nearest_in_meaning(noun, found, query, reader)
            counted = [c or n for c, n in zip(counted, near, strict=True)]
    widened = [
        Span(span.start, a.end(), sentence[span.start : a.end()]) if a and hit else span
        for span, a, hit in zip(spans, after, counted, strict=True)
    ]
    return widened, counted


def _nearest_in_meaning(
    word: str, candidates: list[str], query: Query, reader: IndexReader | None
) -> list[bool]:
    """Which of `candidates` is the one nearest in meaning to the question's
    `word` (by word vectors), when it is near enough to be taken for it."""
    none = [False] * len(candidates)
    if reader is None or query.word_vectors is None or word not in query.words:
        return none
    known = reader.words({c.lower() for c in candidates if c})
    rows = [known[c.lower()][0] if c and c.lower() in known else -1 for c in candidates]
    if all(r < 0 for r in rows):
        return none
    wanted = query.word_vectors[query.words.index(word)]
    vectors = np.asarray(reader.word_vectors[[max(r, 0) for r in rows]], dtype=np.float32)
    cosine = np.where(np.asarray(rows) >= 0, vectors @ wanted, -1.0)
    best = int(np.argmax(cosine))
    return [i == best and cosine[best] >= SOFT_MATCH_MIN for i in range(len(candidates))]


def _distance(span: Span, anchors: list[int]) -> int:
    """Characters between `span` and the nearest question word's start."""
    return min(min(abs(span.start - a), abs(span.end - a)) for a in anchors)


def _soft_anchor_positions(reader: IndexReader, text: str, lang: str, query: Query) -> list[int]:
    """Where the words of `text` that match a question word by meaning start."""
    if query.word_vectors is None or not len(query.words):
        return []
    tokens = [(m.start(), m.group(0).lower()) for m in _WORD_AT.finditer(text)]
    known = reader.words(set(content_words(text, lang)))
    found = [(at, known[w][0]) for at, w in tokens if w in known]
    if not found:
        return []
    vectors = np.asarray(reader.word_vectors[[row for _, row in found]], dtype=np.float32)
    matched = (query.word_vectors @ vectors.T).max(axis=0) >= SOFT_MATCH_MIN
    return [at for (at, _), hit in zip(found, matched, strict=True) if hit]


_WORD_AT = re.compile(r"[^\W_]+")


def _anchor_positions(text: str, query: Query) -> list[int]:
    wanted = set(query.terms)
    positions = []
    offset = 0
    for w in text.split():
        at = text.find(w, offset)
        offset = at + len(w)
        if wanted & set(terms(w, query.lang)):
            positions.append(at)
    return positions
