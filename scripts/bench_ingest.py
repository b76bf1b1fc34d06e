#!/usr/bin/env python3
"""What an add, a removal and a question cost as the index grows (issue 12):
`bench_scale.py --ingest` runs it (docs/scaling.md, "Builds").

bench_ingest.py                                  100k and 1M chunks (~25 min on 2 cores)
bench_ingest.py --sizes 100000                   one size
bench_ingest.py --sizes 100000 --full-rewrite 100000   also the pre-segment full rewrite

Per size: a base index of that many chunks (cached under --cache, built once:
real texts, synthetic vectors), then, each in a fresh process on a hard-linked
clone of it (`cp -al`: builds never change a file in place):

- add 1,000 articles (~3,000 chunks) with `qa.indexing.add`, as the product
  does but for the encoder, which returns synthetic vectors at once: wall time
  and peak RSS of the process (Python and its imports included, ~0.2 GiB);
- the same add through the full rewrite that every add made before segments
  (`can_append` forced false), at the sizes `--full-rewrite` names;
- remove 100 articles with `qa.indexing.remove`;
- answer 200 PIAF questions in-process (`QAEngine.ask`, the real USE encoder for
  questions, no second encoder): p50 and p95, against an index of the PIAF
  dev articles built with real vectors, measured in the same run.

Texts: the paragraphs of ../shared/data (PIAF dev and train, SQuAD, the news
pages), two by two as articles (~3 chunks each), processed once as the
product does (sentences, chunks, terms, content words) and replicated with
new ids and a rare term per chunk, so that the vocabulary grows with the
corpus. Vectors: chunks from bench_scale's calibrated mixture, sentences their
chunk's vector plus noise, words random unit rows. No second encoder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401
import numpy as np
from bench_lexical import paragraphs
from bench_scale import mixture

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ENCODER_NAME = "use-multilingual-v3"
DIM = 512
ENCODER = {"name": ENCODER_NAME, "dim": DIM}
CHUNKING = {"size": 600, "overlap": 150, "unit": "characters, whole sentences"}
ADD_ARTICLES = 1000
REMOVE_ARTICLES = 100
QUESTIONS = 200


class SyntheticEncoder:
    """The index's encoder by name, returning random unit vectors at once: the
    benchmark times everything an add does but encoding."""

    name = ENCODER_NAME
    dim = DIM

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)

    def encode(self, texts: list[str]) -> np.ndarray:
        x = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    encode_queries = encode


def paragraph_articles() -> list[dict[str, str]]:
    """Records of two consecutive paragraphs of the development data each."""
    paras = paragraphs()
    return [
        {"lang": a[0], "title": a[1], "text": a[2] + "\n\n" + b[2]}
        for a, b in zip(paras[::2], paras[1::2], strict=False)
    ]


def templates() -> list[Any]:
    """The paragraph articles as the product indexes them (vectors unused)."""
    from qa.indexing import index_articles
    from qa.ingest import article_from_record

    articles = [
        article_from_record({**record, "id": f"t{i}"}, "bench")
        for i, record in enumerate(paragraph_articles())
    ]
    items, _, _ = index_articles(articles, SyntheticEncoder(), (600, 150))
    return items


def replica(item: Any, n: int, rng: np.random.Generator) -> Any:
    """Template `item` as article number `n`: its own id and URL, a rare term per chunk."""
    article = dataclasses.replace(item.article, id=f"a{n:07d}", url=f"https://bench/{n}")
    tails = [f"z{t:x}" for t in rng.zipf(1.3, len(item.chunks)) % 5_000_000]
    chunks = [
        dataclasses.replace(c, article_id=article.id, chunk_id=f"{article.id}:{j}")
        for j, c in enumerate(item.chunks)
    ]
    return dataclasses.replace(
        item,
        article=article,
        chunks=chunks,
        chunk_terms=[f"{t} {tail}" for t, tail in zip(item.chunk_terms, tails, strict=True)],
    )


# ---------------------------------------------------------------- the base index


def bulk_build(index_dir: Path, n_chunks: int, seed: int = 0) -> None:
    """A full build of ~`n_chunks` chunks, written as `write_build` writes one,
    streamed (write_build holds every vector in memory: ~12 GiB at 1M)."""
    import faiss
    import tantivy

    from qa import integrity
    from qa.store import build as store_build
    from qa.store import tantivy_lexical
    from qa.store.faiss_backend import LEXICAL, faiss_kind, faiss_meta, make_faiss_index
    from qa.store.files import save_npy
    from qa.store.layout import CHUNKS_NPY, FORMAT_VERSION, META, SENTENCES_NPY, SQLITE, WORDS_NPY
    from qa.store.publish import new_build_id, publish
    from qa.store.segments import Segment

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    pool = templates()
    plan: list[int] = []
    total = sentences = 0
    while total < n_chunks:
        t = int(rng.integers(len(pool)))
        plan.append(t)
        total += len(pool[t].chunks)
        sentences += len(pool[t].sentences)
    words = sorted({w for item in pool for ws in item.sentence_words for w in ws})
    row_of = {w: i for i, w in enumerate(words)}
    df = np.zeros(len(words), np.int64)
    for t in plan:
        for ws in pool[t].sentence_words:
            for w in ws:
                df[row_of[w]] += 1
    build_id = new_build_id()
    folder = index_dir / "builds" / build_id
    folder.mkdir(parents=True)
    word_vectors = SyntheticEncoder(seed).encode([""] * len(words))
    save_npy(folder / WORDS_NPY, word_vectors)
    chunks = np.lib.format.open_memmap(folder / CHUNKS_NPY, "w+", np.float16, (total, 512))
    sents = np.lib.format.open_memmap(folder / SENTENCES_NPY, "w+", np.float16, (sentences, 512))
    mix = mixture(4096, seed, None)
    print(f"  {len(plan):,} articles, {total:,} chunks, {sentences:,} sentences", file=sys.stderr)
    tpath = folder / tantivy_lexical.FOLDER
    tpath.mkdir()
    tindex = tantivy.Index(tantivy_lexical._schema(), path=str(tpath))
    writer = tindex.writer(heap_size=tantivy_lexical.WRITER_HEAP, num_threads=1)
    with store_build.writing_sqlite(folder / SQLITE) as db:
        db.executescript("BEGIN;\n" + store_build.SCHEMA)
        db.executemany(
            "INSERT INTO vocab VALUES (?, ?, ?)",
            ((w, i, int(df[i])) for i, w in enumerate(words)),
        )
        c_at = s_at = 0
        batch = 2000
        for at in range(0, len(plan), batch):
            items = [replica(pool[t], at + j, rng) for j, t in enumerate(plan[at : at + batch])]
            store_build.insert_articles(db, items, c_at, s_at, row_of)
            nc = sum(len(i.chunks) for i in items)
            ns = sum(len(i.sentences) for i in items)
            cv = mix.sample(nc, seed + 1 + at)
            chunks[c_at : c_at + nc] = cv
            owner = np.repeat(np.arange(nc), _sentences_per_chunk(items, nc))
            sv = cv[owner] + 0.5 * rng.standard_normal((ns, 512)).astype(np.float32) / 22.6
            sents[s_at : s_at + ns] = sv / np.linalg.norm(sv, axis=1, keepdims=True)
            for row, text in enumerate((t for i in items for t in i.chunk_terms), start=c_at):
                writer.add_document(tantivy.Document(row=row, terms=text))
            c_at, s_at = c_at + nc, s_at + ns
        db.execute("COMMIT")
        db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        db.execute("INSERT INTO sentences_fts(sentences_fts) VALUES ('optimize')")
    writer.commit()
    writer.wait_merging_threads()
    chunks.flush()
    sents.flush()
    del sents
    print(f"  SQLite, tantivy, vectors: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    kind = faiss_kind(total)
    fmeta = faiss_meta(kind, total)
    if kind == "flat":
        index = make_faiss_index(np.asarray(chunks, np.float32), kind)
    else:  # trained on the product's sample, filled block by block
        from qa.store.faiss_backend import training_sample

        index = make_faiss_index(
            np.asarray(training_sample(chunks, fmeta["train_size"]), np.float32), kind
        )
        index.reset()
        for at in range(0, total, 100_000):
            index.add(np.asarray(chunks[at : at + 100_000], np.float32))
    del chunks
    faiss.write_index(index, str(folder / "chunks.faiss"))
    del index
    files = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    )
    meta = {
        "format_version": FORMAT_VERSION,
        "build_id": build_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "encoder": ENCODER,
        "rescorer": None,
        "chunking": CHUNKING,
        "search": {"kind": "faiss"},
        "faiss": fmeta,
        "lexical": LEXICAL,
        "segments": [Segment(".", total, sentences, len(words)).entry()],
        "counts": {
            "articles": len(plan),
            "chunks": total,
            "sentences": sentences,
            "words": len(words),
        },
        "files": {name: (folder / name).stat().st_size for name in files},
        "digests": integrity.digests(folder, files),
    }
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
    publish(index_dir, folder)
    print(f"  base built in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _sentences_per_chunk(items: list[Any], nc: int) -> list[int]:
    """How many sentences each chunk lends its vector to (sentence vectors are
    drawn near a chunk of their article)."""
    counts: list[int] = []
    for item in items:
        k, m = len(item.chunks), len(item.sentences)
        counts += [m // k + (1 if j < m % k else 0) for j in range(k)]
    assert len(counts) == nc
    return counts


# ---------------------------------------------------------------- measured, one process each


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(task: str, index: Path, inputs: Path) -> dict[str, Any]:
    """One measured operation on `index`, in this fresh process."""
    from qa import indexing
    from qa.indexing import update
    from qa.settings import Settings

    settings = Settings(index_dir=str(index), rescore_model="none")
    if task == "ask":
        return ask_times(index, inputs)
    if task == "full":  # what every add did before segments
        update.can_append = lambda *args: False
    before = peak_rss_mib()
    started = time.perf_counter()
    if task in ("add", "full"):
        report = indexing.add([inputs], index, SyntheticEncoder(), settings)
    else:
        ids = json.loads(inputs.read_text())
        report = indexing.remove(ids, index, SyntheticEncoder())
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "encode_s": report.encode_seconds,
        "peak_rss_mib": peak_rss_mib(),
        "rss_before_mib": before,
        "added": len(report.added),
        "removed": len(report.removed),
        "chunks": report.chunks,
    }


def ask_times(index: Path, questions_file: Path) -> dict[str, Any]:
    from qa.embed import load_encoder
    from qa.pipeline import QAEngine
    from qa.settings import Settings

    settings = Settings(index_dir=str(index), rescore_model="none")
    engine = QAEngine(index, load_encoder(ENCODER_NAME), settings)
    questions = json.loads(questions_file.read_text())
    for q in questions[:10]:  # warm-up: page cache, lazy opens
        engine.ask(q)
    times = []
    for q in questions:
        t = time.perf_counter()
        engine.ask(q)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "peak_rss_mib": peak_rss_mib(),
    }


def run_worker(task: str, index: Path, inputs: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", task, str(index), str(inputs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{task} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def clone(base: Path, work: Path) -> Path:
    """A hard-linked copy of an index folder: builds never change a file in place."""
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["cp", "-al", str(base), str(work)], check=True)
    return work


def piaf_questions() -> list[str]:
    data = json.loads((DATA / "piaf" / "piaf-dev.json").read_text())["data"]
    qs = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]]
    return qs[:: max(1, len(qs) // QUESTIONS)][:QUESTIONS]


def piaf_index(folder: Path) -> Path:
    """The PIAF dev articles, real USE vectors, no second encoder (cached)."""
    from qa import indexing
    from qa.embed import load_encoder
    from qa.ingest import article_from_record
    from qa.settings import Settings

    index = folder / "piaf-index"
    if (index / "current").exists():
        return index
    data = json.loads((DATA / "piaf" / "piaf-dev.json").read_text())["data"]
    articles = [
        article_from_record(
            {
                "id": f"piaf{i}",
                "title": a["title"],
                "text": "\n\n".join(p["context"] for p in a["paragraphs"]),
                "lang": "fr",
            },
            "piaf",
        )
        for i, a in enumerate(data)
    ]
    settings = Settings(index_dir=str(index), rescore_model="none")
    indexing.build_from_articles(articles, index, load_encoder(ENCODER_NAME), settings)
    return index


def added_articles(path: Path, n: int, seed: int) -> Path:
    """`n` new articles (~3 chunks each) as one JSON-lines file."""
    rng = np.random.default_rng(seed)
    records = paragraph_articles()
    lines: list[str] = []
    for i in rng.choice(len(records), n, replace=n > len(records)):
        r = records[int(i)]
        tail = f"z{int(rng.zipf(1.3)) % 5_000_000:x}"  # new content: new ids
        lines.append(
            json.dumps(
                {
                    **r,
                    "text": f"{r['text']} {tail}",
                    "id": f"new{len(lines)}",
                    "url": f"https://bench/new/{len(lines)}",
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--full-rewrite",
        type=int,
        nargs="*",
        default=[100_000],
        help="sizes at which to time the full rewrite too (~19 GiB at 1M)",
    )
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench-ingest")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        task, index, inputs = args.worker
        print(json.dumps(worker(task, Path(index), Path(inputs))))
        return 0

    args.cache.mkdir(parents=True, exist_ok=True)
    questions = args.cache / "questions.json"
    questions.write_text(json.dumps(piaf_questions()))
    adds = added_articles(args.cache / "added.jsonl", ADD_ARTICLES, 1)
    rows: list[dict[str, Any]] = []
    piaf = run_worker("ask", piaf_index(args.cache), questions)
    print(
        f"PIAF index: answer p50 {piaf['p50_ms']:.0f} ms, p95 {piaf['p95_ms']:.0f} ms",
        file=sys.stderr,
    )
    for n in args.sizes:
        base = args.cache / f"base-{n}"
        if not (base / "current").exists():
            print(f"{n:,} chunks: building the base index ...", file=sys.stderr)
            shutil.rmtree(base, ignore_errors=True)
            bulk_build(base, n)
        work = args.cache / "work"
        row: dict[str, Any] = {"n": n}
        row["add"] = run_worker("add", clone(base, work), adds)
        print(f"  add: {row['add']}", file=sys.stderr)
        meta = json.loads((base / "current" / "meta.json").read_text())
        step = max(1, meta["counts"]["articles"] // REMOVE_ARTICLES)
        ids = [f"a{i:07d}" for i in range(0, meta["counts"]["articles"], step)][:REMOVE_ARTICLES]
        removes = args.cache / "removed.json"
        removes.write_text(json.dumps(ids))
        row["remove"] = run_worker("remove", work, removes)  # from the index with the add
        print(f"  remove: {row['remove']}", file=sys.stderr)
        row["ask"] = run_worker("ask", work, questions)
        print(f"  ask: {row['ask']}", file=sys.stderr)
        if n in args.full_rewrite:
            row["full"] = run_worker("full", clone(base, work), adds)
            print(f"  full rewrite: {row['full']}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        rows.append(row)
    print(table(rows, piaf))
    return 0


def table(rows: list[dict[str, Any]], piaf: dict[str, Any]) -> str:
    def op(r: dict[str, Any] | None) -> str:
        if r is None:
            return "not run | "
        return f"{r['wall_s']:.1f} s | {r['peak_rss_mib'] / 1024:.2f} GiB"

    lines = [
        "| chunks | add 1,000 articles: wall | peak RSS | full rewrite (before): wall "
        "| peak RSS | remove 100: wall | peak RSS | answer p50 | p95 (PIAF: "
        f"{piaf['p50_ms']:.0f} / {piaf['p95_ms']:.0f} ms) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {op(r['add'])} | {op(r.get('full'))} | {op(r['remove'])} "
            f"| {r['ask']['p50_ms']:.0f} ms | {r['ask']['p95_ms']:.0f} ms |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
