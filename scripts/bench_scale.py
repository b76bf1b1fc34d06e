#!/usr/bin/env python3
"""How the chunk index scales: build indexes of synthetic passage vectors the
way the product does (`qa.store.faiss_backend.faiss_kind` + `make_faiss_index`), open each in
a fresh process the way a server worker does, and print a Markdown table.

bench_scale.py                        sizes 10k, 100k and 1M (1.5-3.5 min on 2 cores)
bench_scale.py --sizes 10000          quick run
bench_scale.py --kind hnsw_sq8        force a structure instead of the product's pick
bench_scale.py --centres piaf         topic centres from real USE embeddings of PIAF
bench_scale.py --ingest [...]         adds and removals instead (scripts/bench_ingest.py)

Vectors: unit rows of the encoder's dimension from a hierarchical Gaussian
mixture (super-topics -> topics with Zipf-distributed sizes -> passages), with a
mean direction and a decaying, per-topic anisotropic spread. Its constants are
calibrated on real USE embeddings of the PIAF paragraphs, sentences and
questions: on a PIAF-sized sample it gives a mean pair cosine of 0.087 (real
0.084), median nearest-neighbour cosine 0.59 (0.62), 10th 0.42 (0.40) and 90 %
of the variance in 215 dimensions (193). Uniform noise would have no
neighbourhoods, which makes every approximate index look wrong for the wrong
reasons. Queries are held-out draws from the same mixture.

Per size: build time (train + add + write), bytes on disk, resident memory of a
serving process after opening the index and after the searches (with the part
that is file-backed, i.e. shared by all workers through the page cache),
single-query latency on one thread (wall-clock p50/p95: median over warm
passes; p95 of the first, cold pass; p95 of the thread's CPU time, which other
processes on a busy machine do not inflate) and recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401
import faiss
import numpy as np

from qa.store.faiss_backend import CHUNKS_FAISS, faiss_kind, faiss_meta, make_faiss_index

DIM = 512  # the USE encoder
K = 10

# Calibrated on USE embeddings of PIAF (see the module docstring).
MEAN_NORM = 0.3  # length of the mean direction before normalising
SPECTRUM_ALPHA = 0.66  # variance along axis i ~ i**-alpha * exp(-i / cut)
SPECTRUM_CUT = 400.0
VARIANCE_SPLIT = (0.2, 0.3, 0.5)  # between super-topics, between topics, within a topic
SUPER_TOPICS = 512  # fewer make the data easier for IVF (64: nprobe 32 of 512 finds 0.98)
TOPIC_ZIPF = 0.8  # topic sizes ~ 1 / rank**0.8
ANISOTROPY = 0.5  # log-normal sigma of each topic's spread per axis


@dataclass(frozen=True)
class Mixture:
    mean: np.ndarray  # (dim,)
    basis: np.ndarray  # (dim, dim), orthonormal columns
    centres: np.ndarray  # (topics, dim)
    spread: np.ndarray  # (topics, dim): std of each topic along each basis axis
    weights: np.ndarray  # (topics,)

    def sample(self, n: int, seed: int, batch: int = 50_000) -> np.ndarray:
        """n unit rows, float32."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.mean.shape[0]), dtype=np.float32)
        for at in range(0, n, batch):
            m = min(batch, n - at)
            ids = rng.choice(len(self.weights), size=m, p=self.weights)
            noise = rng.standard_normal((m, self.mean.shape[0]), dtype=np.float32)
            x = self.mean + self.centres[ids] + (noise * self.spread[ids]) @ self.basis.T
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[at : at + m] = x
        return out


