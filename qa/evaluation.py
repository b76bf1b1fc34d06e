"""Evaluation on the development sets: the seed questions, news-qa-dev and
PIAF (SQuAD format). Used by scripts/evaluate.py and scripts/train.py."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .clean import normalize
from .embed import Encoder, encode_question_and_words
from .ingest import read_file
from .lang import detect_language
from .lexical import fold, terms
from .pipeline import QAEngine
from .records import Article
from .settings import Settings
from .store import IndexReader


@dataclass(frozen=True)
class Question:
    text: str
    lang: str
    gold: tuple[str, ...] | None = None  # seed: substrings of the right sentence
    article_id: str | None = None  # PIAF: the paragraph that answers it
    span: tuple[int, int] | None = None  # PIAF: the answer's offsets in that article
    answer: str | None = None  # expected short answer

    @property
    def answerable(self) -> bool:
        return self.gold is not None or self.span is not None


@dataclass
class Outcome:
    question: Question
    ranked: list[tuple[str, int, int, str]]  # (article id, start, end, sentence), best first
    answered: bool
    confidence: float
    short: str | None
    ms: float
    rescored: bool = False  # the second sentence encoder was asked

    def right_at(self, k: int) -> bool:
        q = self.question
        for article_id, start, end, sentence in self.ranked[:k]:
            if q.gold is not None and any(g in sentence for g in q.gold):
                return True
            same = q.span is not None and article_id == q.article_id
            if same and start < q.span[1] and q.span[0] < end:  # type: ignore[index]
                return True
        return False

    def short_match(self) -> bool:
        if self.question.answer is None:
            return False
        found = self.short or (self.ranked[0][3] if self.ranked else "")
        return fold(self.question.answer) in fold(found)


@dataclass
class Report:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def subset(self, lang: str | None = None, answerable: bool | None = True) -> list[Outcome]:
        return [
            o
            for o in self.outcomes
            if (lang is None or o.question.lang == lang)
            and (answerable is None or o.question.answerable == answerable)
        ]


def load_seed(data: Path) -> tuple[Path, list[Question]]:
    raw = json.loads((data / "seed-qa-dev.json").read_text())
    questions = [
        Question(
            text=q["q"],
            lang=q["lang"],
            gold=tuple(q["gold"]) if q["gold"] else None,
            answer=q.get("answer"),
        )
        for q in raw["questions"]
    ]
    return data / "seed-article.txt", questions


def load_news(data: Path) -> list[Question]:
    """news-qa-dev: reader-style questions on the ten dev web pages (French,
    English about the French articles, and unanswerable ones: gold null)."""
    raw = json.loads((data / "news-qa-dev.json").read_text())
    return [
        Question(
            text=q["q"],
            lang=q["lang"],
            gold=(q["gold"],) if q["gold"] else None,
            answer=q.get("answer"),
        )
        for q in raw["questions"]
    ]


def load_piaf(path: Path) -> tuple[list[Article], list[Question]]:
    """PIAF (French, SQuAD format): see `load_squad`."""
    return load_squad(path, "fr", "piaf")


def load_squad(path: Path, lang: str, prefix: str) -> tuple[list[Article], list[Question]]:
    """A SQuAD-format file: every paragraph as an article (ids `prefix`-N);
    every question with its answer span re-located in the normalised text."""
    raw = json.loads(path.read_text())
    articles: list[Article] = []
    questions: list[Question] = []
    for doc in raw["data"]:
        for n, para in enumerate(doc["paragraphs"]):
            article_id = f"{prefix}-{len(articles)}"
            text = normalize(para["context"]).strip()
            articles.append(
                Article(
                    article_id, f"{doc['title']}", text, lang, origin=f"{path}#{doc['title']}/{n}"
                )
            )
            for qa in para["qas"]:
                ans = qa["answers"][0]
                start = _locate(text, ans["text"], ans["answer_start"])
                if start is None:
                    continue
                questions.append(
                    Question(
                        text=qa["question"],
                        lang=lang,
                        article_id=article_id,
                        span=(start, start + len(normalize(ans["text"]))),
                        answer=ans["text"],
                    )
                )
    return articles, questions


def _locate(text: str, answer: str, near: int) -> int | None:
    answer = normalize(answer)
    hits = []
    at = text.find(answer)
    while at >= 0:
        hits.append(at)
        at = text.find(answer, at + 1)
    return min(hits, key=lambda h: abs(h - near)) if hits else None


def seed_articles(data: Path) -> list[Article]:
    path, _ = load_seed(data)
    articles, _ = read_file(path)
    return articles


def page_articles(data: Path) -> list[Article]:
    """The ten dev web pages (HTML): unrelated articles to ask the seed's
    questions among, as in a real pile of articles."""
    articles: list[Article] = []
    for path in sorted((data / "html").glob("*.html")):
        found, _ = read_file(path)
        articles += found
    return articles


def run(
    engine: QAEngine,
    questions: Sequence[Question],
    name: str,
    leave_out: bool = False,
    threads: int = 1,
) -> Report:
    """Ask every question. With `leave_out`, each question's own article is hidden,
    which turns PIAF into a set of hard unanswerable questions. With `threads`
    > 1 the questions are asked on that many threads, as a threaded server
    would: faster on several cores, but each one's time then counts the
    others' (for untimed passes)."""
    k = 5

    def ask(q: Question) -> Outcome:
        exclude = frozenset([q.article_id]) if leave_out and q.article_id else frozenset()
        started = time.perf_counter()
        if exclude:
            answer, ranking = None, engine.rank(q.text, k, exclude)
        else:
            answer, ranking = engine.ask_ranked(q.text, k)
        ms = (time.perf_counter() - started) * 1000  # what a caller waits for
        best = ranking.scored[0].score if ranking.scored else float("-inf")
        return Outcome(
            question=q if not leave_out else Question(q.text, q.lang),
            ranked=[
                (s.article.id, s.sentence.start, s.sentence.end, s.text) for s in ranking.scored[:k]
            ],
            answered=engine.answers(ranking),
            confidence=best,
            short=answer.short_answer.text if answer and answer.short_answer else None,
            ms=ms,
            rescored=ranking.rescored,
        )

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            return Report(name, list(pool.map(ask, questions)))
    return Report(name, [ask(q) for q in questions])


