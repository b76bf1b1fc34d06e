#!/usr/bin/env python3
"""Train the answer model from the training sets and write its file.

    train.py [--data ../shared/data] [--out models/answer-model.json] [--seed 0]

With --tower-out FILE, first fine-tunes USE's question tower
(scripts/train_tower.py) and fits the answer model on the questions it reads
(the answer model's features read the question's vector); by default
questions are read by stock USE: fitted on the tower's questions, the answer
model did worse on the dev sets (docs/answer-scoring.md). Then builds an
index of the PIAF training paragraphs (French) and one of the SQuAD training
paragraphs (English), asks their questions through the ranking pass
the server runs, and fits the sentence scorer on the candidates (a listwise
logistic regression, qa/training.py): once over every feature (indexes with a
second encoder) and once without the second encoder's cosine (indexes built
without one). The abstention threshold is the score that still answers
--answered of the training questions; questions asked with their whole
article hidden show what it refuses. Only the training files are read: the
dev sets stay held out (scripts/evaluate.py measures on them).

Prints held-out figures (fitted on half of the training articles, scored on
the other half, both ways), then writes the model file with the command, the
data and the figures. Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401
import numpy as np
import train_tower

from qa import evaluation as ev
from qa import training as tr
from qa.embed import load_encoder
from qa.encoders.use import TOWER_FILE
from qa.scorer import FEATURES, MODEL_FILE, SECOND_ENCODER_FEATURES
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=MODEL_FILE, help="model file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--questions", type=int, default=1500, help="questions drawn from each training file"
    )
    parser.add_argument(
        "--negatives",
        type=int,
        default=400,
        help="questions of each file also asked with their article hidden",
    )
    parser.add_argument(
        "--answered",
        type=float,
        default=0.995,
        help="share of answerable training questions the threshold answers (they share "
        "more words with their sentence than readers' questions do: a stricter share "
        "abstains on readers' questions that are answered)",
    )
    parser.add_argument(
        "--second-share",
        type=float,
        default=0.5,
        help="share of training questions the first pass puts to the second encoder",
    )
    parser.add_argument(
        "--articles",
        type=int,
        default=0,
        help="keep only this many paragraphs of each file (0: all; a smoke test uses few)",
    )
    parser.add_argument(
        "--examples",
        type=Path,
        help="save the collected examples here (pickle), or load them if it exists: "
        "refits without asking the questions again",
    )
    parser.add_argument(
        "--tower-out",
        default="none",
        help="fine-tune USE's question tower first (scripts/train_tower.py) and write it "
        f"here (e.g. {TOWER_FILE}); the answer model is then fitted on the questions it "
        "reads. Default 'none': questions read by stock USE, no tower trained (nor when "
        "--examples are loaded)",
    )
    parser.add_argument(
        "--tower-from",
        type=Path,
        help="read questions with this already fine-tuned tower (scripts/train_tower.py "
        "writes it, deterministically for a --seed) instead of fine-tuning one again",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    settings = Settings.from_env()
    tower = "none" if args.tower_out == "none" else args.tower_out
    if args.tower_from:
        tower = str(args.tower_from)
    elif tower != "none" and not (args.examples and args.examples.exists()):
        print("question tower: fine-tuning...", file=sys.stderr, flush=True)
        options = ["--data", str(args.data), "--seed", str(args.seed), "--out", tower]
        if args.articles:
            options += ["--articles", str(args.articles)]
        if train_tower.main(options):
            return 1
    encoder = load_encoder(settings.model, settings.encoder_threads(), tower)
    asker = load_encoder(settings.model, settings.query_encoder_threads(), tower)
    sets = {
        "piaf": ev.load_squad(args.data / "piaf" / "piaf-train.json", "fr", "piaf"),
        "squad": ev.load_squad(args.data / "squad" / "squad-train-en.json", "en", "squad"),
    }
    examples: list[tr.Example] = []
    title_of: dict[str, str] = {}
    if args.examples and args.examples.exists():
        # The time is the run's that asked the questions: loading is no training.
        examples, title_of, seconds = pickle.loads(args.examples.read_bytes())
        started -= seconds
        sets = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (articles, questions) in sets.items():
            if args.articles:
                articles = articles[: args.articles]
                kept = {a.id for a in articles}
                questions = [q for q in questions if q.article_id in kept]
            title_of.update({a.id: a.title for a in articles})
            same_title: dict[str, frozenset[str]] = {}
            for a in articles:
                same_title[a.title] = same_title.get(a.title, frozenset()) | {a.id}
            print(f"{name}: indexing {len(articles)} paragraphs...", file=sys.stderr, flush=True)
            engine = ev.build_engine(articles, Path(tmp) / name, encoder, settings, asker)
            asked = tr.sample(questions, args.questions, args.seed)
            print(f"{name}: asking {len(asked)} questions...", file=sys.stderr, flush=True)
            examples += tr.collect(engine, asked)

            def article_of(
                q: ev.Question, same: dict[str, frozenset[str]] = same_title
            ) -> frozenset[str]:
                return same[title_of[q.article_id or ""]]

            hide = tr.sample(questions, args.negatives, args.seed + 1)
            examples += tr.collect(engine, hide, article_of)
            engine.reader.close()

    if args.examples and not args.examples.exists():
        seconds = time.perf_counter() - started
        args.examples.write_bytes(pickle.dumps((examples, title_of, seconds)))

    def half(ex: tr.Example) -> str:
        return "ab"[zlib.crc32(title_of[ex.question.article_id or ""].encode()) % 2]

    everything = list(range(len(FEATURES)))
    without = [i for i in everything if i not in SECOND_ENCODER_FEATURES]
    figures: dict[str, object] = {}
    for name, columns in (("second", everything), ("first", without)):
        for train, test in (("a", "b"), ("b", "a")):
            w = tr.fit_listwise([e for e in examples if half(e) == train], columns, len(FEATURES))
            held = [e for e in examples if half(e) == test]
            for lang in ("fr", "en"):
                r = tr.rank1([e for e in held if e.question.lang == lang], w)
                if r == r:  # not NaN: a half may hold no question of a language
                    figures[f"{name} held-out {test} {lang} rank-1"] = round(r, 4)
    scorers: dict[str, dict[str, object]] = {}
    for name, columns in (("second", everything), ("first", without)):
        w = tr.fit_listwise(examples, columns, len(FEATURES))
        answerable = tr.best_scores([e for e in examples if e.answerable], w)
        hidden = tr.best_scores([e for e in examples if not e.answerable], w)
        below = tr.threshold(answerable, hidden, args.answered)
        figures[f"{name} train rank-1"] = round(tr.rank1(examples, w), 4)
        figures[f"{name} hidden-article abstained"] = round(float(np.mean(hidden < below)), 4)
        scorers[name] = {
            "weights": {f: round(float(v), 4) for f, v in zip(FEATURES, w, strict=True) if v},
            "abstain_below": round(below, 4),
        }
    # The first pass asks the second encoder about the questions it is least
    # sure of: the lowest best scores and the closest calls, --second-share
    # of the training questions in all (the second encoder costs 10-30 ms a
    # question on one core, by length: asking it about every question halves
    # what a server answers a second).
    first = tr.fit_listwise(examples, without, len(FEATURES))
    first_below = float(scorers["first"]["abstain_below"])  # type: ignore[arg-type]
    ranked = [e for e in examples if e.answerable and len(e.labels) > 1]
    margins = tr.best_scores(ranked, first) - first_below
    leads = np.array([np.subtract(*np.sort(e.features @ first)[::-1][:2]) for e in ranked])
    for q in np.linspace(0.0, 1.0, 201):
        unsure, close = np.quantile(margins, q), np.quantile(leads, q)
        if np.mean((margins < unsure) | (leads < close)) >= args.second_share:
            break
    scorers["first"]["ask_second"] = {
        "unsure_below": round(float(unsure), 4),
        "close_below": round(float(close), 4),
    }
    figures["second encoder asked, training questions"] = round(
        float(np.mean((margins < unsure) | (leads < close))), 4
    )
    for key, value in figures.items():
        print(f"{key}: {value}")
    model = {
        "about": "Answer model: weights of the sentence scorer over qa/scorer.py FEATURES "
        "and the score under which to abstain. 'second': indexes with a second encoder "
        "(its cosine is the 'rescore' feature); 'first': indexes without one.",
        "command": " ".join(["python scripts/train.py", *_options(argv)]),
        "data": {
            "piaf/piaf-train.json": "French, questions sampled by --seed",
            "squad/squad-train-en.json": "English, questions sampled by --seed",
        },
        "encoders": {
            "first": settings.model,
            "second": settings.rescore_model,
            "question tower": Path(tower).name if tower != "none" else "none",
        },
        "seed": args.seed,
        "examples": {
            "answerable": sum(e.answerable for e in examples),
            "article hidden": sum(not e.answerable for e in examples),
        },
        "figures": figures,
        "train_seconds": round(time.perf_counter() - started, 1),
        **scorers,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(model, indent=1, ensure_ascii=False) + "\n")
    args.out.with_suffix(".md").write_text(model_card(model, args.out.name))
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


def _options(argv: list[str] | None) -> list[str]:
    """The command line's options that decide the model (--examples only caches)."""
    given = list(sys.argv[1:] if argv is None else argv)
    if "--examples" in given:
        at = given.index("--examples")
        del given[at : at + 2]
    return given