def mixture(topics: int, seed: int, real: np.ndarray | None = None) -> Mixture:
    """The synthetic mixture; with `real` unit vectors, those are the
    super-topic centres and their principal axes the spread's shape."""
    rng = np.random.default_rng(seed)
    f_super, f_topic, f_within = VARIANCE_SPLIT
    if real is None:
        dim = DIM
        basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
        axis = np.arange(1, dim + 1, dtype=np.float64)
        spectrum = axis**-SPECTRUM_ALPHA * np.exp(-axis / SPECTRUM_CUT)
        spectrum /= spectrum.sum()
        mean = rng.standard_normal(dim)
        mean *= MEAN_NORM / np.linalg.norm(mean)
        supers = (rng.standard_normal((SUPER_TOPICS, dim)) * np.sqrt(spectrum * f_super)) @ basis.T
    else:
        dim = real.shape[1]
        mean = real.mean(axis=0)
        centred = real - mean
        eigval, basis = np.linalg.eigh(np.cov(centred.T))
        eigval, basis = np.clip(eigval[::-1], 1e-6, None), basis[:, ::-1]
        total = eigval.sum()
        spectrum = eigval / total
        mean = mean / np.sqrt(total)  # the synthetic variance totals 1
        supers = centred / np.sqrt(total) * np.sqrt(f_super)
    parent = rng.integers(0, len(supers), topics)
    own = (rng.standard_normal((topics, dim)) * np.sqrt(spectrum * f_topic)) @ basis.T
    centres = supers[parent] + own
    weights = 1.0 / np.arange(1, topics + 1) ** TOPIC_ZIPF
    rng.shuffle(weights)
    lognormal = np.exp(ANISOTROPY * rng.standard_normal((topics, dim)) - ANISOTROPY**2 / 2)
    spread = np.sqrt(spectrum * f_within)[None, :] * lognormal
    return Mixture(
        mean.astype(np.float32),
        basis.astype(np.float32),
        centres.astype(np.float32),
        spread.astype(np.float32),
        weights / weights.sum(),
    )


def piaf_vectors(data: Path) -> np.ndarray:
    """USE embeddings of the PIAF dev paragraphs and their sentences."""
    from qa.embed import load_encoder
    from qa.evaluation import load_piaf
    from qa.segment import split_sentences

    articles, _ = load_piaf(data)
    texts = [a.text for a in articles]
    texts += [s.text for a in articles for s in split_sentences(a.text) if len(s.text) > 20]
    return np.asarray(load_encoder().encode(texts), dtype=np.float64)


# ---------------------------------------------------------------- serving side


def _rss_mb() -> dict[str, float]:
    """Resident memory of this process: total, anonymous, file-backed (MB)."""
    out: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


def worker(folder: Path, passes: int) -> None:
    """Open `folder`/chunks.faiss like IndexReader and time single queries."""
    from qa.store.faiss_backend import read_faiss, set_search_params

    faiss.omp_set_num_threads(1)  # one request, one core: as a server worker
    queries = np.load(folder / "queries.npy")
    truth = np.load(folder / "truth.npy")
    meta = json.loads((folder / "faiss.json").read_text())
    before = _rss_mb()
    index = read_faiss(folder / CHUNKS_FAISS)
    set_search_params(index, meta)
    loaded = _rss_mb()
    found = np.empty((len(queries), K), dtype=np.int64)
    p50: list[float] = []
    p95: list[float] = []
    cpu95: list[float] = []
    cold_p95 = 0.0
    after: dict[str, float] = {}
    for n in range(1 + passes):
        times = np.empty(len(queries))
        cpu = np.empty(len(queries))
        for i in range(len(queries)):
            t, c = time.perf_counter(), time.thread_time()
            _, found[i : i + 1] = index.search(queries[i : i + 1], K)
            times[i], cpu[i] = time.perf_counter() - t, time.thread_time() - c
        if n == 0:
            cold_p95 = float(np.percentile(times, 95))
            after = _rss_mb()  # after the first N searches
        else:
            p50.append(float(np.percentile(times, 50)))
            p95.append(float(np.percentile(times, 95)))
            cpu95.append(float(np.percentile(cpu, 95)))
    recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)])
    result = {
        "rss_before": before,
        "rss_loaded": loaded,
        "rss_after": after,
        "p50_ms": 1e3 * float(np.median(p50 or [0.0])),
        "p95_ms": 1e3 * float(np.median(p95 or [cold_p95])),
        "cold_p95_ms": 1e3 * cold_p95,
        "cpu_p95_ms": 1e3 * float(np.median(cpu95 or [0.0])),
        "recall": float(recall),
    }
    print(json.dumps(result))


# ---------------------------------------------------------------- driver