def bm25_baseline(reader: IndexReader, questions: Sequence[Question], name: str) -> Report:
    """A plain BM25 sentence ranker (FTS5 over the same stemmed terms)."""
    report = Report(name)
    text_of: dict[str, str] = {}
    for q in questions:
        started = time.perf_counter()
        lang = detect_language(q.text)
        hits = reader.lexical_sentences(terms(q.text, lang), 5)
        rows = reader.sentences([r for r, _ in hits])
        ranked = []
        for r, _ in hits:
            s = rows[r]
            if s.article_id not in text_of:
                article = reader.article(s.article_id)
                text_of[s.article_id] = article.text if article else ""
            ranked.append((s.article_id, s.start, s.end, text_of[s.article_id][s.start : s.end]))
        ms = (time.perf_counter() - started) * 1000
        report.outcomes.append(
            Outcome(q, ranked, bool(ranked), hits[0][1] if hits else 0.0, None, ms)
        )
    return report


def rate(outcomes: list[Outcome], k: int) -> float:
    return sum(o.right_at(k) for o in outcomes) / len(outcomes) if outcomes else float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def build_engine(
    articles: list[Article],
    index_dir: Path,
    encoder: Encoder,
    settings: Settings,
    query_encoder: Encoder | None = None,
    rescorer: Encoder | None = None,
    build_rescorer: Encoder | None = None,
) -> QAEngine:
    """Build `articles` into `index_dir` with `encoder` and `settings.threads`;
    the engine answers with `query_encoder` (default: `encoder`) and the second
    sentence encoder `rescorer` (default: loaded on `settings.query_threads`),
    as a server would. `build_rescorer` encodes the build's sentences with the
    second encoder (default: the one `settings` names, loaded for this build:
    ~1 s a load, which a caller building several indexes can spare)."""
    from .indexing import build_from_articles

    build_from_articles(articles, index_dir, encoder, settings, rescorer=build_rescorer)
    return QAEngine(index_dir, query_encoder or encoder, settings, rescorer=rescorer)


class QuestionMemory:
    """An encoder that keeps the question vectors it makes and, while
    `replay` is on, gives them back for questions asked again instead of
    encoding them anew (the same vectors). scripts/evaluate.py asks PIAF's
    questions twice, the second time with their paragraphs left out: only
    the first pass is timed, and the second need not pay the encoders again."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.dim = encoder.dim
        self.replay = False
        self._vectors: dict[str, np.ndarray] = {}
        self._tokens: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __getattr__(self, name: str) -> Any:
        if name == "encoder":  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.encoder, name)  # count_tokens, where the encoder has it

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        if self.replay and texts and all(t in self._vectors for t in texts):
            return np.stack([self._vectors[t] for t in texts])
        vectors = self.encoder.encode_queries(texts)
        self._vectors.update(zip(texts, vectors, strict=True))
        return vectors

    def encode_question_and_words(
        self, question: str, words: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """qa.embed's `encode_question_and_words`, the question's vector kept
        and given back like `encode_queries`' (a question encoded with words
        differs from one encoded alone in the last bits)."""
        if self.replay and question in self._vectors:
            vectors = self.encoder.encode(words) if words else np.zeros((0, self.dim), np.float32)
            return self._vectors[question], vectors
        vector, vectors = encode_question_and_words(self.encoder, question, words)
        self._vectors[question] = vector
        return vector, vectors

    def encode_query_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's vector and token states of `text` (qa/token_match.py),
        kept and given back like `encode_queries`' vectors."""
        if self.replay and text in self._tokens:
            return self._tokens[text]
        found: tuple[np.ndarray, np.ndarray] = self.encoder.encode_query_tokens(text)  # type: ignore[attr-defined]
        self._tokens[text] = found
        return found


@contextmanager
def replaying(*memories: QuestionMemory | None) -> Iterator[None]:
    """Within, `memories` give back the vectors of questions already asked."""
    kept = [m for m in memories if m is not None]
    for memory in kept:
        memory.replay = True
    try:
        yield
    finally:
        for memory in kept:
            memory.replay = False
