#!/usr/bin/env python3
"""How much of a build is encoding? Build time against the encoder alone.

For three corpora (the seed article, the ten dev pages, the 185 PIAF paragraphs)
this measures, side by side in one run and with the encoders (passages, and
and the second sentence encoder, qa.settings `rescore_model`) loaded and warmed
up before any timing:

  read    reading and cleaning the files into articles (once per repetition)
  build   qa.indexing.build_from_articles into a temporary folder, articles read
  encoder the encoders alone on exactly the texts the build encodes: the sentences
          and chunks as embedded (qa.indexing.embedding_text), the sentences
          again by the second encoder, and the vocabulary words, found by
          re-running the same segmentation and chunking, in the build's batches

Each measurement is repeated --repeat times (interleaved) and the medians are
printed. The target is build/encoder <= 1.3; when a corpus misses it (or with
--profile) the build is run under cProfile and the time outside the encoder is
broken down by function.

    bench_build.py [--repeat 3] [--model use-multilingual-v3] [--profile] [--only seed]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _bootstrap  # noqa: F401
import numpy as np

from qa import indexing
from qa.chunk import chunk_article
from qa.embed import Encoder, available_cores, load_encoder, load_rescorer
from qa.evaluation import load_piaf
from qa.ingest import read_file, read_files
from qa.lexical import content_words
from qa.records import Article
from qa.segment import split_sentences
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TARGET = 1.3
BATCH = 256  # qa.indexing.encoding.encode_in_batches


@dataclass
class Corpus:
    name: str
    read: Callable[[], list[Article]]
    articles: list[Article] = field(default_factory=list)
    sentence_texts: list[str] = field(default_factory=list)  # as embedded
    chunk_texts: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    sentences: int = 0
    chunks: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)

    def median(self, what: str) -> float:
        return statistics.median(self.times[what])


def corpora(data: Path) -> list[Corpus]:
    def seed() -> list[Article]:
        return read_file(ROOT / "corpus" / "seed-article.txt")[0]

    def pages() -> list[Article]:
        articles, errors = read_files(sorted((data / "html").glob("*.html")))
        if errors:
            raise SystemExit(f"dev pages: {errors[0]}")
        return articles

    def piaf() -> list[Article]:
        return load_piaf(data / "piaf" / "piaf-dev.json")[0]

    return [Corpus("seed", seed), Corpus("dev pages", pages), Corpus("PIAF", piaf)]


def encoded_texts(
    articles: Sequence[Article], settings: Settings
) -> tuple[list[str], list[str], list[str]]:
    """(sentence texts, chunk texts, vocabulary words): exactly what
    build_from_articles hands the encoders, by the same segmentation and chunking."""
    embed = indexing.embedding_text
    unique: dict[str, Article] = {}
    for article in articles:  # the first article of each id, as the build keeps
        unique.setdefault(article.id, article)
    sentence_texts: list[str] = []
    chunk_texts: list[str] = []
    df: set[str] = set()
    for article in unique.values():
        sentences = split_sentences(article.text)
        if not sentences:
            continue
        chunks = chunk_article(
            article.id, article.text, sentences, settings.chunk_size, settings.chunk_overlap
        )
        sentence_texts += [embed(article, s.text) for s in sentences]
        chunk_texts += [embed(article, c.text) for c in chunks]
        for s in sentences:
            df.update(content_words(s.text, article.lang))
    return sentence_texts, chunk_texts, sorted(df)


Encoders = tuple[Encoder, Encoder | None]  # (the encoder, the second sentence encoder)


class Recorder:
    """The encoder, keeping every text it is given (to check the bench's text lists)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return self.inner.encode(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)


def encode_alone(encoders: Encoders, corpus: Corpus) -> tuple[float, float]:
    """(wall, CPU) seconds to encode the corpus's texts in the build's batches."""
    started, cpu = time.perf_counter(), time.process_time()
    encoder, rescorer = encoders
    for one, batch in (
        (encoder, corpus.sentence_texts + corpus.chunk_texts),
        (rescorer, corpus.sentence_texts),
        (encoder, corpus.words),
    ):
        if one is None:
            continue
        for i in range(0, len(batch), BATCH):
            one.encode(batch[i : i + BATCH])
    return time.perf_counter() - started, time.process_time() - cpu


def build_once(
    encoders: Encoders, articles: list[Article], settings: Settings
) -> tuple[float, float]:
    """(wall, CPU) seconds of a full build into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        started, cpu = time.perf_counter(), time.process_time()
        indexing.build_from_articles(
            articles, folder / "index", encoders[0], settings, rescorer=encoders[1]
        )
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def profile_build(pair: Encoders, corpus: Corpus, settings: Settings, top: int = 18) -> None:
    """cProfile one build; print where the time outside the encoders goes."""
    folder = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        indexing.build_from_articles(
            corpus.articles, folder / "index", pair[0], settings, rescorer=pair[1]
        )
        profiler.disable()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    stats = pstats.Stats(profiler)
    stats.calc_callees()
    entries = stats.stats  # type: ignore[attr-defined]
    callees = stats.all_callees  # type: ignore[attr-defined]
    encoders = [
        k for k in entries if k[2] in ("encode", "_encode") and Path(k[0]).parent.name == "encoders"
    ]
    # every function the encoder calls, directly or not
    inside = set(encoders)
    frontier = list(encoders)
    while frontier:
        for callee in callees.get(frontier.pop(), {}):
            if callee not in inside:
                inside.add(callee)
                frontier.append(callee)
    # every function that calls the encoder, directly or not
    ancestors: set[tuple[str, int, str]] = set()
    frontier = list(encoders)
    while frontier:
        for caller in entries[frontier.pop()][4]:
            if caller not in ancestors:
                ancestors.add(caller)
                frontier.append(caller)
    memo: dict[tuple[str, int, str], float] = {}

    def encoding_beneath(key: tuple[str, int, str]) -> float:
        """Seconds of `key`'s cumulative time spent in the encoder."""
        if key in memo:
            return memo[key]
        memo[key] = 0.0  # recursion guard
        seconds = 0.0
        for callee, (_, _, _, ct) in callees.get(key, {}).items():
            if callee in encoders:
                seconds += ct
            elif callee in ancestors and entries[callee][3] > 0:
                seconds += ct * encoding_beneath(callee) / entries[callee][3]
        memo[key] = min(seconds, entries[key][3])
        return memo[key]

    total = max(ct for (_, _, _, ct, _) in entries.values())
    encode = sum(entries[k][3] for k in encoders)
    print(
        f"\nprofile of one build of {corpus.name}: {total:.2f}s in all, "
        f"{encode:.2f}s in the encoder, {total - encode:.2f}s elsewhere"
    )
    print(f"  {'outside s':>10} {'own s':>8} {'calls':>8}  function (time outside the encoder)")
    rows = []
    for key, (_, calls, tt, ct, callers) in entries.items():
        if key in encoders:
            continue
        if key in ancestors:
            ct -= encoding_beneath(key)
        elif key in inside:
            # only the calls made from outside the encoder
            outside = [v for c, v in callers.items() if c not in inside]
            if not outside:
                continue
            calls = sum(v[1] for v in outside)
            tt = sum(v[2] for v in outside)
            ct = sum(v[3] for v in outside)
        if ct < 0.005:
            continue
        path, line, func = key
        where = path.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        rows.append((ct, tt, calls, f"{where}:{line}({func})"))
    for ct, tt, calls, name in sorted(rows, reverse=True)[:top]:
        print(f"  {ct:10.3f} {tt:8.3f} {calls:8d}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (medians reported)")
    parser.add_argument("--model", default=Settings().model, help="encoder")
    parser.add_argument("--threads", type=int, default=0, help="encoder threads (0: all cores)")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--profile", action="store_true", help="profile every corpus's build")
    parser.add_argument(
        "--only", choices=["seed", "dev pages", "PIAF"], action="append", help="corpora to run"
    )
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    encoder = load_encoder(args.model, args.threads)
    rescorer = load_rescorer(settings.rescore_model, args.threads)
    encoders = (encoder, rescorer)
    for e in encoders:
        if e is not None:
            e.encode(["Échauffement du modèle.", "warm-up"])  # lazy weights load here
    runs = [c for c in corpora(args.data) if not args.only or c.name in args.only]
    for corpus in runs:
        corpus.articles = corpus.read()
        corpus.sentence_texts, corpus.chunk_texts, corpus.words = encoded_texts(
            corpus.articles, settings
        )
        corpus.sentences, corpus.chunks = len(corpus.sentence_texts), len(corpus.chunk_texts)
        # One untimed build, recording what it encodes: the lists must be identical.
        recorders = (Recorder(encoder), Recorder(rescorer) if rescorer else None)
        build_once(recorders, corpus.articles, settings)  # also warms caches
        derived = [
            corpus.sentence_texts + corpus.chunk_texts + corpus.words,
            corpus.sentence_texts if rescorer else [],
        ]
        if [recorders[0].texts, recorders[1].texts if recorders[1] else []] != derived:
            raise SystemExit(f"{corpus.name}: the build encoded other texts than the bench derived")
        corpus.times = {k: [] for k in ("read", "build", "encoder", "build cpu", "encoder cpu")}

    for _ in range(args.repeat):
        for corpus in runs:
            started = time.perf_counter()
            corpus.read()
            corpus.times["read"].append(time.perf_counter() - started)
            wall, cpu = build_once(encoders, corpus.articles, settings)
            corpus.times["build"].append(wall)
            corpus.times["build cpu"].append(cpu)
            wall, cpu = encode_alone(encoders, corpus)
            corpus.times["encoder"].append(wall)
            corpus.times["encoder cpu"].append(cpu)

    print(
        f"encoder {encoder.name} ({encoder.dim} dims), second sentence encoder "
        f"{rescorer.name if rescorer else 'none'}, chunks {settings.chunk_size}/"
        f"{settings.chunk_overlap}, medians of {args.repeat} runs"
    )
    header = (
        f"{'corpus':<10} {'articles':>8} {'sentences':>9} {'chunks':>6} {'words':>6} "
        f"{'read s':>7} {'build s':>8} {'encoder s':>9} {'ratio':>6} {'sent/s':>7} "
        f"{'chunks/s':>8} {'min ratio':>9} {'cpu ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    missed = []
    for c in runs:
        build_s, enc_s = c.median("build"), c.median("encoder")
        ratio = build_s / enc_s if enc_s else float("inf")
        if ratio > TARGET:
            missed.append(c)
        best = min(c.times["build"]) / min(c.times["encoder"])
        cpu_ratio = c.median("build cpu") / c.median("encoder cpu")
        print(
            f"{c.name:<10} {len(c.articles):>8} {c.sentences:>9} {c.chunks:>6} {len(c.words):>6} "
            f"{c.median('read'):>7.3f} {build_s:>8.3f} {enc_s:>9.3f} {ratio:>6.2f} "
            f"{c.sentences / build_s:>7.0f} {c.chunks / build_s:>8.0f} {best:>9.2f} "
            f"{cpu_ratio:>9.2f}" + ("  > target" if ratio > TARGET else "")
        )
    print(
        f"target: build/encoder <= {TARGET} (ratio of medians; min ratio: fastest build / "
        "fastest encoder run; cpu ratio: of the process CPU time, which other load skews less)"
    )
    load, cores = os.getloadavg()[0], available_cores()
    if load > cores:
        print(f"warning: load average {load:.1f} on {cores} cores: other work skews the timings")
    for corpus in runs if args.profile else missed:
        profile_build(encoders, corpus, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