def run_size(
    vectors: np.ndarray, queries: np.ndarray, kind: str, work: Path, passes: int
) -> dict[str, Any]:
    n = len(vectors)
    folder = work / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, K)  # batch, all cores
    del exact
    truth_s = time.perf_counter() - t
    t = time.perf_counter()
    index = make_faiss_index(vectors, kind)
    faiss.write_index(index, str(folder / CHUNKS_FAISS))
    build_s = time.perf_counter() - t
    del index
    meta = faiss_meta(kind, n)
    np.save(folder / "queries.npy", queries)
    np.save(folder / "truth.npy", truth)
    (folder / "faiss.json").write_text(json.dumps(meta))
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(folder), "--passes", str(passes)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker for {n} vectors failed:\n{proc.stderr}")
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "n": n,
        "meta": meta,
        "build_s": build_s,
        "truth_s": truth_s,
        "bytes": (folder / CHUNKS_FAISS).stat().st_size,
        **served,
    }


def _structure(meta: dict[str, Any]) -> str:
    if meta["kind"] == "ivf_sq8":
        return f"IVF{meta['nlist']}-SQ8, nprobe {meta['nprobe']}"
    if meta["kind"] == "hnsw_sq8":
        return f"HNSW{meta['hnsw_m']}-SQ8, efSearch {meta['ef_search']}"
    return "flat (exact)"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| vectors | structure | build | on disk | RSS loaded | RSS after 1k searches "
        "(file-backed) | p50 | p95 | cold p95 | CPU p95 | recall@10 |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['n']:,} | {_structure(r['meta'])} | {r['build_s']:.1f} s "
        f"| {r['bytes'] / 2**20:,.0f} MiB | {r['rss_loaded']['VmRSS']:,.0f} MiB "
        f"| {r['rss_after']['VmRSS']:,.0f} MiB ({r['rss_after']['RssFile']:,.0f}) "
        f"| {r['p50_ms']:.2f} ms | {r['p95_ms']:.2f} ms | {r['cold_p95_ms']:.2f} ms "
        f"| {r['cpu_p95_ms']:.2f} ms | {r['recall']:.3f} |"
        for r in rows
    ]
    return head + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000, help="held-out single queries")
    parser.add_argument("--passes", type=int, default=3, help="warm passes over the queries")
    parser.add_argument("--kind", default="auto", help="auto (the product's pick) or a kind")
    parser.add_argument("--topics", type=int, default=4096, help="topics of the mixture")
    parser.add_argument("--centres", choices=("synthetic", "piaf"), default="synthetic")
    parser.add_argument(
        "--piaf",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "data" / "piaf" / "piaf-dev.json",
        help="PIAF file for --centres piaf",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="folder for the indexes")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--ingest",
        nargs=argparse.REMAINDER,
        help="instead: adds, removals and answer time at 100k and 1M chunks, against the "
        "full rewrite of before (scripts/bench_ingest.py, which takes the arguments that follow)",
    )
    args = parser.parse_args(argv)
    if args.ingest is not None:
        import bench_ingest

        return bench_ingest.main(args.ingest)
    if args.worker:
        worker(args.worker, args.passes)
        return 0

    t = time.perf_counter()
    real = piaf_vectors(args.piaf) if args.centres == "piaf" else None
    mix = mixture(args.topics, args.seed, real)
    vectors = mix.sample(max(args.sizes), args.seed + 1)
    queries = mix.sample(args.queries, args.seed + 2)  # held out: not in the index
    print(
        f"{max(args.sizes):,} vectors of dimension {vectors.shape[1]} and {args.queries} "
        f"queries from a {args.centres} mixture of {args.topics} topics "
        f"({time.perf_counter() - t:.0f} s); {os.cpu_count()} cores",
        file=sys.stderr,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.work) as tmp:
        for n in sorted(args.sizes):
            kind = faiss_kind(n) if args.kind == "auto" else args.kind
            print(f"{n:,} vectors: building {kind} ...", file=sys.stderr)
            row = run_size(vectors[:n], queries, kind, Path(tmp), args.passes)
            print(
                f"  {_structure(row['meta'])}: build {row['build_s']:.1f} s, "
                f"p95 {row['p95_ms']:.2f} ms, recall@10 {row['recall']:.3f} "
                f"(exact ground truth {row['truth_s']:.0f} s)",
                file=sys.stderr,
            )
            rows.append(row)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
