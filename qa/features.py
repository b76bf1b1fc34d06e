"""The signals a candidate sentence is scored on, read from the index for
every sentence of the retrieved passages: cosines by both encoders, shares
of the question's terms found (alone, with its neighbours, with its title,
by meaning across languages), and whether it holds the kind of thing the
question asks for. The model that weighs them is `qa.scorer`."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .lexical import content_words, fold, terms, words
from .qtype import answer_spans
from .records import Article
from .retrieve import Query, RetrievalWeights, ScoredChunk, coverage, lexical_weight
from .store import IndexReader, SentenceRow

# The signals a sentence is scored on, in the order of `features` columns.
FEATURES = (
    "dense",  # the sentence's own cosine with the question
    "passage",  # fused score of the best retrieved passage holding it
    "coverage",  # IDF-weighted share of question terms in the sentence
    "context",  # the same share over the sentence and its two neighbours
    "bigrams",  # share of the question's adjacent term pairs found adjacent here
    "names",  # share of the question's capitalised words found (any language)
    "answer_type",  # holds a span of the asked-for kind (date, number…) not in the question
    "novelty",  # share of its terms that the question lacks: the answer must be somewhere
    "soft",  # question words matched by meaning (word vectors), IDF-weighted, any language
    "soft_context",  # the same over the sentence and its two neighbours
    "coverage_title",  # "coverage" counting the article's title as part of the sentence
    "soft_title",  # "soft" counting the title likewise (it is what "il" or "elle" stands for)
    # The sentence's cosine with the question by the second encoder, over the
    # question's mean cosine with the index's sentences (0 when not asked).
    # A question in another language than the articles has lower cosines with
    # all of them (-0.06 for English questions on the French dev pages): raw,
    # that shift alone would put right answers under the abstention threshold.
    "rescore",
)
RESCORE = FEATURES.index("rescore")
ANSWER_TYPE = FEATURES.index("answer_type")
SOFT_FEATURES = tuple(f for f in FEATURES if f.startswith("soft"))
# Under this cosine two words are not taken for each other.
SOFT_MATCH_MIN = 0.5


@dataclass(frozen=True)
class Candidates:
    """Sentences of the retrieved passages with their feature rows."""

    sentences: list[SentenceRow]
    articles: list[Article]
    features: np.ndarray  # (len(sentences), len(FEATURES)) float32

    def rescored(self, reader: IndexReader, question: np.ndarray) -> Candidates:
        """These candidates with their "rescore" column: cosines of the second
        encoder's sentence vectors with `question` (its query vector), less
        its mean cosine with every sentence of the index."""
        features = self.features.copy()
        centroid = reader.rescore_centroid
        if self.sentences and reader.rescore_vectors is not None and centroid is not None:
            vectors = reader.rescore_vectors[[s.row for s in self.sentences]]
            cosines = np.asarray(vectors, dtype=np.float32) @ question
            features[:, RESCORE] = cosines - float(centroid @ question)
        return Candidates(self.sentences, self.articles, features)


def candidates(
    reader: IndexReader, query: Query, chunks: list[ScoredChunk], retrieval: RetrievalWeights
) -> Candidates:
    """Every non-heading sentence of `chunks` with its features."""
    best_passage: dict[int, float] = {}
    by_row: dict[int, SentenceRow] = {}
    neighbours: dict[int, list[SentenceRow]] = {}
    # One sentence either side of each chunk, as context for its edges.
    windows = reader.sentence_windows(
        [
            (c.chunk.article_id, c.chunk.first_sentence - 1, c.chunk.last_sentence + 1)
            for c in chunks
        ]
    )
    for c, window in zip(chunks, windows, strict=True):
        for i, s in enumerate(window):
            if s.heading or not c.chunk.first_sentence <= s.idx <= c.chunk.last_sentence:
                continue
            by_row[s.row] = s
            best_passage[s.row] = max(best_passage.get(s.row, -1.0), c.score)
            neighbours[s.row] = window[max(0, i - 1) : i + 2]
    rows = list(by_row)
    if not rows:
        return Candidates([], [], np.zeros((0, len(FEATURES)), dtype=np.float32))
    articles = reader.articles({s.article_id for s in by_row.values()})
    ordered_terms = reader.sentence_terms(sorted({n.row for ns in neighbours.values() for n in ns}))
    terms_of = {r: set(t) for r, t in ordered_terms.items()}
    dense = np.asarray(reader.sentence_vectors[rows], dtype=np.float32) @ query.vector
    question_words = {fold(w) for w in words(query.text)}
    kind, asked = query.kind, (query.measure, query.named)
    question_bigrams = set(itertools.pairwise(query.terms))
    names = _capitalised(query.text)
    query_terms = set(query.terms)
    soft = _soft_matcher(reader, query, articles, neighbours)
    feats = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
    title_terms: dict[str, set[str]] = {}
    sentences, arts = [], []
    for i, row in enumerate(rows):
        s = by_row[row]
        article = articles[s.article_id]
        text = article.text[s.start : s.end]
        own = terms_of.get(row, set())
        around = set().union(*(terms_of.get(n.row, set()) for n in neighbours[row]))
        ordered = ordered_terms.get(row, [])
        lex = lexical_weight(retrieval, query.lang, article.lang) / retrieval.lexical
        if article.id not in title_terms:
            title_terms[article.id] = set(terms(article.title, article.lang))
        values = {
            "dense": float(dense[i]),
            "passage": best_passage[row],
            "coverage": lex * coverage(query, own),
            "context": lex * coverage(query, around),
            "bigrams": lex * _share(question_bigrams, set(itertools.pairwise(ordered))),
            "names": _name_share(names, text),
            "answer_type": float(bool(kind and answer_spans(text, kind, question_words, *asked))),
            "novelty": len(own - query_terms) / len(own) if own else 0.0,
            "coverage_title": lex * coverage(query, own | title_terms[article.id]),
            "rescore": 0.0,
            **soft(row),
        }
        feats[i] = [values[name] for name in FEATURES]
        sentences.append(s)
        arts.append(article)
    return Candidates(sentences, arts, feats)


def _soft_matcher(
    reader: IndexReader,
    query: Query,
    articles: dict[str, Article],
    neighbours: dict[int, list[SentenceRow]],
) -> Callable[[int], dict[str, float]]:
    """Soft coverage of the question by a sentence, its window and its passage.

    Each question word counts with its IDF and its best cosine with a word of
    the text (1 for the same word), nothing under SOFT_MATCH_MIN: a
    BERTScore-like greedy alignment that also pairs "goal" with "objectif".
    """
    nothing = dict.fromkeys(SOFT_FEATURES, 0.0)
    if query.word_vectors is None or query.word_idf is None or not len(query.words):
        return lambda row: nothing
    rows = sorted({n.row for group in neighbours.values() for n in group})
    words_of = reader.sentence_word_rows(rows)
    title_words = {a.id: content_words(a.title, a.lang) for a in articles.values() if a.title}
    known = reader.words({w for ws in title_words.values() for w in ws})
    titles_of = {a: [known[w][0] for w in ws if w in known] for a, ws in title_words.items()}
    used = sorted({w for ws in (*words_of.values(), *titles_of.values()) for w in ws})
    if not used:
        return lambda row: nothing
    columns = {w: i for i, w in enumerate(used)}
    vectors = np.asarray(reader.word_vectors[used], dtype=np.float32)
    sims = query.word_vectors @ vectors.T  # (question words, text words)
    sims[sims < SOFT_MATCH_MIN] = 0.0
    none = np.zeros(len(query.words), dtype=np.float32)

    def best(word_rows: list[int]) -> np.ndarray:
        return sims[:, [columns[w] for w in word_rows]].max(axis=1) if word_rows else none

    best_of_row = {row: best(words_of.get(row, [])) for row in rows}
    best_of_title = {a: best(ws) for a, ws in titles_of.items()}
    idf = query.word_idf
    total = float(idf.sum()) or 1.0

    def share(rows: list[SentenceRow]) -> float:
        best = np.max([best_of_row[n.row] for n in rows], axis=0)
        return float(idf @ best) / total

    def score(row: int) -> dict[str, float]:
        own = best_of_row[row]
        title = best_of_title.get(neighbours[row][0].article_id, none)
        window = neighbours[row]
        return {
            "soft": float(idf @ own) / total,
            "soft_context": share(window),
            "soft_title": float(idf @ np.maximum(own, title)) / total,
        }

    return score


def _share(wanted: set[tuple[str, str]], found: set[tuple[str, str]]) -> float:
    return len(wanted & found) / len(wanted) if wanted else 0.0


_NAME = re.compile(r"\b[A-ZÀ-ÖØ-Þ][\w’'-]{2,}")


def _capitalised(question: str) -> set[str]:
    """Folded 5-letter prefixes of the question's capitalised words past the
    first, which are names more often than not, and survive translation."""
    found = _NAME.findall(question)
    first = question.split(maxsplit=1)[0] if question.split() else ""
    return {fold(w)[:5] for w in found if w != first}


def _name_share(names: set[str], text: str) -> float:
    if not names:
        return 0.0
    prefixes = {fold(w)[:5] for w in _NAME.findall(text)}
    return len(names & prefixes) / len(names)
