"""Choosing the answer: score every sentence of the retrieved passages and
cite the best one, verbatim, or abstain.

A sentence's score adds up what each signal says (weights in `AnswerWeights`):
its own cosine with the question, the score of the passage it sits in, the
share of the question's terms it holds alone and with its neighbours, and
whether it holds the kind of thing the question asks for (a date, a number…).

When the best sentence leads the next by little, a second encoder is asked
(`Rescoring`): its cosine joins the signals and other weights decide. It is
slower (multilingual-e5-small: ~15 ms a question against ~4 ms for the
first pass), so only the closest calls, a fifth of PIAF's questions, pay for it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .embed import E5_NAME, USE_NAME
from .lexical import content_words, fold, terms, words
from .qtype import (
    DATE,
    NUMBER,
    PERSON,
    TIME,
    Span,
    counted_noun,
    measured_spans,
    names_of,
    question_measure,
    question_names,
    question_type,
    typed_spans,
)
from .records import Article, Citation, ShortAnswer
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
    "rescore",  # the sentence's cosine with the question by the second encoder (0 until asked)
)
RESCORE = FEATURES.index("rescore")
SOFT_FEATURES = tuple(f for f in FEATURES if f.startswith("soft"))
# Under this cosine two words are not taken for each other.
SOFT_MATCH_MIN = 0.5


@dataclass(frozen=True)
class AnswerWeights:
    """Weights of FEATURES (fitted by scripts/tune.py on the dev sets) and the
    score under which the service abstains. They depend on the encoder of the
    sentence vectors ("dense"): see `for_encoder`."""

    weights: tuple[tuple[str, float], ...]
    # Answers every answerable seed question and 97% of PIAF's (scripts/tune.py).
    abstain_below: float
    read_chunks: int = 8  # passages whose sentences are read

    @classmethod
    def for_encoder(cls, name: str) -> AnswerWeights:
        """The weights fitted with sentence vectors by `name`; those fitted with
        USE for any other encoder (cosine scales differ: refit with tune.py)."""
        return FITTED.get(name, FITTED[USE_NAME])

    def vector(self) -> np.ndarray:
        """The weights in FEATURES order; a feature not named weighs 0."""
        named = dict(self.weights)
        unknown = set(named) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown answer features: {sorted(unknown)}")
        return np.asarray([named.get(f, 0.0) for f in FEATURES], dtype=np.float32)


@dataclass(frozen=True)
class Rescoring:
    """The second pass: when the first pass's best sentence leads the next by
    less than `margin`, the second encoder's cosine ("rescore") is added and
    `weights` score the sentences again."""

    weights: AnswerWeights
    margin: float

    @classmethod
    def for_rescorer(cls, name: str) -> Rescoring:
        """Fitted with `name` as second encoder; E5's for any other (refit with tune.py)."""
        return RESCORING.get(name, RESCORING[E5_NAME])


# Listwise logistic regressions on the seed and PIAF dev questions
# (scripts/tune.py): the first pass's, per encoder of the sentence vectors.
FITTED = {
    # Held-out PIAF halves: 57.1% and 63.7% rank-1 alone.
    USE_NAME: AnswerWeights(
        weights=(
            ("dense", 5.219),
            ("passage", 6.760),
            ("coverage", -0.376),
            ("context", 1.028),
            ("bigrams", 0.470),
            ("names", -0.188),
            ("answer_type", 1.562),
            ("novelty", 1.994),
            ("soft", 0.342),
            ("soft_context", 2.061),
            ("coverage_title", 1.656),
            ("soft_title", 3.481),
        ),
        abstain_below=8.87,
    ),
}
# ...and the second pass's, per second encoder (USE being the first). Asked
# about the closest fifth of PIAF's questions (margin), it lifts held-out PIAF
# halves to 60.5% and 67.3% rank-1; about the closest half (margin 1.23),
# to 61.5% and 68.3%, but then a third of the seed's questions pay for it and
# the server answers half as many questions a second.
RESCORING = {
    E5_NAME: Rescoring(
        AnswerWeights(
            weights=(
                ("dense", 1.758),
                ("passage", 5.660),
                ("coverage", -0.192),
                ("context", 1.016),
                ("bigrams", 0.243),
                ("names", -0.787),
                ("answer_type", 1.309),
                ("novelty", 2.593),
                ("soft", 0.583),
                ("soft_context", 1.808),
                ("coverage_title", 0.599),
                ("soft_title", 2.022),
                ("rescore", 46.919),
            ),
            abstain_below=45.87,
        ),
        margin=0.40,
    ),
}


@dataclass(frozen=True)
class ScoredSentence:
    sentence: SentenceRow
    article: Article
    score: float  # over the abstention threshold of the weights that scored it: >= 0 answers
    features: tuple[float, ...]

    @property
    def text(self) -> str:
        return self.article.text[self.sentence.start : self.sentence.end]


