#!/usr/bin/env python3
"""Ask the index a question and print the answer object as JSON.

ask.py [--index index/] "Où se retrouvent les ministres ?"
ask.py --json-lines < questions.txt      one question per line, one JSON object per line
"""

from __future__ import annotations

import argparse
import json
import sys

import _bootstrap  # noqa: F401

from qa.errors import BadQuestion, QAError
from qa.pipeline import QAEngine
from qa.settings import Settings


def main(argv: list[str] | None = None) -> int:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("question", nargs="?", help="the question (omit with --json-lines)")
    parser.add_argument("--index", default=defaults.index_dir, help="index folder")
    parser.add_argument("--top-k", type=int, default=None, help="passages to return")
    parser.add_argument(
        "--json-lines", action="store_true", help="read questions from stdin, one per line"
    )
    args = parser.parse_args(argv)
    if not args.json_lines and args.question is None:
        parser.error("give a question, or --json-lines")
    try:
        engine = QAEngine.load(Settings.from_env(index_dir=args.index))
        if not args.json_lines:
            print(
                json.dumps(
                    engine.ask(args.question, args.top_k).to_dict(), ensure_ascii=False, indent=2
                )
            )
            return 0
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                out = engine.ask(line.rstrip("\n"), args.top_k).to_dict()
            except BadQuestion as exc:
                out = {"question": line.rstrip("\n"), "error": str(exc)}
            print(json.dumps(out, ensure_ascii=False), flush=True)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