def model_card(model: dict[str, Any], name: str) -> str:
    """The model's card: what it is, how it was made, what it scored."""
    lines = [
        f"# {name}",
        "",
        "The answer model of newsqa: the weights of the sentence scorer over the "
        "features of `qa/features.py` and the score under which the service abstains "
        "(`qa/scorer.py` loads it at start). Written by `scripts/train.py`, with this "
        "card; do not edit by hand.",
        "",
        f"- Command: `{model['command']}` (seed {model['seed']}, "
        f"{model['train_seconds']:.0f} s on this machine)",
        f"- Encoders: {model['encoders']['first']}, second {model['encoders']['second']}, "
        f"questions read by the question tower {model['encoders']['question tower']}",
        "- Data (training files only; the dev sets are never read):",
        *(f"  - `{path}`: {what}" for path, what in model["data"].items()),
        f"- Examples: {model['examples']['answerable']} answerable questions, "
        f"{model['examples']['article hidden']} asked with their article hidden",
        "- Method: listwise logistic regression (a softmax over each question's "
        "candidate sentences, from the server's own ranking pass); the abstention "
        "threshold answers the `--answered` share of answerable training questions.",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in model["figures"].items()),
        "",
        "Held-out figures: fitted on half of the training articles (split by title), "
        "scored on the other half. Figures on the dev sets: `scripts/evaluate.py`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
