"""The signals a candidate sentence is scored on, read from the index for
every sentence of the retrieved passages: cosines by both encoders, shares
of the question's terms found (alone, with its neighbours, with its title,
by meaning across languages), and whether it holds the kind of thing the
question asks for. The model that weighs them is `qa.scorer`."""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

import numpy as np

from .lexical import content_words, fold, terms, words
from .records import Article
from .retrieve import Query, RetrievalWeights, ScoredChunk, coverage, lexical_weight
from .spans import answer_spans
from .store import IndexReader, SentenceRow
from .token_match import token_match

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
    # The question read against the sentence token by token by the second
    # encoder (qa/token_match.py), over its mean among the candidates: a
    # question in another language matches every sentence's tokens less.
    "token_match",
)
RESCORE = FEATURES.index("rescore")
TOKEN_MATCH = FEATURES.index("token_match")
# Read only when the second encoder is asked.
SECOND_ENCODER_FEATURES = (RESCORE, TOKEN_MATCH)
ANSWER_TYPE = FEATURES.index("answer_type")
SOFT_FEATURES = tuple(f for f in FEATURES if f.startswith("soft"))
# Columns, for filling them whole.
DENSE, PASSAGE, COVERAGE, CONTEXT, BIGRAMS, NAMES, NOVELTY, COVERAGE_TITLE = (
    FEATURES.index(f)
    for f in (
        "dense",
        "passage",
        "coverage",
        "context",
        "bigrams",
        "names",
        "novelty",
        "coverage_title",
    )
)
SOFT_COLUMNS = [FEATURES.index(f) for f in SOFT_FEATURES]
# Under this cosine two words are not taken for each other.
SOFT_MATCH_MIN = 0.5


@dataclass(frozen=True)
class Candidates:
    """Sentences of the retrieved passages with their feature rows."""

    sentences: list[SentenceRow]
    articles: list[Article]
    features: np.ndarray  # (len(sentences), len(FEATURES)) float32

    def rescored(
        self, reader: IndexReader, question: np.ndarray, tokens: np.ndarray | None = None
    ) -> Candidates:
        """These candidates with their "rescore" column: cosines of the second
        encoder's sentence vectors with `question` (its query vector), less
        its mean cosine with every sentence of the index; and, given the
        question's token states `tokens` and an index that keeps the
        sentences', their "token_match" column."""
        features = self.features.copy()
        centroid = reader.rescore_centroid
        rows = [s.row for s in self.sentences]
        if self.sentences and reader.rescore_vectors is not None and centroid is not None:
            cosines = np.asarray(reader.rescore_vectors[rows], dtype=np.float32) @ question
            features[:, RESCORE] = cosines - float(centroid @ question)
        if self.sentences and tokens is not None and reader.rescore_tokens is not None:
            match = token_match(tokens, reader.rescore_tokens[rows])
            features[:, TOKEN_MATCH] = match - match.mean()
        return Candidates(self.sentences, self.articles, features)


def candidates(
    reader: IndexReader,
    query: Query,
    chunks: list[ScoredChunk],
    retrieval: RetrievalWeights,
    earlier: Candidates | None = None,
) -> Candidates:
    """Every non-heading sentence of `chunks` with its features.

    `earlier`, candidates of the same query on the same reader (the first
    pass, when the second encoder widens the passages), lends the rows of
    the sentences it holds: a sentence's features but "passage" (its best
    passage here) and "rescore" (set by `Candidates.rescored`) depend on the
    question and the sentence alone, so only the new sentences are read."""
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
    known = {s.row: i for i, s in enumerate(earlier.sentences)} if earlier is not None else {}
    lent = earlier.features if earlier is not None else np.zeros((0, len(FEATURES)), np.float32)
    fresh = [by_row[r] for r in rows if r not in known]
    computed = _features(reader, query, retrieval, fresh, neighbours, articles)
    at = {s.row: i for i, s in enumerate(fresh)}
    feats = np.empty((len(rows), len(FEATURES)), dtype=np.float32)
    for i, row in enumerate(rows):
        feats[i] = lent[known[row]] if row in known else computed[at[row]]
    feats[:, PASSAGE] = [best_passage[row] for row in rows]
    return Candidates(
        [by_row[r] for r in rows], [articles[by_row[r].article_id] for r in rows], feats
    )


def _features(
    reader: IndexReader,
    query: Query,
    retrieval: RetrievalWeights,
    sentences: list[SentenceRow],
    neighbours: dict[int, list[SentenceRow]],
    articles: dict[str, Article],
) -> np.ndarray:
    """The feature rows of `sentences`, "passage" and "rescore" left 0."""
    feats = np.zeros((len(sentences), len(FEATURES)), dtype=np.float32)
    if not sentences:
        return feats
    rows = [s.row for s in sentences]
    ordered_terms = reader.sentence_terms(sorted({n.row for r in rows for n in neighbours[r]}))
    terms_of = {r: set(t) for r, t in ordered_terms.items()}
    dense = np.asarray(reader.sentence_vectors[rows], dtype=np.float32) @ query.vector
    question_words = {fold(w) for w in words(query.text)}
    kind, asked = query.kind, (query.measure, query.named)
    question_bigrams = set(itertools.pairwise(query.terms))
    names = _capitalised(query.text)
    query_terms = set(query.terms)
    feats[:, SOFT_COLUMNS] = _soft_features(reader, query, articles, rows, neighbours)
    nothing: set[str] = set()
    for i, s in enumerate(sentences):
        row = s.row
        article = articles[s.article_id]
        text = article.text[s.start : s.end]
        own = terms_of.get(row, nothing)
        around = set().union(*(terms_of.get(n.row, nothing) for n in neighbours[row]))
        lex = lexical_weight(retrieval, query.lang, article.lang) / retrieval.lexical
        pairs = set(itertools.pairwise(ordered_terms.get(row, [])))
        spans = kind and answer_spans(text, kind, question_words, *asked)
        feats[i, DENSE] = float(dense[i])
        feats[i, COVERAGE] = lex * coverage(query, own)
        feats[i, CONTEXT] = lex * coverage(query, around)
        feats[i, BIGRAMS] = lex * _share(question_bigrams, pairs)
        feats[i, NAMES] = _name_share(names, text)
        feats[i, ANSWER_TYPE] = float(bool(spans))
        feats[i, NOVELTY] = len(own - query_terms) / len(own) if own else 0.0
        title = _title_terms(article.title, article.lang)
        feats[i, COVERAGE_TITLE] = lex * coverage(query, own | title)
    return feats


