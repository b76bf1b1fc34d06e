#!/usr/bin/env python3
"""Evaluate answers on the development sets and print one table.

Rank-1/rank-5: the cited sentence (first, or any of the first five) is right.
Seed: right when it contains a gold string. PIAF: right when it overlaps the
gold answer span. Abstention: on unanswerable seed questions and on PIAF
questions asked with their own paragraph left out of the index (hard
negatives). news-qa-dev: reader-style questions (French, and English about
the French articles) asked of an index of the seed and the ten dev web pages;
its unanswerable questions count as abstention figures. "cited": the right
sentence is among the three citations. With --pages, the seed's questions are also asked of an index
that holds the ten dev web pages too, as in a real pile of articles
("seed+pages"), and PIAF's questions of that index (off-topic). A plain BM25
sentence ranker runs on the same data as baseline.
"2nd enc": share of questions the second sentence encoder was asked about.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import _bootstrap  # noqa: F401

from qa import evaluation as ev
from qa.embed import available_cores, load_encoder, load_rescorer
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HEADER = [
    "set",
    "n",
    "rank-1",
    "rank-5",
    "cited",
    "BM25 r1",
    "BM25 r5",
    "r1/BM25",
    "abstained",
    "short ans",
    "2nd enc",
    "p50 ms",
    "p95 ms",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data", help="dev data folder"
    )
    parser.add_argument("--model", default=Settings().model, help="encoder")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--pages",
        action="store_true",
        help="also ask the seed's questions among the ten dev web pages, and PIAF's of "
        "them as off-topic questions (~25 s more)",
    )
    args = parser.parse_args(argv)
    # Builds use every core; questions are encoded with the threads they have
    # when serving: answer times are what a caller of the service waits.
    settings = Settings.from_env()
    encoder = load_encoder(args.model, settings.encoder_threads())
    # The three builds share one second encoder (on the build's threads).
    builder = load_rescorer(settings.rescore_model, settings.encoder_threads())
    # PIAF's questions are asked twice (the second time with their paragraphs
    # left out, untimed): the second pass takes their vectors from the first.
    asker = ev.QuestionMemory(load_encoder(args.model, settings.query_encoder_threads()))
    loaded = load_rescorer(settings.rescore_model, settings.query_encoder_threads())
    second = ev.QuestionMemory(loaded) if loaded is not None else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        _, seed_questions = ev.load_seed(args.data)
        seed = ev.build_engine(
            ev.seed_articles(args.data),
            Path(tmp) / "seed",
            encoder,
            settings,
            asker,
            second,
            builder,
        )
        seed_report = ev.run(seed, seed_questions, "seed")
        seed_bm25 = ev.bm25_baseline(seed.reader, seed_questions, "seed BM25")
        reports = [(seed_report, seed_bm25)]

        articles, piaf_questions = ev.load_piaf(args.data / "piaf" / "piaf-dev.json")
        piaf = ev.build_engine(
            articles, Path(tmp) / "piaf", encoder, settings, asker, second, builder
        )
        piaf_report = ev.run(piaf, piaf_questions, "piaf")
        piaf_bm25 = ev.bm25_baseline(piaf.reader, piaf_questions, "piaf BM25")
        with ev.replaying(asker, second):  # untimed: on every core
            piaf_out = ev.run(
                piaf, piaf_questions, "piaf left out", leave_out=True, threads=available_cores()
            )

        crowd = ev.build_engine(
            ev.seed_articles(args.data) + ev.page_articles(args.data),
            Path(tmp) / "crowd",
            encoder,
            settings,
            asker,
            second,
            builder,
        )
        news_questions = ev.load_news(args.data)
        news_report = ev.run(crowd, news_questions, "news")
        reports.append((news_report, ev.bm25_baseline(crowd.reader, news_questions, "news BM25")))
        crowd_report = off_topic = None
        if args.pages:
            crowd_report = ev.run(crowd, seed_questions, "seed+pages")
            reports.append(
                (crowd_report, ev.bm25_baseline(crowd.reader, seed_questions, "seed+pages BM25"))
            )
            # Off-topic: PIAF's Wikipedia questions asked of the news articles.
            off_topic = ev.run(
                crowd, [ev.Question(q.text, q.lang) for q in piaf_questions], "piaf off-topic"
            )
        reports.append((piaf_report, piaf_bm25))

    for report, baseline in reports:
        for lang in ("fr", "en"):
            ours = report.subset(lang)
            if not ours:
                continue
            base = baseline.subset(lang)
            abstained = sum(not o.answered for o in ours)
            rows.append(
                [
                    f"{report.name} {lang}",
                    str(len(ours)),
                    f"{ev.rate(ours, 1):.1%}",
                    f"{ev.rate(ours, 5):.1%}",
                    f"{ev.rate(ours, 3):.1%}",
                    f"{ev.rate(base, 1):.1%}",
                    f"{ev.rate(base, 5):.1%}",
                    f"{ev.rate(ours, 1) / ev.rate(base, 1):.2f}x" if ev.rate(base, 1) else "-",
                    f"{abstained}/{len(ours)}",
                    f"{sum(o.short_match() for o in ours) / len(ours):.1%}",
                    f"{sum(o.rescored for o in ours) / len(ours):.0%}",
                    f"{ev.median([o.ms for o in ours]):.1f}",
                    f"{ev.percentile([o.ms for o in ours], 95):.1f}",
                ]
            )
    print(_table(HEADER, rows, args.markdown))
    lines = [f"seed {_abstained(seed_report.subset(answerable=False))}"]
    if crowd_report:
        among = crowd_report.subset(answerable=False)
        lines.append(f"seed among the ten pages {_abstained(among)}")
    lines.append(f"news-qa-dev {_abstained(news_report.subset(answerable=False))}")
    lines.append(f"PIAF with own paragraph left out {_abstained(piaf_out.outcomes)}")
    if off_topic:
        lines.append(f"PIAF asked of the seed and the ten pages {_abstained(off_topic.outcomes)}")
    threshold = seed.settings.abstain_threshold
    print(f"\nunanswerable, abstained: {'; '.join(lines)} (abstain_threshold {threshold:.2f})")
    answerable = seed_report.subset() + piaf_report.subset()  # the crowd's would count twice
    print(f"answerable answered: {sum(o.answered for o in answerable)}/{len(answerable)}", end="")
    news = news_report.subset()
    print(f"; news-qa-dev answerable abstained: {sum(not o.answered for o in news)}/{len(news)}")
    sure = seed.settings.sure_threshold
    unsure = [f"answerable {_unsure(answerable, sure)}"]
    unsure.append(f"PIAF left out {_unsure(piaf_out.outcomes, sure)}")
    if off_topic:
        unsure.append(f"PIAF off-topic {_unsure(off_topic.outcomes, sure)}")
    print(f"answered but marked unsure: {'; '.join(unsure)} (sure_threshold {sure:.2f})")
    return 0


def _unsure(outcomes: list[ev.Outcome], sure: float) -> str:
    """How many answers score under `sure`, and (for answerable questions) how
    often those and the others cite a right sentence."""
    given = [o for o in outcomes if o.answered]
    low = [o for o in given if o.confidence < sure]
    text = f"{len(low)}/{len(given)}"
    if given and given[0].question.answerable:
        high = [o for o in given if o.confidence >= sure]
        text += f" ({ev.rate(low, 1):.0%} right at rank 1, against {ev.rate(high, 1):.0%})"
    return text


def _abstained(outcomes: list[ev.Outcome]) -> str:
    n = sum(not o.answered for o in outcomes)
    return f"{n}/{len(outcomes)} ({n / len(outcomes):.1%})" if outcomes else "-"


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), *(fmt.format(*r) for r in rows)])


if __name__ == "__main__":
    sys.exit(main())
