"""The drop folder (`build --watch`): which files are ready (debounced), then a
real watcher in a subprocess over a real index: files dropped, changed and
removed, then Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    FRENCH_ARTICLE,
    GLACIER_ARTICLE,
    PYTHON,
    ROOT,
    SCRIPTS,
    encoder,
    script_env,
    wait_for,
)

from qa import indexing
from qa.ingest import read_file
from qa.pipeline import QAEngine
from qa.settings import Settings
from qa.store import IndexReader, current_build_id
from qa.watch import DropFolder

FEED = ROOT / "tests" / "feeds" / "courrier-jura.rss"
BUILD = [PYTHON, str(SCRIPTS / "build_index.py")]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_file_is_ready_once_it_stops_changing(tmp_path: Path) -> None:
    clock = Clock()
    drop = DropFolder(tmp_path, settle=2.0, clock=clock)
    path = tmp_path / "a.txt"
    path.write_text("Un début")
    assert drop.ready() == []  # just seen
    clock.now = 1.5
    with open(path, "a") as f:  # still being written: the wait starts again
        f.write(" et une suite.")
    assert drop.ready() == []
    clock.now = 3.0
    assert drop.ready() == []
    clock.now = 3.5
    assert drop.ready() == [path]
    drop.mark_offered([path])
    clock.now = 10.0
    assert drop.ready() == []  # offered: not again until it changes


def test_changed_hidden_removed_and_returning_files(tmp_path: Path) -> None:
    clock = Clock()
    drop = DropFolder(tmp_path, settle=1.0, clock=clock)
    a = tmp_path / "a.txt"
    a.write_text("un")
    (tmp_path / ".b.txt.part").write_text("en cours de copie")
    (tmp_path / "sub").mkdir()
    c = tmp_path / "sub" / "c.rss"
    c.write_text("<rss/>")
    drop.ready()
    clock.now = 1.0
    assert drop.ready() == [a, c]  # hidden names are left out; subfolders are read
    drop.mark_offered([a, c])
    a.write_text("deux, plus long")  # changed
    clock.now = 2.0
    assert drop.ready() == []
    clock.now = 3.0
    assert drop.ready() == [a]
    drop.mark_offered([a])
    content = c.read_text()
    c.unlink()
    clock.now = 4.0
    assert drop.ready() == []
    c.write_text(content)  # put back: a new file again
    drop.ready()
    clock.now = 5.0
    assert drop.ready() == [c]


@pytest.fixture
def watched(tmp_path: Path) -> tuple[Path, Path]:
    """(index, drop folder): an index of one article, and an empty folder."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    index = tmp_path / "index"
    settings = Settings(index_dir=str(index), rescore_model="none")
    indexing.build(corpus, index, encoder(), settings)
    drop = tmp_path / "inbox"
    drop.mkdir()
    return index, drop


def start_watcher(index: Path, drop: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *BUILD,
            "--index",
            str(index),
            "--watch",
            str(drop),
            "--interval",
            "0.2",
            "--settle",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=script_env(),
        # A test run started in the background inherits an ignored SIGINT.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def articles(index: Path) -> set[str]:
    reader = IndexReader(index)
    try:
        return set(reader.article_ids())
    finally:
        reader.close()


def test_the_watcher_adds_what_lands_and_stops_cleanly_on_ctrl_c(
    watched: tuple[Path, Path], tmp_path: Path
) -> None:
    index, drop = watched
    start = articles(index)
    proc = start_watcher(index, drop)
    try:
        # Two files published at once: written in a hidden folder, then renamed.
        staging = drop / ".incoming"
        staging.mkdir()
        (staging / "glacier.txt").write_text(GLACIER_ARTICLE, encoding="utf-8")
        (staging / "flux").write_bytes(FEED.read_bytes())  # a feed, found by content
        batch = drop / "batch"
        os.rename(staging, batch)
        [glacier] = read_file(batch / "glacier.txt")[0]
        feed_ids = {a.id for a in read_file(FEED)[0]}
        want = start | {glacier.id} | feed_ids
        assert wait_for(lambda: articles(index) == want, timeout=90, every=0.2), (
            articles(index),
            proc.poll(),
        )

        # A changed file replaces its old version.
        build = current_build_id(index)
        (batch / "glacier.txt").write_text(
            GLACIER_ARTICLE.replace("quarante", "soixante"), encoding="utf-8"
        )
        assert wait_for(lambda: current_build_id(index) != build, timeout=90, every=0.2)
        now = articles(index)
        assert glacier.id not in now and len(now) == len(want)

        # A removed file leaves its articles: no new build either.
        build = current_build_id(index)
        (batch / "glacier.txt").unlink()
        time.sleep(1.5)  # three listings and a settle time
        assert current_build_id(index) == build and articles(index) == now
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "watching" in err and err.rstrip().endswith("stopped"), err
    summaries = out.strip().splitlines()
    assert len(summaries) == 2, out  # one build per settled batch
    assert " | +4 -0 =0 | " in summaries[0] and " | +1 -1 =0 | " in summaries[1]
    # The index the watcher leaves loads and answers from what was dropped.
    engine = QAEngine.load(Settings(index_dir=str(index)), encoder())
    answer = engine.ask("De combien de mètres le glacier du Trient a-t-il reculé ?")
    assert answer.answered and "soixante" in (answer.answer or ""), answer
    engine.reader.close()


def test_ctrl_c_at_once_exits_0(watched: tuple[Path, Path]) -> None:
    index, drop = watched
    build = current_build_id(index)
    proc = start_watcher(index, drop)
    try:
        assert proc.stderr is not None
        assert "watching" in proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "" and current_build_id(index) == build


def test_watching_without_an_index_or_a_folder_fails_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    for index, folder, code, words in (
        (tmp_path / "none", tmp_path / "inbox", 3, "No index in"),
        (tmp_path / "none", tmp_path / "nope", 2, "no such folder"),
    ):
        out = subprocess.run(
            [
                PYTHON,
                str(SCRIPTS / "build_index.py"),
                "--index",
                str(index),
                "--watch",
                str(folder),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=script_env(),
        )
        assert out.returncode == code, out.stderr
        assert out.stderr.startswith("error: ") and words in out.stderr
