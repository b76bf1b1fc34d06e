"""Passage retrieval: dense (FAISS) and lexical (FTS5) search over chunks,
fused on comparable scales.

Reciprocal-rank fusion gives BM25's ranks as much say as the encoder's even
when the question shares no word with the articles (an English question on a
French article), and drowns the dense side. Here the lexical side enters as
the IDF-weighted share of the question's terms that a chunk contains (0..1),
scaled down when question and article are in different languages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .store import ChunkRow, IndexReader

# A filtered question (`only`) searches this many times wider, then keeps the
# allowed articles' chunks; when fewer than a pool of them are among the
# nearest, their chunks are all read instead (`_nearest_within`).
FILTER_WIDEN = 5


@dataclass(frozen=True)
class Query:
    """A question, analysed once: what retrieval, the features and short
    answers read of it."""

    text: str
    lang: str
    vector: np.ndarray  # (dim,) unit row
    terms: tuple[str, ...]  # content terms, stemmed and folded
    idf: dict[str, float]  # per distinct term
    words: tuple[str, ...] = ()  # content words as written (lower-cased), for soft matching
    word_vectors: np.ndarray | None = None  # (len(words), dim)
    word_idf: np.ndarray | None = None  # (len(words),) IDF of each word over sentences
    kind: str | None = None  # what it asks for (qa.qtype: DATE, NUMBER, PERSON…), if typed
    measure: str | None = None  # for a number, what it measures (money, age…), if said
    # For "how many X" (no measure), the words of `words` that may name X.
    counted: tuple[str, ...] = ()
    named: tuple[frozenset[str], ...] = ()  # people it names (qa.qtype.question_names)


@dataclass(frozen=True)
class ScoredChunk:
    chunk: ChunkRow
    lang: str  # the article's language
    dense: float  # cosine with the question
    coverage: float  # IDF-weighted share of question terms in the chunk (0..1)
    score: float


@dataclass(frozen=True)
class RetrievalWeights:
    lexical: float = 0.6  # weight of coverage against dense cosine
    cross_lingual: float = 0.15  # share of the lexical weight kept across languages
    pool: int = 20  # chunks fetched from each of dense and lexical search


def idf(n: int, df: int) -> float:
    """BM25's IDF of a term found in `df` of `n` sentences."""
    return math.log(1.0 + (max(1, n) - df + 0.5) / (df + 0.5))


def idf_weights(reader: IndexReader, terms: Iterable[str]) -> dict[str, float]:
    """IDF of each term over sentences; unseen terms get the highest IDF,
    so a question about something absent from the articles keeps low coverage."""
    n = reader.counts["sentences"]
    return {t: idf(n, df) for t, df in reader.document_frequencies(terms).items()}


def coverage(query: Query, terms: set[str]) -> float:
    """IDF-weighted share of the question's distinct terms found in `terms`."""
    total = sum(query.idf.values())
    if not total:
        return 0.0
    return sum(w for t, w in query.idf.items() if t in terms) / total


def lexical_weight(weights: RetrievalWeights, question_lang: str, article_lang: str) -> float:
    if question_lang == article_lang:
        return weights.lexical
    return weights.lexical * weights.cross_lingual


def retrieve_chunks(
    reader: IndexReader,
    query: Query,
    top_k: int,
    weights: RetrievalWeights,
    exclude: frozenset[str] = frozenset(),
    also: Sequence[int] = (),
    only: frozenset[str] | None = None,
) -> list[ScoredChunk]:
    """The `top_k` best chunks for `query`, best first, none from `exclude`d
    articles and, given `only`, none from an article outside it; the chunk
    rows `also` (found by other means) are scored too and kept whatever their
    rank, after the others."""
    pool = max(weights.pool, top_k) * (2 if exclude else 1)
    # With `only`, search wider and keep the allowed articles' chunks.
    searched = pool * FILTER_WIDEN if only is not None else pool
    dense_rows = [r for r, _ in reader.search_chunks(query.vector, searched)]
    lexical_rows = [r for r, _ in reader.lexical_chunks(query.terms, searched)]
    rows = list(dict.fromkeys([*dense_rows, *lexical_rows, *also]))
    chunks = reader.chunks(rows)
    if exclude:
        rows = [r for r in rows if chunks[r].article_id not in exclude]
    if only is not None:
        rows = [r for r in rows if chunks[r].article_id in only]
        if len(set(rows) & set(dense_rows)) < pool:
            # Few of the nearest chunks are the allowed articles': read all of theirs.
            nearest = _nearest_within(reader, query, only - exclude, pool)
            rows = list(dict.fromkeys([*rows, *nearest]))
            chunks = reader.chunks(rows)
    if not rows:
        return []
    chunk_terms = reader.chunk_terms(rows)
    langs = {a.id: a.lang for a in reader.articles(chunks[r].article_id for r in rows).values()}
    # Exact cosines for the whole pool, from the stored vectors: the FAISS index
    # may be quantised, and chunks found only lexically have no cosine yet.
    exact = np.asarray(reader.chunk_vectors[rows], dtype=np.float32) @ query.vector
    dense_hits = dict(zip(rows, map(float, exact), strict=True))
    scored = []
    for r in rows:
        chunk = chunks[r]
        lang = langs.get(chunk.article_id, query.lang)
        cov = coverage(query, chunk_terms.get(r, set()))
        score = dense_hits[r] + lexical_weight(weights, query.lang, lang) * cov
        scored.append(ScoredChunk(chunk, lang, dense_hits[r], cov, score))
    scored.sort(key=lambda c: c.score, reverse=True)
    kept = scored[:top_k]
    extra = set(also) - {c.chunk.row for c in kept}
    return kept + [c for c in scored[top_k:] if c.chunk.row in extra]


def _nearest_within(
    reader: IndexReader, query: Query, articles: frozenset[str], k: int
) -> list[int]:
    """The `k` chunks of `articles` nearest to the question, by exact cosine
    over all their chunks (a scan: its cost grows with what they hold)."""
    rows = reader.chunk_rows_of(articles)
    if not rows:
        return []
    cosines = np.asarray(reader.chunk_vectors[rows], dtype=np.float32) @ query.vector
    best = np.argsort(-cosines, kind="stable")[:k]
    return [rows[i] for i in best]
