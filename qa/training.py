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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .evaluation import Outcome, Question
from .features import FEATURES
from .pipeline import QAEngine


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
