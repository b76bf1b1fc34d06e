"""Fitting the answer model on the training sets (scripts/train.py).

Each training question is put through the same ranking pass the server runs
(`QAEngine.rank`); the feature rows of its candidate sentences and which of
them overlap the gold answer are an `Example`. The sentence scorer is a
listwise logistic regression over those rows: for each question, a softmax
over its candidates should put its mass on the right ones.

Questions asked with their whole source article hidden (every paragraph of
the same title) are `Example`s with no right candidate: what an unanswerable
question looks like. The abstention threshold is read off the best scores of
both kinds.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .evaluation import Outcome, Question
from .features import FEATURES
from .lexical import content_words, terms
from .pipeline import QAEngine
from .records import Article
from .store import IndexReader, Vocabulary

# A paraphrased question's word for a word of its answering sentence: the
# vocabulary's nearest word of another stem, within these cosines (USE word
# vectors): near enough to keep the meaning, never the same word.
PARAPHRASE_COSINE = (0.45, 0.85)


@dataclass(frozen=True)
class Example:
    """One question's candidates, as the ranking pass saw them."""

    question: Question
    features: np.ndarray  # (candidates, features) float32
    labels: np.ndarray  # (candidates,) bool: the sentence overlaps the gold answer
    answerable: bool  # False: the question's article was hidden


def collect(
    engine: QAEngine,
    questions: Sequence[Question],
    hidden: Callable[[Question], frozenset[str]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Example]:
    """An `Example` per question. With `hidden`, each question is asked with
    the articles it names left out (an unanswerable example)."""
    examples = []
    for n, q in enumerate(questions):
        exclude = hidden(q) if hidden else frozenset()
        ranking = engine.rank(q.text, 5, exclude)
        labels = np.array(
            [
                not exclude
                and Outcome(
                    q, [(s.article.id, s.sentence.start, s.sentence.end, s.text)], True, 0, None, 0
                ).right_at(1)
                for s in ranking.scored
            ],
            dtype=bool,
        )
        features = np.array([s.features for s in ranking.scored], dtype=np.float32)
        examples.append(
            Example(q, features.reshape(len(labels), len(FEATURES)), labels, not exclude)
        )
        if progress:
            progress(n + 1)
    return examples


def fit_listwise(
    examples: Sequence[Example],
    columns: Sequence[int],
    n_features: int,
    l2: float = 1e-2,
    steps: int = 400,
    rate: float = 0.5,
) -> np.ndarray:
    """Weights (n_features,) of a listwise logistic regression over the
    `columns` of the feature rows (the others weigh 0), by gradient descent
    (convex: no restarts). Features are standardised while fitting: cosines
    of one encoder may spread over 0.1 where a share spreads over 1, and one
    step size must suit both."""
    cols = list(columns)
    usable = [
        (ex.features[:, cols].astype(np.float64), ex.labels / ex.labels.sum())
        for ex in examples
        if ex.labels.any()
    ]
    scale = np.vstack([x for x, _ in usable]).std(axis=0) + 1e-6
    usable = [(x / scale, target) for x, target in usable]
    w = np.zeros(len(cols))
    for _ in range(steps):
        grad = np.zeros_like(w)
        for x, target in usable:
            z = x @ w
            p = np.exp(z - z.max())
            grad += x.T @ (p / p.sum() - target)
        w -= rate * (grad / len(usable) + l2 * w)
    out = np.zeros(n_features)
    out[cols] = w / scale
    return out


def best_scores(examples: Sequence[Example], w: np.ndarray) -> np.ndarray:
    """Each question's best candidate score (-inf when it has none)."""
    return np.array(
        [float((ex.features @ w).max()) if len(ex.labels) else -np.inf for ex in examples]
    )


def rank1(examples: Sequence[Example], w: np.ndarray) -> float:
    """Share of answerable examples whose best-scored candidate is right."""
    answerable = [ex for ex in examples if ex.answerable]
    hits = [bool(ex.labels[int(np.argmax(ex.features @ w))]) for ex in answerable if len(ex.labels)]
    return sum(hits) / len(answerable) if answerable else float("nan")


def threshold(answerable: np.ndarray, unanswerable: np.ndarray, answered: float) -> float:
    """The score under which to abstain: the highest that still answers the
    share `answered` of answerable questions. (Unanswerable scores only
    report what it costs: they come from other articles of the same
    collection, the hardest case, and would pull it up past right answers.)"""
    del unanswerable
    return float(np.quantile(answerable, 1.0 - answered))


def sample(items: Sequence[Question], n: int, seed: int) -> list[Question]:
    """`n` of `items` (all when fewer), the same ones for the same seed."""
    if n >= len(items):
        return list(items)
    return random.Random(seed).sample(list(items), n)


def paraphrase(
    question: Question, sentence: str, vocabulary: Vocabulary, rng: random.Random
) -> Question | None:
    """`question` reworded as readers ask: training questions share far more
    words with their sentence than readers' questions do (docs/answer-scoring.md),
    so a model fitted on them leans on exact matches. Each lower-case content
    word it shares (by stem) with its answering sentence is, with even odds,
    swapped for the vocabulary's nearest word of another stem (within
    PARAPHRASE_COSINE) or dropped when none is near. Names stay, as readers
    keep them. None when nothing is shared."""
    said = set(terms(sentence, question.lang))
    row = {w: i for i, w in enumerate(vocabulary.words)}
    text = question.text
    changed = False
    for word in content_words(question.text, question.lang):
        stem = terms(word, question.lang)
        if not stem or stem[0] not in said or rng.random() < 0.5:
            continue
        if not re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text):
            continue  # capitalised in the question: a name (content words are lower-cased)
        other = ""
        if word in row:
            cosines = vocabulary.vectors @ vocabulary.vectors[row[word]]
            lo, hi = PARAPHRASE_COSINE
            for i in np.argsort(-cosines):
                if cosines[i] < lo:
                    break
                near = terms(vocabulary.words[i], question.lang)
                if cosines[i] <= hi and near and near[0] != stem[0] and near[0] not in said:
                    other = vocabulary.words[i]
                    break
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", other, text, count=1)
        changed = True
    if not changed:
        return None
    return replace(question, text=re.sub(r"\s+", " ", text).strip())


def paraphrased(
    reader: IndexReader,
    articles: Sequence[Article],
    questions: Sequence[Question],
    n: int,
    seed: int,
) -> list[Question]:
    """`paraphrase` of `n` of `questions` (those with a span in an article of
    `reader`), reworded with the words of `reader`'s vocabulary."""
    vocabulary = reader.vocabulary()
    texts = {a.id: a.text for a in articles}
    rng = random.Random(seed)
    out = []
    for q in sample([q for q in questions if q.span and q.article_id in texts], n, seed):
        assert q.span is not None and q.article_id is not None
        around = [s for s in reader.article_sentences(q.article_id) if s.start <= q.span[0] < s.end]
        if not around:
            continue
        sentence = texts[q.article_id][around[0].start : around[0].end]
        reworded = paraphrase(q, sentence, vocabulary, rng)
        if reworded is not None:
            out.append(reworded)
    return out
