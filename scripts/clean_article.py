#!/usr/bin/env python3
"""Print an article file as the index sees it: the same as `newsqa clean` (qa/cli/clean.py).

clean_article.py FILE          one JSON object per article, one per line
"""

from __future__ import annotations

import sys

import _bootstrap  # noqa: F401

from qa.cli.clean import article_json, main

__all__ = ["article_json", "main"]

if __name__ == "__main__":
    sys.exit(main(prog="clean_article.py"))
