"""The `newsqa` console command, run as installed (`pip install -e .`, which
`make run` and `make test` do): help on every subcommand, then a build, a
question and a feed cleaned on a tiny corpus, outside the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ENGLISH_ARTICLE, FRENCH_ARTICLE, ROOT, script_env

from qa.cli import COMMANDS
from qa.store import IndexReader

NEWSQA = Path(sys.executable).parent / "newsqa"
FEED = ROOT / "tests" / "feeds" / "chroniques-alpines.atom"


def newsqa(*args: str | Path, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    if not NEWSQA.exists():
        pytest.fail(
            f"no {NEWSQA}: the package's console command is not installed in this "
            "environment; `make test` installs it (pip install -e .)"
        )
    # This checkout's code, whichever checkout the editable install points at.
    env = script_env(PYTHONPATH=str(ROOT))
    return subprocess.run(
        [str(NEWSQA), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = newsqa("--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: newsqa")
    for name in ("build", "ask", "serve", "clean"):
        assert name in COMMANDS and f"    {name} " in out.stdout, out.stdout


@pytest.mark.parametrize("command", ["build", "ask", "serve", "clean"])
def test_every_command_has_help(tmp_path: Path, command: str) -> None:
    out = newsqa(command, "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: newsqa {command}"), out.stdout
    assert "--index" in out.stdout or command == "clean"


def test_no_or_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    for args in ((), ("nope",)):
        out = newsqa(*args, cwd=tmp_path)
        assert out.returncode == 2
        assert out.stdout == "" and "usage: newsqa" in out.stderr


def test_build_then_ask_then_clean(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    (corpus / "bees.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    out = newsqa("build", "--corpus", "corpus", "--index", "index", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("2 articles, ") and out.stderr == ""

    out = newsqa("build", "--index", "index", "--add", FEED, "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("5 articles, ") and " | +3 -0 =0 | " in out.stdout
    reader = IndexReader(tmp_path / "index")
    assert reader.counts["articles"] == 5
    reader.close()

    question = "Combien de visiteurs le festival des lanternes a-t-il attirés ?"
    out = newsqa("ask", "--index", "index", question, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["answered"] is True and "douze mille" in answer["answer"]

    out = newsqa("ask", "--index", "index", "Qui a compté les bouquetins ?", cwd=tmp_path)
    answer = json.loads(out.stdout)
    top = answer["citations"][0]
    assert (top["date"], top["source"]) == ("2020-03-11", "Chroniques alpines"), top

    out = newsqa("clean", FEED, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    titles = [json.loads(line)["title"] for line in out.stdout.splitlines()]
    assert titles[0] == "Belledonne : 412 bouquetins comptés ce printemps" and len(titles) == 3


def test_errors_keep_their_exit_codes(tmp_path: Path) -> None:
    out = newsqa("ask", "--index", tmp_path / "none", "Une question ?", cwd=tmp_path)
    assert out.returncode == 3 and out.stderr.startswith("error: No index in")
    out = newsqa("build", "--corpus", tmp_path / "nope", "--index", tmp_path / "i", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {tmp_path / 'nope'}: no such folder."
    out = newsqa("clean", tmp_path / "missing.txt", cwd=tmp_path)
    assert out.returncode == 2


def test_scripts_are_wrappers_of_the_same_commands() -> None:
    for script, command in (
        ("build_index.py", "build"),
        ("ask.py", "ask"),
        ("serve.py", "serve"),
        ("clean_article.py", "clean"),
    ):
        text = (ROOT / "scripts" / script).read_text(encoding="utf-8")
        assert f"from qa.cli.{command} import" in text, script
        assert len(text.splitlines()) < 30, f"{script} should stay a thin wrapper"
