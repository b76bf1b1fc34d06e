#!/usr/bin/env python3
"""Fine-tune USE's question tower on the training sets and write its file.

    train_tower.py [--data ../shared/data] [--out qa/models/question-tower.npz] [--seed 0]

Pairs each training question (piaf-train, squad-train-en) with the sentence
that holds its answer's start; the sentences keep their stock USE vectors
(encoded once, as an index encodes them: under the article's title) and a
copy of USE learns to put the question next to its sentence, against the
other sentences of its article and of the batch (qa/tower.py). A tenth of
the training articles (by title) is held out to choose the epoch. Only the
training files are read; scripts/eval_tower.py measures on the dev sets.

Needs torch (the test extra); serving reads the written file with numpy.
Deterministic for a given --seed; one thread.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np
import torch

from qa import evaluation as ev
from qa.embed import load_encoder
from qa.encoders.use import TOWER_FILE
from qa.tower import Pairs, export, fine_tune, make_pairs

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=TOWER_FILE, help="tower file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rate", type=float, default=5e-5, help="AdamW learning rate")
    parser.add_argument("--batch", type=int, default=32, help="questions per step")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument(
        "--held-out",
        type=float,
        default=0.1,
        help="share of training titles kept to choose the epoch",
    )
    parser.add_argument(
        "--against-all",
        action="store_true",
        help="every training sentence is a negative (default: the sentences of the "
        "batch's articles)",
    )
    parser.add_argument(
        "--articles",
        type=int,
        default=0,
        help="keep only this many paragraphs of each file (0: all; a smoke test uses few)",
    )
    parser.add_argument(
        "--sentences",
        type=Path,
        help="cache of the sentence vectors (.npy): loaded if it exists, else written",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    articles, questions = [], []
    for path, lang, prefix in (
        (args.data / "piaf" / "piaf-train.json", "fr", "piaf"),
        (args.data / "squad" / "squad-train-en.json", "en", "squad"),
    ):
        found, asked = ev.load_squad(path, lang, prefix)
        if args.articles:
            found = found[: args.articles]
        articles += found
        questions += asked
    pairs = make_pairs(articles, questions)
    vectors = sentence_vectors(pairs, args.sentences)
    titles = sorted(set(pairs.title_of.values()))
    kept = set(random.Random(args.seed).sample(titles, max(1, round(args.held_out * len(titles)))))
    held_out = {a for a, t in pairs.title_of.items() if t in kept}
    print(
        f"{len(pairs.questions)} questions, {len(pairs.sentences)} sentences, "
        f"{len(kept)} of {len(titles)} titles held out",
        file=sys.stderr,
        flush=True,
    )
    fit = fine_tune(
        pairs,
        vectors,
        held_out,
        epochs=args.epochs,
        batch=args.batch,
        rate=args.rate,
        temperature=args.temperature,
        seed=args.seed,
        against_all=args.against_all,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    seconds = time.perf_counter() - started
    given = list(sys.argv[1:] if argv is None else argv)
    if "--sentences" in given:  # a cache, not a choice
        at = given.index("--sentences")
        del given[at : at + 2]
    about = {
        "command": " ".join(["python scripts/train_tower.py", *map(str, given)]),
        "data": "piaf/piaf-train.json, squad/squad-train-en.json (training files only)",
        "held_out_rank1": ", ".join(f"{s:.4f}" for s in fit.held_out),
        "epoch_kept": str(fit.epochs),
        "train_seconds": f"{seconds:.0f}",
    }
    export(fit.params, args.out, about)
    for key, value in about.items():
        print(f"{key}: {value}")
    print(f"wrote {args.out} in {seconds:.0f} s", file=sys.stderr)
    return 0


def sentence_vectors(pairs: Pairs, cache: Path | None) -> np.ndarray:
    """Stock USE vectors of the training sentences (what an index holds)."""
    if cache and cache.exists():
        vectors = np.load(cache)
        if len(vectors) == len(pairs.sentences):
            return vectors
    encoder = load_encoder("use", 1, tower="none")
    vectors = np.concatenate(
        [encoder.encode(pairs.sentences[i : i + 256]) for i in range(0, len(pairs.sentences), 256)]
    )
    if cache:
        np.save(cache, vectors)
    return vectors


if __name__ == "__main__":
    sys.exit(main())
