#!/usr/bin/env python3
"""Ask the index a question and print the answer as JSON: the same as `newsqa ask`
(qa/cli/ask.py).

ask.py [--index index/] "Où se retrouvent les ministres ?"
ask.py --json-lines < questions.txt      one question per line, one JSON object per line
ask.py --since 2016-01-01 --until 2016-12-31 --source "Le Monde" "Qui est le ministre ?"
"""

from __future__ import annotations

import sys

import _bootstrap  # noqa: F401

from qa.cli.ask import main

if __name__ == "__main__":
    sys.exit(main(prog="ask.py"))
