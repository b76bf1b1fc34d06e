"""Print an article file as the index sees it: cleaned text, metadata, sentences.

    newsqa clean FILE          one JSON object per article, one per line

Each object is {"id", "title", "text", "lang", "url", "date", "source",
"author", "sentences": [{"start", "end", "text"}]} with `text[start:end] ==
sentence text`; `date` is the publication date (YYYY-MM-DD) or null, `source`
the outlet. A .json or .jsonl file
with several records, or a feed with several items, prints one line per
article. Exit codes: 0 done, 1 some records were skipped, 2 the file cannot be
read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.ingest import read_file
from qa.records import Article
from qa.segment import split_sentences


def article_json(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "title": article.title,
        "text": article.text,
        "lang": article.lang,
        "url": article.url,
        "date": article.date,
        "source": article.source,
        "author": article.author,
        "sentences": [
            {"start": s.start, "end": s.end, "text": s.text} for s in split_sentences(article.text)
        ],
    }


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "file", type=Path, help="a .txt, .html, .json, .jsonl article file, or an RSS/Atom feed"
    )
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        articles, skipped = read_file(args.file)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for article in articles:
        print(json.dumps(article_json(article), ensure_ascii=False))
    for error in skipped:
        print(f"skipped: {error}", file=sys.stderr)
    return 1 if skipped else 0
