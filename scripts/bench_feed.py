#!/usr/bin/env python3
"""Does a feed file ingest at the encoder's speed? A 1,000-item feed against the encoder alone.

Writes an RSS 2.0 file of --items items (default 1,000) from real paragraphs
(PIAF's French contexts, dev then train, then SQuAD's English ones when more
are needed), each with a title, link, guid, date, author and its paragraph as
content:encoded HTML; every fifth item carries only a <description> (a summary
article). Then, with the encoders loaded and warmed up before any timing:

  ingest  qa.ingest.read_file on the feed (parsing, HTML to text, language)
          plus qa.indexing.build_from_articles into a temporary folder
  encoder the encoders alone on exactly the texts that build encodes (the
          sentences and chunks as embedded, the sentences again by the second
          encoder if any, the vocabulary words: scripts/bench_build.py)

Each is repeated --repeat times (interleaved); medians are printed. The target
is ingest/encoder <= 1.3.

The second encoder is the one the settings name (QA_RESCORE_MODEL). With it
(multilingual-e5-small) a 1,000-item ingest takes minutes on a small machine
and encoding is nearly all of it; QA_RESCORE_MODEL=none measures the stricter
case, the fast encoder alone, where reading and writing weigh most.

    QA_RESCORE_MODEL=none bench_feed.py [--items 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import email.utils
import html
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _bootstrap  # noqa: F401
from bench_build import BATCH, Corpus, encode_alone, encoded_texts

from qa import indexing
from qa.embed import available_cores, load_encoder, load_rescorer
from qa.ingest import read_file
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TARGET = 1.3


def paragraphs(data: Path, n: int) -> list[tuple[str, str]]:
    """(title, paragraph) pairs: PIAF dev and train, then SQuAD, the first n."""
    out: list[tuple[str, str]] = []
    for path in (
        data / "piaf" / "piaf-dev.json",
        data / "piaf" / "piaf-train.json",
        data / "squad" / "squad-train-en.json",
    ):
        for doc in json.loads(path.read_text(encoding="utf-8"))["data"]:
            out += [(doc["title"], p["context"]) for p in doc["paragraphs"]]
            if len(out) >= n:
                return out[:n]
    raise SystemExit(f"only {len(out)} paragraphs in {data}; ask for fewer --items")


def write_feed(path: Path, items: list[tuple[str, str]]) -> None:
    """An RSS 2.0 file as a news site's CMS writes one, newest item first."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "<channel><title>Le Banc d'essai</title><link>https://banc.example/</link>",
        "<description>Flux de mesure</description><language>fr-FR</language>",
    ]
    start = 1_700_000_000
    for i, (title, text) in enumerate(items):
        sentences = text.split(". ")
        body = "".join(f"<p>{html.escape(s)}.</p>" for s in sentences if s.strip())
        content = "" if i % 5 == 4 else f"<content:encoded><![CDATA[{body}]]></content:encoded>"
        out.append(
            f"<item><title>{html.escape(title)} ({i})</title>"
            f"<link>https://banc.example/articles/{i}</link>"
            f'<guid isPermaLink="false">banc-{i}</guid>'
            f"<pubDate>{email.utils.formatdate(start - 3600 * i, localtime=False)}</pubDate>"
            f"<dc:creator>Rédaction {i % 7}</dc:creator>"
            f"<description>{html.escape(text if not content else sentences[0] + '.')}"
            f"</description>{content}</item>"
        )
    out.append("</channel></rss>")
    path.write_text("\n".join(out), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1000, help="items in the feed")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (medians reported)")
    parser.add_argument("--model", default=Settings().model, help="encoder")
    parser.add_argument("--threads", type=int, default=0, help="encoder threads (0: all cores)")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    encoder = load_encoder(args.model, args.threads)
    rescorer = load_rescorer(settings.rescore_model, args.threads)
    for e in (encoder, rescorer):
        if e is not None:
            e.encode(["Échauffement du modèle.", "warm-up"])  # lazy weights load here
    work = Path(tempfile.mkdtemp(prefix="bench-feed-"))
    try:
        feed = work / "flux.rss"
        write_feed(feed, paragraphs(args.data, args.items))
        size = feed.stat().st_size
        articles, errors = read_file(feed)
        if errors or len(articles) != args.items:
            raise SystemExit(f"{len(articles)} articles of {args.items} items: {errors[:1]}")
        corpus = Corpus("feed", lambda: articles, articles)
        corpus.sentence_texts, corpus.chunk_texts, corpus.words = encoded_texts(articles, settings)
        times: dict[str, list[float]] = {"read": [], "ingest": [], "encoder": []}
        for run in range(args.repeat):
            started = time.perf_counter()
            articles, _ = read_file(feed)
            read = time.perf_counter() - started
            indexing.build_from_articles(
                articles, work / f"index-{run}", encoder, settings, rescorer=rescorer
            )
            times["read"].append(read)
            times["ingest"].append(time.perf_counter() - started)
            shutil.rmtree(work / f"index-{run}")
            times["encoder"].append(encode_alone((encoder, rescorer), corpus)[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    read, ingest, enc = (statistics.median(times[k]) for k in ("read", "ingest", "encoder"))
    ratio = ingest / enc
    print(
        f"encoder {encoder.name}, second sentence encoder "
        f"{rescorer.name if rescorer else 'none'}, batches of {BATCH}, "
        f"medians of {args.repeat} runs, {available_cores()} cores"
    )
    print(
        f"{args.items} items ({size:,} bytes), "
        f"{len(corpus.sentence_texts)} sentences, {len(corpus.chunk_texts)} chunks, "
        f"{len(corpus.words)} words"
    )
    print(
        f"read {read:.3f}s | ingest {ingest:.3f}s | encoder alone {enc:.3f}s | "
        f"ingest/encoder {ratio:.2f} (target <= {TARGET})"
        + ("  > target" if ratio > TARGET else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
