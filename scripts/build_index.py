#!/usr/bin/env python3
"""Build, extend, shrink or watch an index: the same as `newsqa build` (qa/cli/build.py).

build_index.py --corpus corpus/ --index index/        full rebuild
build_index.py --index index/ --add a.txt b.html      add articles
build_index.py --index index/ --remove ID [ID ...]    remove articles
build_index.py --index index/ --compact               merge the segments of adds into one
build_index.py --index index/ --watch inbox/          add files as they land
"""

from __future__ import annotations

import sys

import _bootstrap  # noqa: F401

from qa.cli.build import main

if __name__ == "__main__":
    sys.exit(main(prog="build_index.py"))
