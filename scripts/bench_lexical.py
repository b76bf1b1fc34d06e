#!/usr/bin/env python3
"""Lexical search at scale: SQLite FTS5 (today's store) against tantivy and
bm25s, on chunks with realistic term statistics.

    python scripts/bench_lexical.py                      # 100k and 1M chunks
    python scripts/bench_lexical.py --sizes 100000 --engines fts5 tantivy

Chunk texts: the PIAF (French), SQuAD (English) and news-page texts of
../shared/data, cut into sentences and turned into lexical terms as the index
does (`qa.lexical.terms`). A chunk is 2-4 consecutive sentences of one
paragraph under its title (so terms co-occur as in real text), and every term
is replaced, with probability --tail, by a draw from a Zipf law over 5M
invented terms: the long tail of names, numbers and rare words that a
multi-year archive has and a few thousand paragraphs do not (the vocabulary
then grows with the corpus, as Heaps' law says it should). Frequent words keep
their real document frequencies, which is what makes a disjunctive BM25 query
costly. Queries: the terms retrieval sends for PIAF and SQuAD questions
(`qa.lexical.terms`), 20 hits each (retrieval's pool), one thread.

Indexes are built once per size under --cache (default /tmp/bench-lexical)
and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.lexical import terms
from qa.segment import split_sentences

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
K = 20
TAIL_VOCABULARY = 5_000_000
Search = Callable[[list[str], int], list[tuple[int, float]]]


def paragraphs() -> list[tuple[str, str, str]]:
    """(lang, title, text) of every paragraph of the development data."""
    out = []
    for path, lang in (
        (DATA / "piaf" / "piaf-dev.json", "fr"),
        (DATA / "piaf" / "piaf-train.json", "fr"),
        (DATA / "squad" / "squad-train-en.json", "en"),
    ):
        for article in json.loads(path.read_text())["data"]:
            for p in article["paragraphs"]:
                out.append((lang, article.get("title", ""), p["context"]))
    for path in sorted((DATA / "text").glob("*.txt")):
        for block in path.read_text().split("\n\n"):
            if len(block) > 200:
                out.append(("fr", path.stem, block))
    return out


def questions() -> list[tuple[str, str]]:
    out = []
    for path, lang in (
        (DATA / "piaf" / "piaf-dev.json", "fr"),
        (DATA / "squad" / "squad-train-en.json", "en"),
    ):
        for article in json.loads(path.read_text())["data"]:
            for p in article["paragraphs"]:
                out += [(lang, q["question"]) for q in p["qas"]]
    return out


def corpus(n: int, tail: float, seed: int = 0) -> list[str]:
    """`n` chunks of space-joined terms (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    paras = []
    for lang, title, text in paragraphs():
        sentences = [terms(s.text, lang) for s in split_sentences(text)]
        paras.append((terms(title, lang), [s for s in sentences if s]))
    paras = [p for p in paras if p[1]]
    vocab: dict[str, int] = {}
    encoded = []

    def ids_of(ts: list[str]) -> np.ndarray:
        return np.array([vocab.setdefault(t, len(vocab)) for t in ts], np.int64)

    for title_terms, sentence_terms in paras:
        encoded.append((ids_of(title_terms), [ids_of(s) for s in sentence_terms]))
    words = np.array(list(vocab), dtype=object)
    # Invented tail terms: ids from a Zipf law, named so that they never
    # collide with real terms.
    chunks = []
    picks = rng.integers(0, len(encoded), n)
    lengths = rng.integers(2, 5, n)
    for i in range(n):
        title, sentences = encoded[picks[i]]
        start = int(rng.integers(0, len(sentences)))
        ids = np.concatenate([title, *sentences[start : start + lengths[i]]])
        tokens = words[ids]
        swap = rng.random(len(ids)) < tail
        if swap.any():
            tail_ids = rng.zipf(1.3, int(swap.sum())) % TAIL_VOCABULARY
            tokens[swap] = [f"z{t:x}" for t in tail_ids]
        chunks.append(" ".join(tokens))
    return chunks


# ---------------------------------------------------------------- engines


def fts5_build(folder: Path, chunks: list[str]) -> None:
    db = sqlite3.connect(folder / "fts.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    db.execute(
        "CREATE VIRTUAL TABLE chunks_fts "
        "USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0')"
    )
    db.executemany("INSERT INTO chunks_fts(rowid, terms) VALUES (?, ?)", enumerate(chunks))
    db.execute("COMMIT")
    db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
    db.close()


def fts5_open(folder: Path, cap: int = 0) -> Search:
    db = sqlite3.connect(f"file:{folder / 'fts.sqlite'}?mode=ro&immutable=1", uri=True)
    db.execute("CREATE TEMP TABLE IF NOT EXISTS x(y)")  # warm the connection
    vocab_db = None
    if cap:
        vocab_db = sqlite3.connect(f"file:{folder / 'fts.sqlite'}?mode=ro&immutable=1", uri=True)
        vocab_db.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, chunks_fts, 'row')")

    def search(query: list[str], k: int) -> list[tuple[int, float]]:
        unique = list(dict.fromkeys(t for t in query if t))
        if cap and vocab_db is not None and len(unique) > cap:
            marks = ",".join("?" * len(unique))
            df = dict(
                vocab_db.execute(f"SELECT term, doc FROM temp.v WHERE term IN ({marks})", unique)
            )
            unique = sorted(unique, key=lambda t: df.get(t, 0))[:cap]
        q = " OR ".join(f'"{t}"' for t in unique)
        if not q:
            return []
        rows = db.execute(
            "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "ORDER BY bm25(chunks_fts) LIMIT ?",
            (q, k),
        ).fetchall()
        return [(int(r), float(s)) for r, s in rows]

    return search


