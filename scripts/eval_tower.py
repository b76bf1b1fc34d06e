#!/usr/bin/env python3
"""Dense sentence search with stock USE questions against the question tower.

    eval_tower.py [--data ../shared/data] [--tower qa/models/question-tower.npz]

Every sentence of a dev set is encoded by stock USE under its article's title
(as an index holds it); each question is encoded by stock USE and by the
tower, and its sentences ranked by cosine alone. Rank-1 (and rank-5): the
best sentence is the gold one.

- PIAF dev: all sentences of the 185 paragraphs; gold = the sentence that
  holds the answer's start (also without titles: the issue's reference task).
- news-qa-dev: all sentences of the ten pages, French and English questions
  apart; gold = a sentence holding the question's gold substring.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np

from qa import evaluation as ev
from qa.embed import Encoder, load_encoder
from qa.encoders.use import TOWER_FILE
from qa.indexing import embedding_text
from qa.records import Article
from qa.segment import split_sentences

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--tower", type=Path, default=TOWER_FILE)
    args = parser.parse_args(argv)
    stock = load_encoder("use", 1, tower="none")
    tuned = load_encoder("use", 1, tower=str(args.tower))

    articles, questions = ev.load_piaf(args.data / "piaf" / "piaf-dev.json")
    located = [q for q in questions if q.span is not None]
    sets: list[tuple[str, list[Article], list[ev.Question], bool]] = [
        ("PIAF dev, sentences under their title", articles, located, True),
        ("PIAF dev, sentences alone", articles, located, False),
    ]
    pages = ev.page_articles(args.data)
    news = [q for q in ev.load_news(args.data) if q.gold is not None]
    for lang in ("fr", "en"):
        sets.append((f"news-qa-dev {lang}", pages, [q for q in news if q.lang == lang], True))
    print("| set | questions | sentences | rank-1 stock | tower | rank-5 stock | tower |")
    print("|---|---|---|---|---|---|---|")
    for name, found, asked, titled in sets:
        texts, gold = sentences_and_gold(found, asked, titled)
        vectors = stock.encode(texts)
        row = [name, str(len(asked)), str(len(texts))]
        ranks = [ranks_of(enc, asked, vectors, gold) for enc in (stock, tuned)]
        row += [f"{np.mean(r < k):.3f}" for k in (1, 5) for r in ranks]
        print("| " + " | ".join(row) + " |", flush=True)
    return 0


def sentences_and_gold(
    articles: Sequence[Article], questions: Sequence[ev.Question], titled: bool
) -> tuple[list[str], list[Callable[[int], bool]]]:
    """Every sentence's text as encoded, and per question whether row r is gold."""
    texts: list[str] = []
    plain: list[str] = []
    spans: list[tuple[str, int, int]] = []
    for a in articles:
        for s in split_sentences(a.text):
            texts.append(embedding_text(a, s.text) if titled else s.text)
            plain.append(s.text)
            spans.append((a.id, s.start, s.end))
    gold: list[Callable[[int], bool]] = []
    for q in questions:
        if q.span is not None:
            start, art = q.span[0], q.article_id
            rows = {r for r, (a, b, e) in enumerate(spans) if a == art and b <= start < e}
        else:
            rows = {r for r, t in enumerate(plain) if any(g in t for g in q.gold or ())}
        gold.append(rows.__contains__)
    return texts, gold


def ranks_of(
    encoder: Encoder,
    questions: Sequence[ev.Question],
    vectors: np.ndarray,
    gold: Sequence[Callable[[int], bool]],
) -> np.ndarray:
    """Per question, how many sentences rank above its best gold one."""
    q = encoder.encode_queries([x.text for x in questions])
    order = np.argsort(-(q @ vectors.T), axis=1)
    return np.array(
        [
            next((n for n, r in enumerate(row) if g(int(r))), len(row))
            for row, g in zip(order, gold, strict=True)
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
