"""Choosing the answer: score every sentence of the retrieved passages and
cite the best one, verbatim, or abstain.

A sentence's score adds up what each signal says (weights in `AnswerWeights`):
its own cosine with the question, the score of the passage it sits in, the
share of the question's terms it holds alone and with its neighbours, and
whether it holds the kind of thing the question asks for (a date, a number…).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lexical import fold, words
from .qtype import TIME, Span, question_type, typed_spans
from .records import Article, Citation, ShortAnswer
from .retrieve import Query, RetrievalWeights, ScoredChunk, coverage, lexical_weight
from .store import IndexReader, SentenceRow


@dataclass(frozen=True)
class AnswerWeights:
    dense: float = 1.0  # the sentence's own cosine with the question
    passage: float = 0.5  # the fused score of its best passage
    coverage: float = 0.6  # share of question terms in the sentence
    context: float = 0.3  # share of question terms in it and its neighbours
    answer_type: float = 0.1  # holds a span of the asked-for type
    read_chunks: int = 8  # passages whose sentences are read
    abstain_below: float = 0.55  # confidence under which we do not answer


@dataclass(frozen=True)
class ScoredSentence:
    sentence: SentenceRow
    article: Article
    score: float
    dense: float
    coverage: float

    @property
    def text(self) -> str:
        return self.article.text[self.sentence.start : self.sentence.end]


def score_sentences(
    reader: IndexReader,
    query: Query,
    chunks: list[ScoredChunk],
    weights: AnswerWeights,
    retrieval: RetrievalWeights,
) -> list[ScoredSentence]:
    """Every non-heading sentence of `chunks`, scored, best first."""
    best_passage: dict[int, float] = {}
    by_row: dict[int, SentenceRow] = {}
    neighbours: dict[int, list[SentenceRow]] = {}
    for c in chunks:
        # One sentence either side of the chunk, as context for its edges.
        window = reader.sentences_of(
            c.chunk.article_id, c.chunk.first_sentence - 1, c.chunk.last_sentence + 1
        )
        for i, s in enumerate(window):
            if not c.chunk.first_sentence <= s.idx <= c.chunk.last_sentence:
                continue
            by_row[s.row] = s
            best_passage[s.row] = max(best_passage.get(s.row, -1.0), c.score)
            neighbours[s.row] = window[max(0, i - 1) : i + 2]
    if not by_row:
        return []
    articles = reader.articles({s.article_id for s in by_row.values()})
    all_rows = sorted({n.row for ns in neighbours.values() for n in ns})
    terms = reader.sentence_terms(all_rows)
    rows = list(by_row)
    dense = np.asarray(reader.sentence_vectors[rows], dtype=np.float32) @ query.vector
    qtype = question_type(query.text)
    question_words = {fold(w) for w in words(query.text)}
    scored = []
    for row, cos in zip(rows, dense, strict=True):
        s = by_row[row]
        if s.heading:
            continue
        article = articles[s.article_id]
        own = coverage(query, terms.get(row, set()))
        around = coverage(query, set().union(*(terms.get(n.row, set()) for n in neighbours[row])))
        lex = lexical_weight(retrieval, query.lang, article.lang) / retrieval.lexical
        text = article.text[s.start : s.end]
        typed = bool(qtype and _answer_spans(text, qtype, question_words))
        score = (
            weights.dense * float(cos)
            + weights.passage * best_passage[row]
            + lex * (weights.coverage * own + weights.context * around)
            + weights.answer_type * typed
        )
        scored.append(ScoredSentence(s, article, score, float(cos), own))
    scored.sort(key=lambda x: x.score, reverse=True)
    return scored


def _answer_spans(sentence: str, kind: str, question_words: set[str]) -> list[Span]:
    """Spans of the asked-for kind that the question does not already contain."""
    spans = typed_spans(sentence, kind)
    if kind != TIME:
        # A number inside a time ("11" of "11H00") is not a count.
        times = typed_spans(sentence, TIME)
        spans = [s for s in spans if not any(t.start <= s.start < t.end for t in times)]
    return [s for s in spans if not {fold(w) for w in words(s.text)} <= question_words]


def short_answer(best: ScoredSentence, query: Query) -> ShortAnswer | None:
    """A span of the cited sentence that answers a typed question, when sure:
    the only candidate span, or the one nearest the question's words."""
    kind = question_type(query.text)
    if kind is None:
        return None
    text = best.text
    spans = _answer_spans(text, kind, {fold(w) for w in words(query.text)})
    if not spans:
        return None
    if len(spans) > 1:
        anchors = _anchor_positions(text, query)
        if not anchors:
            return None
        spans.sort(key=lambda sp: min(abs(sp.start - a) for a in anchors))
    span = spans[0]
    start = best.sentence.start + span.start
    return ShortAnswer(span.text, start, start + len(span.text))


def _anchor_positions(text: str, query: Query) -> list[int]:
    from .lexical import terms as term_list

    wanted = set(query.terms)
    positions = []
    offset = 0
    for w in text.split():
        at = text.find(w, offset)
        offset = at + len(w)
        if wanted & set(term_list(w, query.lang)):
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