def tantivy_build(folder: Path, chunks: list[str]) -> None:
    import tantivy

    (folder / "tantivy").mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("row", stored=False, fast=True, indexed=True)
    builder.add_text_field("terms", stored=False, tokenizer_name="whitespace", index_option="freq")
    index = tantivy.Index(builder.build(), path=str(folder / "tantivy"))
    writer = index.writer(heap_size=256_000_000, num_threads=1)
    for row, text in enumerate(chunks):
        writer.add_document(tantivy.Document(row=row, terms=text))
    writer.commit()
    writer.wait_merging_threads()


def tantivy_open(folder: Path) -> Search:
    import tantivy

    index = tantivy.Index.open(str(folder / "tantivy"))
    schema = index.schema
    searcher = index.searcher()

    def search(query: list[str], k: int) -> list[tuple[int, float]]:
        unique = list(dict.fromkeys(t for t in query if t))
        if not unique:
            return []
        q = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "terms", t)) for t in unique]
        )
        hits = searcher.search(q, k, count=False).hits
        rows = searcher.fast_field_values("row", [addr for _, addr in hits])
        return [(int(r or 0), float(score)) for r, (score, _) in zip(rows, hits, strict=True)]

    return search


def bm25s_build(folder: Path, chunks: list[str]) -> None:
    import bm25s

    retriever = bm25s.BM25(k1=1.2, b=0.75)
    tokenized = bm25s.tokenization.Tokenized(*_bm25s_ids(chunks))
    retriever.index(tokenized, show_progress=False)
    retriever.save(str(folder / "bm25s"))


def _bm25s_ids(chunks: list[str]) -> tuple[list[list[int]], dict[str, int]]:
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in c.split()] for c in chunks]
    return ids, vocab


def bm25s_open(folder: Path) -> Search:
    import bm25s

    retriever = bm25s.BM25.load(str(folder / "bm25s"), mmap=True)
    vocab = retriever.vocab_dict

    def search(query: list[str], k: int) -> list[tuple[int, float]]:
        ids = [vocab[t] for t in dict.fromkeys(query) if t in vocab]
        if not ids:
            return []
        scores = retriever.get_scores(ids)
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(r), float(scores[r])) for r in top if scores[r] > 0]

    return search


ENGINES: dict[str, tuple[Callable[[Path, list[str]], None], Callable[[Path], Search]]] = {
    "fts5": (fts5_build, fts5_open),
    "fts5-cap8": (fts5_build, lambda f: fts5_open(f, cap=8)),
    "tantivy": (tantivy_build, tantivy_open),
    "bm25s": (bm25s_build, bm25s_open),
}
STORED = {"fts5": "fts5", "fts5-cap8": "fts5", "tantivy": "tantivy", "bm25s": "bm25s"}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--tail", type=float, default=0.1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-lexical"))
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    qs = questions()
    picked = [qs[i] for i in rng.choice(len(qs), args.queries, replace=False)]
    queries = [terms(text, lang) for lang, text in picked]
    print(f"{len(queries)} queries, {statistics.mean(map(len, queries)):.1f} terms on average")
    print("| chunks | engine | build | on disk | p50 | p95 | CPU p95 | max | top-20 as FTS5's |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.sizes:
        folder = args.cache / f"{n}-tail{args.tail}"
        folder.mkdir(parents=True, exist_ok=True)
        chunks: list[str] | None = None
        reference: list[set[int]] | None = None
        for name in args.engines:
            build, open_ = ENGINES[name]
            stored = STORED[name]
            marker = folder / f"{stored}.built"
            built = "cached"
            if not marker.exists():
                if chunks is None:
                    started = time.perf_counter()
                    chunks = corpus(n, args.tail)
                    print(
                        f"# corpus of {n:,} chunks made in {time.perf_counter() - started:.0f} s",
                        flush=True,
                    )
                for leftover in (folder / "tantivy", folder / "bm25s", folder / "fts.sqlite"):
                    if stored in leftover.name and leftover.exists():
                        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
                started = time.perf_counter()
                build(folder, chunks)
                seconds = time.perf_counter() - started
                marker.write_text(f"{seconds:.1f}")
            built = marker.read_text() + " s"
            disk = {"fts5": "fts.sqlite", "tantivy": "tantivy", "bm25s": "bm25s"}[stored]
            search = open_(folder)
            for q in queries[:50]:  # warm the page cache
                search(q, K)
            times, cpu, results = [], [], []
            for q in queries:
                started, started_cpu = time.perf_counter(), time.thread_time()
                hits = search(q, K)
                cpu.append((time.thread_time() - started_cpu) * 1000)
                times.append((time.perf_counter() - started) * 1000)
                results.append({r for r, _ in hits})
            if name == "fts5":
                reference = results
            overlap = (
                statistics.mean(
                    len(a & b) / max(1, len(b)) for a, b in zip(results, reference, strict=True)
                )
                if reference is not None
                else float("nan")
            )
            p = np.percentile(times, [50, 95, 100])
            cpu95 = np.percentile(cpu, 95)
            print(
                f"| {n:,} | {name} | {built} | {_size(folder / disk) / 2**20:,.0f} MiB "
                f"| {p[0]:.2f} ms | {p[1]:.2f} ms | {cpu95:.2f} ms | {p[2]:.1f} ms "
                f"| {overlap:.2f} |",
                flush=True,
            )
    print(f"# peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
