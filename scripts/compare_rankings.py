#!/usr/bin/env python3
"""Check that a change of code leaves the answers as they were.

    compare_rankings.py dump --index DIR OUT.pkl [--limit N]
    compare_rankings.py compare BEFORE.pkl AFTER.pkl

`dump` asks PIAF's dev questions (../shared/data/piaf/piaf-dev.json) of a
built index, in process as scripts/evaluate.py does, and keeps for each
question what the answer rests on: whether the second encoder was asked, the
passages, every candidate sentence with its score and feature row (best
first), and the answer as /ask gives it (its time aside). Run it from two
checkouts over the same index (built once: `scripts/build_index.py`, or the
PIAF paragraphs as evaluate.py builds them), then `compare` the two dumps: it
names the questions whose passages, sentence order or answer differ and
prints the largest difference of each feature. A speed-up must show no
differing question and feature differences at float rounding (~1e-7).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np

from qa import evaluation as ev
from qa.embed import load_encoder
from qa.features import FEATURES
from qa.pipeline import QAEngine
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT.parent / "shared" / "data" / "piaf" / "piaf-dev.json"


def dump(index: Path, out: Path, limit: int | None) -> None:
    settings = Settings.from_env()
    engine = QAEngine(index, load_encoder(settings.model, settings.query_encoder_threads()))
    _, questions = ev.load_piaf(PIAF)
    kept = []
    for q in questions[:limit]:
        answer, ranking = engine.ask_ranked(q.text, settings.top_k)
        shown = dataclasses.asdict(answer)
        shown.pop("took_ms")
        kept.append(
            {
                "question": q.text,
                "rescored": ranking.rescored,
                "passages": [c.chunk.row for c in ranking.chunks],
                "sentences": [s.sentence.row for s in ranking.scored],
                "scores": np.array([s.score for s in ranking.scored]),
                "features": np.array([s.features for s in ranking.scored]),
                "answer": json.dumps(shown, sort_keys=True),
            }
        )
    out.write_bytes(pickle.dumps(kept))
    print(f"{len(kept)} questions -> {out}")


def compare(before: Path, after: Path) -> int:
    old, new = pickle.loads(before.read_bytes()), pickle.loads(after.read_bytes())
    if [q["question"] for q in old] != [q["question"] for q in new]:
        print("the two dumps do not hold the same questions")
        return 1
    differing = []
    largest = np.zeros(len(FEATURES))
    score = 0.0
    for a, b in zip(old, new, strict=True):
        same = all(a[k] == b[k] for k in ("rescored", "passages", "sentences", "answer"))
        if not same:
            differing.append(a["question"])
        elif len(a["sentences"]):
            largest = np.maximum(largest, np.abs(a["features"] - b["features"]).max(axis=0))
            score = max(score, float(np.abs(a["scores"] - b["scores"]).max()))
    for question in differing[:10]:
        print(f"differs: {question}")
    print(f"{len(differing)} of {len(old)} questions differ")
    print("largest feature differences (questions that agree):")
    for name, value in zip(FEATURES, largest, strict=True):
        print(f"  {name:<15} {value:.2g}")
    print(f"  {'score':<15} {score:.2g}")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump", help="rank PIAF's questions and keep the rankings")
    dumping.add_argument("--index", type=Path, required=True, help="a built index folder")
    dumping.add_argument("out", type=Path)
    dumping.add_argument("--limit", type=int, help="only the first N questions")
    comparing = commands.add_parser("compare", help="compare two dumps")
    comparing.add_argument("before", type=Path)
    comparing.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.index, args.out, args.limit)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
