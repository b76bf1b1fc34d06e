#!/usr/bin/env python3
"""Fit the answer-scoring weights and the abstention threshold on the dev sets.

The weights are a listwise logistic regression: for each question, a softmax
over its candidate sentences should put its mass on the right ones. PIAF
articles are split in two halves by title; weights fitted on one half (with
the seed questions) are scored on the other, so the held-out figures are what
to expect on unseen articles. The final weights are fitted on everything.

The threshold is then read off the trade-off between answering answerable
questions (seed and PIAF) and abstaining on unanswerable ones (the seed's,
and PIAF questions asked with their own paragraph left out of the index).

Prints the weights and threshold to put in `qa/answer.py` (FITTED, under the
name of the sentence encoder, `sentence_model` in qa.settings).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np

from qa import evaluation as ev
from qa.answer import FEATURES, candidates
from qa.embed import load_encoder
from qa.pipeline import QAEngine
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Item:
    features: np.ndarray  # (candidates, features)
    labels: np.ndarray  # (candidates,) bool: the sentence is a right answer
    group: str  # "seed-fr", "seed-en", "piaf-a", "piaf-b", or "negative"


def collect(
    engine: QAEngine,
    questions: list[ev.Question],
    group_of: Callable[[ev.Question], str],
    leave_out: bool = False,
) -> list[Item]:
    items = []
    for q in questions:
        exclude = frozenset([q.article_id]) if leave_out and q.article_id else frozenset()
        ranking = engine.rank(q.text, 5, exclude)
        found = candidates(ranking.reader, ranking.query, ranking.chunks, engine.tuning.retrieval)
        labels = np.array(
            [
                not leave_out
                and ev.Outcome(
                    q, [(a.id, s.start, s.end, a.text[s.start : s.end])], True, 0, None, 0
                ).right_at(1)
                for s, a in zip(found.sentences, found.articles, strict=True)
            ],
            dtype=bool,
        )
        items.append(Item(found.features, labels, group_of(q)))
    return items


def rank1(items: list[Item], w: np.ndarray) -> float:
    hits = [bool(it.labels[int(np.argmax(it.features @ w))]) for it in items if len(it.labels)]
    return sum(hits) / len(items) if items else float("nan")


def fit(items: list[Item], l2: float = 1e-2, steps: int = 400, rate: float = 0.5) -> np.ndarray:
    """Listwise logistic regression by gradient descent (convex, so no restarts).

    Features are standardised while fitting: cosines of one encoder may spread
    over 0.1 where a share spreads over 1, and one step size must suit both.
    """
    usable = [(it.features, it.labels / it.labels.sum()) for it in items if it.labels.any()]
    scale = np.vstack([x for x, _ in usable]).std(axis=0) + 1e-6
    usable = [(x / scale, target) for x, target in usable]
    w = np.zeros(len(FEATURES))
    for _ in range(steps):
        grad = np.zeros_like(w)
        for x, target in usable:
            z = x @ w
            p = np.exp(z - z.max())
            grad += x.T @ (p / p.sum() - target)
        w -= rate * (grad / len(usable) + l2 * w)
    return w / scale


def best_scores(items: list[Item], w: np.ndarray) -> np.ndarray:
    return np.array([float((it.features @ w).max()) if len(it.labels) else -np.inf for it in items])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--max-refusals",
        type=float,
        default=0.03,
        help="share of answerable PIAF questions the threshold may refuse",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    encoder = load_encoder(settings.model, settings.encoder_threads())
    with tempfile.TemporaryDirectory() as tmp:
        _, seed_q = ev.load_seed(args.data)
        seed = ev.build_engine(ev.seed_articles(args.data), Path(tmp) / "seed", encoder, settings)
        articles, piaf_q = ev.load_piaf(args.data / "piaf" / "piaf-dev.json")
        title_of = {a.id: a.title for a in articles}
        piaf = ev.build_engine(articles, Path(tmp) / "piaf", encoder, settings)

        def half(q: ev.Question) -> str:
            return "piaf-" + "ab"[zlib.crc32(title_of[q.article_id or ""].encode()) % 2]

        seed_items = collect(seed, [q for q in seed_q if q.answerable], lambda q: f"seed-{q.lang}")
        seed_negatives = collect(
            seed, [q for q in seed_q if not q.answerable], lambda q: "negative"
        )
        piaf_items = collect(piaf, piaf_q, half)
        piaf_negatives = collect(piaf, piaf_q, lambda q: "negative", leave_out=True)

    def group(name: str) -> list[Item]:
        return [it for it in seed_items + piaf_items if it.group == name]

    print(f"sentence encoder: {settings.sentence_model}; features: {', '.join(FEATURES)}")
    for train, test in (("piaf-a", "piaf-b"), ("piaf-b", "piaf-a")):
        w = fit(seed_items + group(train))
        print(
            f"fit on seed + {train}: held-out {test} rank-1 {rank1(group(test), w):.1%} "
            f"(train {rank1(group(train), w):.1%}), seed fr {rank1(group('seed-fr'), w):.0%} "
            f"en {rank1(group('seed-en'), w):.0%}"
        )
    w = fit(seed_items + piaf_items)
    print(
        f"fit on all: PIAF rank-1 {rank1(piaf_items, w):.1%}, seed fr "
        f"{rank1(group('seed-fr'), w):.0%} en {rank1(group('seed-en'), w):.0%}"
    )

    answerable_seed = best_scores(seed_items, w)
    answerable_piaf = best_scores(piaf_items, w)
    unanswerable_seed = best_scores(seed_negatives, w)
    left_out = best_scores(piaf_negatives, w)
    # The highest threshold that answers every answerable seed question and
    # refuses at most --max-refusals of PIAF.
    ceiling = min(answerable_seed.min(), np.quantile(answerable_piaf, args.max_refusals))
    print(
        "\nthreshold  answered(seed)  answered(PIAF)  abstained(seed unanswerable)  "
        "abstained(PIAF left out)"
    )
    for t in sorted({*np.linspace(ceiling - 1.5, ceiling + 0.5, 9).round(2), round(ceiling, 2)}):
        print(
            f"{t:9.2f}  {np.mean(answerable_seed >= t):14.0%}  "
            f"{np.mean(answerable_piaf >= t):14.1%}  "
            f"{np.mean(unanswerable_seed < t):28.0%}  {np.mean(left_out < t):24.1%}"
        )
    print("\nweights = (")
    for name, value in zip(FEATURES, w, strict=True):
        print(f'    ("{name}", {value:.3f}),')
    print(f")\nabstain_below = {ceiling - 0.005:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