@dataclass(frozen=True)
class Candidates:
    """Sentences of the retrieved passages with their feature rows."""

    sentences: list[SentenceRow]
    articles: list[Article]
    features: np.ndarray  # (len(sentences), len(FEATURES)) float32

    def rescored(self, reader: IndexReader, question: np.ndarray) -> Candidates:
        """These candidates with their "rescore" column: cosines of the second
        encoder's sentence vectors with `question` (its query vector)."""
        features = self.features.copy()
        if self.sentences and reader.rescore_vectors is not None:
            vectors = reader.rescore_vectors[[s.row for s in self.sentences]]
            features[:, RESCORE] = np.asarray(vectors, dtype=np.float32) @ question
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
    qtype = question_type(query.text)
    measure = question_measure(query.text)
    named = question_names(query.text)
    question_words = {fold(w) for w in words(query.text)}
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
            "answer_type": float(
                bool(qtype and _answer_spans(text, qtype, question_words, measure, named))
            ),
            "novelty": len(own - query_terms) / len(own) if own else 0.0,
            "coverage_title": lex * coverage(query, own | title_terms[article.id]),
            "rescore": 0.0,
            **soft(row),
        }
        feats[i] = [values[name] for name in FEATURES]
        sentences.append(s)
        arts.append(article)
    return Candidates(sentences, arts, feats)


def score_sentences(found: Candidates, weights: AnswerWeights) -> list[ScoredSentence]:
    """Candidate sentences scored by `weights`, best first."""
    scores = found.features @ weights.vector() - weights.abstain_below
    order = np.argsort(-scores, kind="stable")
    return [
        ScoredSentence(
            found.sentences[i],
            found.articles[i],
            float(scores[i]),
            tuple(map(float, found.features[i])),
        )
        for i in order
    ]


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


def _answer_spans(
    sentence: str,
    kind: str,
    question_words: set[str],
    measure: str | None = None,
    named: list[set[str]] | None = None,
) -> list[Span]:
    """Spans of the asked-for kind (and `measure`, for numbers) that the
    question does not already contain; for people, none holding one of the
    `named` in the question (see `question_names`)."""
    spans = typed_spans(sentence, kind)
    if kind != TIME:
        # A number inside a time ("11" of "11H00") is not a count; a duration
        # ("16 heures") may be both and stays.
        times = typed_spans(sentence, TIME)
        spans = [s for s in spans if not any(_part_of(s, t) for t in times)]
    if kind == NUMBER and any(c.isdigit() for s in spans for c in s.text):
        # Nor is one inside a date: "2020" of "en 2020", "12" of "le 12 mai"
        # (dates hold digits; the date pattern is the slowest, so only then).
        dates = typed_spans(sentence, DATE)
        spans = [s for s in spans if not any(_part_of(s, d) for d in dates)]
    if kind == NUMBER and measure:
        spans = measured_spans(sentence, spans, measure)
    spans = [s for s in spans if not {fold(w) for w in words(s.text)} <= question_words]
    if kind == PERSON and named:
        # Someone the question already names is not who it asks about:
        # "Holly Goodhead" for "Pour qui travaille Holly ?" (but "Maria
        # Kirilenko" does answer "Qui est la fille de Yuri Kirilenko ?").
        spans = [s for s in spans if not any(n <= names_of(s.text) for n in named)]
    return spans


# A short answer must be tied to the question: within this many characters of
# one of its words (when the sentence holds any), and, among several spans of
# the asked-for kind, at most this share of the next one's distance. On PIAF
# (typed questions whose cited sentence is right) this gives 114 short answers
# instead of 144, 80% of them matching the expected answer instead of 66%.
SHORT_NEAR_CHARS = 60
SHORT_CLEAR_LEAD = 0.5


def _part_of(span: Span, whole: Span) -> bool:
    return whole.start <= span.start and span.end <= whole.end and span != whole


def short_answer(
    best: ScoredSentence, query: Query, reader: IndexReader | None = None
) -> ShortAnswer | None:
    """A span of the cited sentence that answers a typed question, when sure:
    near the question's words and clearly nearer than any other candidate
    span; the only candidate when none of the question's words is found.
    With `reader`, a question in another language finds its words through
    word vectors ("minister" at "ministre")."""
    kind = question_type(query.text)
    if kind is None:
        return None
    text = best.text
    question_words = {fold(w) for w in words(query.text)}
    measure, named = question_measure(query.text), question_names(query.text)
    spans = _answer_spans(text, kind, question_words, measure, named)
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
    return ShortAnswer(span.text, start, start + len(span.text))


_NEXT_WORD = re.compile(r"\s+(?:(?:de|of)\s+|d['’])?([^\W\d_]+)")


def _with_counted(
    sentence: str, spans: list[Span], query: Query, lang: str, reader: IndexReader | None
) -> tuple[list[Span], list[bool]]:
    """`spans` widened to the word after a number when that word is what the
    question counts: "52 matchs" for "Combien de matchs…", not "52". In
    another language (with `reader`), the word nearest in meaning to it, if
    near enough: "17 000 étudiants" for "How many students…". Also says which
    spans were widened."""
    noun = counted_noun(query.text)
    if not noun:
        return spans, [False] * len(spans)
    after = [_NEXT_WORD.match(sentence, span.end) for span in spans]
    if lang == query.lang:
        wanted = set(terms(noun, lang))
        counted = [bool(a and wanted & set(terms(a.group(1), lang))) for a in after]
    else:
        counted = _nearest_in_meaning(
            noun.lower(), [a.group(1) if a else "" for a in after], query, reader
        )
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


def citations(scored: list[ScoredSentence], limit: int = 3) -> list[Citation]:
    out = []
    for s in scored[:limit]:
        out.append(
            Citation(
                article_id=s.article.id,
                title=s.article.title,
                url=s.article.url,
                sentence=s.text,
                start=s.sentence.start,
                end=s.sentence.end,
                score=round(s.score, 4),
            )
        )
    return out
