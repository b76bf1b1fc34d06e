"""`newsqa serve`: the web server (web/serve.py), with the process set up for it.

Importing this module sets the thread-count variables before numpy and faiss
load, so it must be imported before them (the `newsqa` command imports a
subcommand's module only when it runs; scripts/serve.py imports it first).
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per request. A server overlaps requests on its threads;
# per-call thread pools on top of that oversubscribe the cores and a query goes
# from ~2 ms to 100+ ms under load (scripts/bench_server.py). It also keeps
# forked workers safe: an OpenMP pool started before fork() can hang the
# children. Set these to override.
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

from web.serve import build_parser, main

__all__ = ["build_parser", "main"]
