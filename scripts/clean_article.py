#!/usr/bin/env python3
"""Print an article file as the index sees it: cleaned text, metadata, sentences.

    clean_article.py FILE          one JSON object per article, one per line

Each object is {"id", "title", "text", "lang", "url", "date", "source",
"author", "sentences": [{"start", "end", "text"}]} with `text[start:end] ==
sentence text`; `date` is the publication date (YYYY-MM-DD) or null, `source`
the outlet. A .json or .jsonl file
with several records prints one line per record. Exit codes: 0 done, 1 some
records were skipped, 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, help="a .txt, .html, .json or .jsonl article file")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
