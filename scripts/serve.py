#!/usr/bin/env python3
"""Serve the question-answering API and chat page: see web/serve.py (or --help).

    serve.py [--index index/] [--host 127.0.0.1] [--port 8000] [--threads 1] [--workers 1]

The same as `newsqa serve`.
"""

from __future__ import annotations

import sys

import _bootstrap  # noqa: F401

# First: it sets the thread-count variables before numpy loads.
from qa.cli.serve import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main(prog="serve.py"))
