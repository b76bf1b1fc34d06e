"""Ask the index a question and print the answer object as JSON.

    newsqa ask [--index index/] "Où se retrouvent les ministres ?"
    newsqa ask --json-lines < questions.txt   one question per line, one JSON object per line
    newsqa ask --since 2016-01-01 --until 2016-12-31 --source "Le Monde" "Qui est le ministre ?"
                                              only from the articles matching them (an article
                                              with no date is outside any --since/--until)

Exit codes: 0 done, 2 bad question or arguments, 3 index problem, 4 encoder
cannot load.
"""

from __future__ import annotations

import argparse
import json
import sys

from qa.errors import BadQuestion, QAError
from qa.filters import ArticleFilter, iso_date
from qa.pipeline import QAEngine
from qa.settings import Settings


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("question", nargs="?", help="the question (omit with --json-lines)")
    parser.add_argument("--index", default=defaults.index_dir, help="index folder")
    parser.add_argument("--top-k", type=int, default=None, help="passages to return")
    parser.add_argument(
        "--json-lines", action="store_true", help="read questions from stdin, one per line"
    )
    parser.add_argument(
        "--since", type=_day, help="only articles published on or after this day (YYYY-MM-DD)"
    )
    parser.add_argument(
        "--until", type=_day, help="only articles published on or before this day (YYYY-MM-DD)"
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="OUTLET",
        help="only articles from this outlet (any case); repeat for several",
    )
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not args.json_lines and args.question is None:
        parser.error("give a question, or --json-lines")
    if args.since and args.until and args.since > args.until:
        parser.error(f"--since {args.since} is after --until {args.until}")
    only = ArticleFilter(args.since, args.until, tuple(args.source))
    try:
        engine = QAEngine.load(Settings.from_env(index_dir=args.index))
        if not args.json_lines:
            answer = engine.ask(args.question, args.top_k, only)
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
            return 0
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                out = engine.ask(line.rstrip("\n"), args.top_k, only).to_dict()
            except BadQuestion as exc:
                out = {"question": line.rstrip("\n"), "error": str(exc)}
            print(json.dumps(out, ensure_ascii=False), flush=True)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _day(value: str) -> str:
    try:
        return iso_date(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
