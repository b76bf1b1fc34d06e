#!/usr/bin/env python3
"""Serve the question-answering API and chat page: see web/serve.py (or --help).

    serve.py [--index index/] [--host 127.0.0.1] [--port 8000] [--threads 1] [--workers 1]
"""

from __future__ import annotations

import os
import sys

# Before numpy and faiss load: one BLAS/OpenMP thread per request. A server
# overlaps requests on its threads; per-call thread pools on top of that
# oversubscribe the cores and a query goes from ~2 ms to 100+ ms under load
# (scripts/bench_server.py). It also keeps forked workers safe: an OpenMP
# pool started before fork() can hang the children. Set these to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("QA_THREADS", "1")
# A server never downloads: the index's encoder was loaded (so cached) when the
# index was built. Without this, a model name the hub cannot be asked about
# retries with backoff for minutes before failing. Set to 0 to allow the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# No progress bars (model loading draws one) in a server's log.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import _bootstrap  # noqa: F401

from web.serve import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
