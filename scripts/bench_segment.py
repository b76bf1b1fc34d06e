#!/usr/bin/env python3
"""Reading a large article: cleaning and sentence splitting time by size.

Each article is real French prose: the PIAF dev paragraphs, numbered so that
none repeats, one per line, under a title, written to a .txt file. It is read
as a build reads it (qa.ingest.read_file: decode, clean, detect the language),
then split (qa.segment.split_sentences). Medians of --repeat runs per size.
Target: a 2 MB article read and split in <= 5 s (TARGET_SECONDS).

    bench_segment.py [--sizes 0.5 1 2] [--repeat 3] [--one-line]

--one-line puts the whole article on one line (no paragraph breaks): the worst
case for the splitter, whose work on a line used to grow with its square.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _bootstrap  # noqa: F401

from qa.ingest import read_file
from qa.segment import split_sentences

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT.parent / "shared" / "data" / "piaf" / "piaf-dev.json"
TARGET_MB = 2.0
TARGET_SECONDS = 5.0


def article(megabytes: float, one_line: bool) -> str:
    """About `megabytes` MB (10^6 bytes of UTF-8) of distinct paragraphs."""
    data = json.loads(PIAF.read_text(encoding="utf-8"))
    paragraphs = [p["context"] for doc in data["data"] for p in doc["paragraphs"]]
    wanted = int(megabytes * 1e6)
    out, size, i = ["Un très long article de test"], 0, 0
    while size < wanted:
        # Named at the start (in letters: the cleaner takes paragraphs whose opening
        # words match for copies of each other, and its words hold no digits).
        text = f"Partie {_letters(i)}. {paragraphs[i % len(paragraphs)]}"
        out.append(text)
        size += len(text.encode("utf-8")) + 1
        i += 1
    return (" " if one_line else "\n").join(out)


def _letters(n: int) -> str:
    word = ""
    while True:
        n, digit = divmod(n, 26)
        word += "abcdefghijklmnopqrstuvwxyz"[digit]
        if not n:
            return word


def measure(path: Path) -> tuple[float, float, int]:
    """(seconds reading and cleaning, seconds splitting, sentences)."""
    started = time.perf_counter()
    [read], _ = read_file(path, max_bytes=1 << 40)
    cleaned = time.perf_counter()
    sentences = split_sentences(read.text)
    return cleaned - started, time.perf_counter() - cleaned, len(sentences)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 1.0, TARGET_MB])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one-line", action="store_true", help="no paragraph breaks")
    args = parser.parse_args(argv)
    missed = False
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'MB':>5} {'read+clean s':>13} {'split s':>8} {'total s':>8} {'sentences':>10}")
        for mb in args.sizes:
            path = Path(folder) / f"article-{mb}.txt"
            path.write_text(article(mb, args.one_line), encoding="utf-8")
            runs = [measure(path) for _ in range(args.repeat)]
            clean = statistics.median(r[0] for r in runs)
            split = statistics.median(r[1] for r in runs)
            total = statistics.median(r[0] + r[1] for r in runs)
            size = path.stat().st_size / 1e6
            print(f"{size:5.2f} {clean:13.2f} {split:8.3f} {total:8.2f} {runs[0][2]:10d}")
            if mb == TARGET_MB and total > TARGET_SECONDS:
                missed = True
    verdict = "MISSED" if missed else "met"
    print(f"target: {TARGET_MB:g} MB read and split in <= {TARGET_SECONDS:g} s: {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