def _soft_features(
    reader: IndexReader,
    query: Query,
    articles: dict[str, Article],
    rows: list[int],
    neighbours: dict[int, list[SentenceRow]],
) -> np.ndarray:
    """Soft coverage of the question by each sentence of `rows`, its window
    and its title: the SOFT_FEATURES columns, (len(rows), 3).

    Each question word counts with its IDF and its best cosine with a word of
    the text (1 for the same word), nothing under SOFT_MATCH_MIN: a
    BERTScore-like greedy alignment that also pairs "goal" with "objectif".
    """
    out = np.zeros((len(rows), len(SOFT_FEATURES)), dtype=np.float32)
    if query.word_vectors is None or query.word_idf is None or not len(query.words):
        return out
    around = sorted({n.row for r in rows for n in neighbours[r]})
    words_of = reader.sentence_word_rows(around)
    title_words = {a.id: _title_words(a.title, a.lang) for a in articles.values() if a.title}
    known = reader.words({w for ws in title_words.values() for w in ws})
    titles_of = {a: [known[w][0] for w in ws if w in known] for a, ws in title_words.items()}
    used = sorted({w for ws in (*words_of.values(), *titles_of.values()) for w in ws})
    if not used:
        return out
    columns = {w: i for i, w in enumerate(used)}
    vectors = np.asarray(reader.word_vectors[used], dtype=np.float32)
    sims = query.word_vectors @ vectors.T  # (question words, text words)
    sims[sims < SOFT_MATCH_MIN] = 0.0
    # Each text's best cosine for every question word (0 for a text of no word).
    texts = [words_of.get(r, []) for r in around] + list(titles_of.values())
    best = _best_of(sims, [[columns[w] for w in ws] for ws in texts])
    position = {r: i for i, r in enumerate(around)}
    title_at = {a: len(around) + i for i, a in enumerate(titles_of)}
    none = np.zeros(len(query.words), dtype=np.float32)
    idf = query.word_idf
    total = float(idf.sum()) or 1.0
    for i, row in enumerate(rows):
        window = neighbours[row]
        own = best[position[row]]
        title_row = title_at.get(window[0].article_id)
        title = none if title_row is None else best[title_row]
        context = best[[position[n.row] for n in window]].max(axis=0)
        out[i] = (
            float(idf @ own) / total,
            float(idf @ context) / total,
            float(idf @ np.maximum(own, title)) / total,
        )
    return out


def names_counted(reader: IndexReader, query: Query, row: int, text: str, lang: str) -> bool:
    """Whether the sentence `text` (of `row`, in `lang`) names what a "how
    many X" question counts, or the question counts nothing: one of
    `query.counted` is there by its stem or by meaning (a word of the
    sentence within SOFT_MATCH_MIN of it: "cas" for "cases"). "Combien de
    spectateurs…" is not answered by a count of goals."""
    if not query.counted:
        return True
    if set(terms(" ".join(query.counted), query.lang)) & set(terms(text, lang)):
        return True
    if query.word_vectors is None:
        return False
    rows = reader.sentence_word_rows([row]).get(row, [])
    if not rows:
        return False
    wanted = query.word_vectors[[query.words.index(w) for w in query.counted]]
    vectors = np.asarray(reader.word_vectors[rows], dtype=np.float32)
    return bool((wanted @ vectors.T).max() >= SOFT_MATCH_MIN)


def _best_of(sims: np.ndarray, texts: list[list[int]]) -> np.ndarray:
    """(len(texts), question words): for each text (columns of `sims`), the
    best of its columns for every row of `sims`; 0 where a text has none."""
    best = np.zeros((len(texts), sims.shape[0]), dtype=sims.dtype)
    lengths = np.array([len(t) for t in texts])
    filled = lengths > 0
    if filled.any():
        flat = np.fromiter(itertools.chain.from_iterable(texts), dtype=np.intp)
        starts = (np.cumsum(lengths) - lengths)[filled]
        best[filled] = np.maximum.reduceat(sims[:, flat], starts, axis=1).T
    return best


@functools.lru_cache(maxsize=4096)
def _title_terms(title: str, lang: str) -> frozenset[str]:
    return frozenset(terms(title, lang))


@functools.lru_cache(maxsize=4096)
def _title_words(title: str, lang: str) -> tuple[str, ...]:
    return tuple(content_words(title, lang))


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
