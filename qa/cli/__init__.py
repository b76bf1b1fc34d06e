"""The `newsqa` command: one console command, a subcommand per job.

    newsqa build   build, extend, shrink or watch an index      (scripts/build_index.py)
    newsqa ask     ask the index a question, print JSON          (scripts/ask.py)
    newsqa serve   serve the API and the chat page               (scripts/serve.py)
    newsqa clean   print an article file as the index sees it    (scripts/clean_article.py)

Each subcommand lives in its own module here with a `main(argv, prog)`; the
scripts are thin wrappers over the same functions. A subcommand's module is
imported only when it runs: `serve` sets thread-count variables before numpy
loads (qa/cli/serve.py). Exit codes are the subcommand's (qa/errors.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name: (module, one line of help)
COMMANDS = {
    "build": ("qa.cli.build", "build, extend, shrink or watch an index"),
    "ask": ("qa.cli.ask", "ask the index a question and print the answer as JSON"),
    "serve": ("qa.cli.serve", "serve the question-answering API and the chat page"),
    "clean": ("qa.cli.clean", "print an article file as the index sees it"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="newsqa",
        description="Extractive, cited question answering over news articles.",
        epilog="Run 'newsqa COMMAND --help' for a command's options. Settings not given as "
        "options come from QA_* environment variables (see the README).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in COMMANDS.items():
        # The subcommand parses its own options (its --help included).
        commands.add_parser(name, help=summary, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # --help, or a usage error (exit 2)
        return 2  # not reached: argparse has exited
    module = importlib.import_module(COMMANDS[argv[0]][0])
    code: int = module.main(argv[1:], prog=f"newsqa {argv[0]}")
    return code
