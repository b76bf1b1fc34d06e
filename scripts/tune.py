#!/usr/bin/env python3
"""Fit the answer-scoring weights and the abstention threshold on the dev sets.

The weights are a listwise logistic regression: for each question, a softmax
over its candidate sentences should put its mass on the right ones. PIAF
articles are split in two halves by title; weights fitted on one half (with
the seed questions) are scored on the other, so the held-out figures are what
to expect on unseen articles. The final weights are fitted on everything.

The threshold is then read off the trade-off between answering answerable
questions (seed and PIAF) and abstaining on unanswerable ones (the seed's,
PIAF questions asked with their own paragraph left out of the index, and
PIAF questions asked of the seed and the ten dev web pages: off-topic).

Two passes are fitted: the first without the second encoder's cosine
("rescore"), the second with it. The margin under which the second encoder is
asked is the first pass's lead of its best sentence over the next, taken at the
--rescore-share quantile of PIAF questions.

Prints the weights, margin and thresholds to put in `qa/answer.py` (FITTED
under the encoder's name, RESCORING under the second encoder's).
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
from qa.answer import FEATURES, RESCORE, candidates
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
        if engine.rescorer is not None:
            found = found.rescored(ranking.reader, engine.rescorer.encode_queries([q.text])[0])
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


def first_pass(items: list[Item]) -> list[Item]:
    """The items without the second encoder's cosine."""
    out = []
    for it in items:
        features = it.features.copy()
        features[:, RESCORE] = 0.0
        out.append(Item(features, it.labels, it.group))
    return out


def leads(items: list[Item], w: np.ndarray) -> np.ndarray:
    """How far each question's best sentence leads the next (inf: one candidate)."""
    out = []
    for it in items:
        scores = np.sort(it.features @ w)[::-1]
        out.append(scores[0] - scores[1] if len(scores) > 1 else np.inf)
    return np.array(out)


@dataclass
class Cascade:
    first: np.ndarray  # weights of the first pass
    second: np.ndarray  # of the second
    margin: float

    def asked(self, items: list[Item]) -> np.ndarray:
        return leads(first_pass(items), self.first) < self.margin

    def rank1(self, items: list[Item]) -> float:
        asked = self.asked(items)
        hits = [
            bool(it.labels[int(np.argmax(it.features @ (self.second if a else self.first)))])
            for it, a in zip(items, asked, strict=True)
            if len(it.labels)
        ]
        return sum(hits) / len(items) if items else float("nan")

    def scores(self, items: list[Item], below: tuple[float, float]) -> np.ndarray:
        """Best scores over the threshold of the pass that chose them."""
        asked = self.asked(items)
        one = best_scores(first_pass(items), self.first) - below[0]
        two = best_scores(items, self.second) - below[1]
        return np.where(asked, two, one)


def fit_cascade(items: list[Item], piaf: list[Item], share: float) -> Cascade:
    first = fit(first_pass(items))
    margin = float(np.quantile(leads(first_pass(piaf), first), share)) if share < 1 else np.inf
    return Cascade(first, fit(items), margin)


def ceiling(answerable_seed: np.ndarray, answerable_piaf: np.ndarray, refusals: float) -> float:
    """The highest threshold that answers every answerable seed question and
    refuses at most `refusals` of PIAF's."""
    return float(min(answerable_seed.min(), np.quantile(answerable_piaf, refusals)))


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
    parser.add_argument(
        "--rescore-share",
        type=float,
        default=0.2,
        help="share of PIAF questions the second encoder is asked about (0: never, 1: all); "
        "0.2 keeps most of the gain of 1 and the serving targets",
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
        crowd = ev.build_engine(
            ev.seed_articles(args.data) + ev.page_articles(args.data),
            Path(tmp) / "crowd",
            encoder,
            settings,
        )
        off_topic = collect(crowd, [ev.Question(q.text, q.lang) for q in piaf_q], lambda q: "off")

    def group(name: str) -> list[Item]:
        return [it for it in seed_items + piaf_items if it.group == name]

    print(
        f"encoder: {settings.model}; second encoder: {settings.rescore_model}, asked about "
        f"{args.rescore_share:.0%} of PIAF questions; features: {', '.join(FEATURES)}"
    )
    for train, test in (("piaf-a", "piaf-b"), ("piaf-b", "piaf-a")):
        c = fit_cascade(seed_items + group(train), group(train), args.rescore_share)
        print(
            f"fit on seed + {train}: held-out {test} rank-1 {c.rank1(group(test)):.1%} "
            f"(first pass alone {rank1(first_pass(group(test)), c.first):.1%}, second pass "
            f"on all {rank1(group(test), c.second):.1%}, second asked about "
            f"{c.asked(group(test)).mean():.0%}; train {c.rank1(group(train)):.1%}), "
            f"seed fr {c.rank1(group('seed-fr')):.0%} en {c.rank1(group('seed-en')):.0%}"
        )
    c = fit_cascade(seed_items + piaf_items, piaf_items, args.rescore_share)
    print(
        f"fit on all: PIAF rank-1 {c.rank1(piaf_items):.1%} (second asked about "
        f"{c.asked(piaf_items).mean():.0%}), seed fr {c.rank1(group('seed-fr')):.0%} en "
        f"{c.rank1(group('seed-en')):.0%} (second asked about {c.asked(seed_items).mean():.0%})"
    )
    # Each pass has its threshold, read off all its questions' scores.
    below = (
        ceiling(
            best_scores(first_pass(seed_items), c.first),
            best_scores(first_pass(piaf_items), c.first),
            args.max_refusals,
        ),
        ceiling(
            best_scores(seed_items, c.second),
            best_scores(piaf_items, c.second),
            args.max_refusals,
        ),
    )
    answerable_seed = c.scores(seed_items, below)
    answerable_piaf = c.scores(piaf_items, below)
    unanswerable_seed = c.scores(seed_negatives, below)
    left_out = c.scores(piaf_negatives, below)
    off = c.scores(off_topic, below)
    print(
        "\nabstain_threshold  answered(seed)  answered(PIAF)  abstained(seed unanswerable)  "
        "abstained(PIAF left out)  abstained(PIAF off-topic)"
    )
    for t in np.linspace(-1.0, 1.0, 9):
        print(
            f"{t:17.2f}  {np.mean(answerable_seed >= t):14.0%}  "
            f"{np.mean(answerable_piaf >= t):14.1%}  "
            f"{np.mean(unanswerable_seed < t):28.0%}  {np.mean(left_out < t):24.1%}  "
            f"{np.mean(off < t):25.1%}"
        )
    for name, w, threshold in (("first", c.first, below[0]), ("second", c.second, below[1])):
        print(f"\n{name} pass: weights = (")
        for feature, value in zip(FEATURES, w, strict=True):
            if value:
                print(f'    ("{feature}", {value:.3f}),')
        print(f")\nabstain_below = {threshold - 0.005:.2f}")
    print(f"\nmargin = {c.margin:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
