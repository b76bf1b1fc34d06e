"""A build's integrity (qa.integrity, qa.store): digests recorded at build and
checked at load, SQLite's structure and finite vectors checked at load, and
builds that fail (full disk, refused write, NaN from the encoder) leaving a
one-line error, nothing behind and the previous index serving."""

from __future__ import annotations

import errno
import importlib.util
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from helpers import DATA, FRENCH_ARTICLE, SCRIPTS, encoder, garble_sqlite_pages

from qa import indexing, integrity
from qa.cli import build as build_command
from qa.errors import DiskFull, IndexMismatch, IndexUnwritable, NonFiniteVectors
from qa.ingest import read_file
from qa.pipeline import QAEngine
from qa.records import Article
from qa.settings import Settings
from qa.store import IndexReader, current_build_id
from qa.store import build as store_module

QUESTION = "Où se retrouvent les ministres ?"


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def meta_of(build: Path) -> dict[str, Any]:
    return json.loads((build / "meta.json").read_text())


def forget_digests(build: Path) -> None:
    """meta.json as an earlier version wrote it: sizes, no digests."""
    meta = meta_of(build)
    del meta["digests"]
    (build / "meta.json").write_text(json.dumps(meta))


# ---------------------------------------------------------------- digests


def test_build_records_a_digest_of_every_file(index_dir: Path) -> None:
    build = index_dir / "current"
    meta = meta_of(build)
    recorded = meta["digests"]
    assert set(recorded["files"]) == set(meta["files"]) and "store.sqlite" in meta["files"]
    for name, value in recorded["files"].items():
        assert value == integrity.digest(build / name, recorded["scheme"]), name


def test_a_large_file_is_digested_over_samples(tmp_path: Path) -> None:
    """Past `whole_max` bytes only the sampled blocks (and the size) count: a
    change inside one is seen, one between them is not (the cost of a bounded
    check; quick_check and the finite check cover those files)."""
    scheme = {"algorithm": "sha256", "whole_max": 1000, "block": 100, "samples": 4}
    path = tmp_path / "big"
    data = bytearray(os.urandom(10_000))
    path.write_bytes(data)
    before = integrity.digest(path, scheme)
    data[50] ^= 1  # inside the first block
    path.write_bytes(data)
    assert integrity.digest(path, scheme) != before
    data[50] ^= 1
    data[1_000] ^= 1  # between the first block (0-99) and the second (3300-3399)
    path.write_bytes(data)
    assert integrity.digest(path, scheme) == before
    path.write_bytes(bytes(data) + b"x")
    assert integrity.digest(path, scheme) != before


# ---------------------------------------------------------------- damage found at load


def _nan_in_chunk_vectors(build: Path) -> str:
    path = build / "chunks.npy"
    vectors = np.load(path)
    vectors[len(vectors) // 2, 7] = np.nan
    np.save(path, vectors)
    return "chunks.npy"


def _infinity_in_sentence_vectors(build: Path) -> str:
    path = build / "sentences.npy"
    vectors = np.load(path)
    vectors[-1, 0] = np.inf
    np.save(path, vectors)
    return "sentences.npy"


DAMAGE = [garble_sqlite_pages, _nan_in_chunk_vectors, _infinity_in_sentence_vectors]


@pytest.mark.parametrize("digests", [True, False], ids=["digests", "earlier-build"])
@pytest.mark.parametrize("damage", DAMAGE)
def test_same_size_damage_is_refused_at_load(
    index_dir: Path, tmp_path: Path, damage: Callable[[Path], str], digests: bool
) -> None:
    """With digests the changed file is named; a build without them (an earlier
    version's) is still refused, by SQLite's quick_check or the finite check."""
    index = copy_index(index_dir, tmp_path / "index")
    build = index / "current"
    if not digests:
        forget_digests(build)
    name = damage(build)
    assert (build / name).stat().st_size == meta_of(build)["files"][name]  # same size
    with pytest.raises(IndexMismatch) as info:
        IndexReader(index)
    message = str(info.value)
    assert f"{build.resolve() / name}:" in message and "Rebuild the index" in message, message
    assert "\n" not in message
    if digests:
        assert "changed since the build" in message
    elif name == "store.sqlite":
        assert "damaged" in message
    else:
        assert "NaN or infinite" in message
    with pytest.raises(IndexMismatch):
        QAEngine(index, encoder(), Settings(index_dir=str(index)))


def test_earlier_build_without_digests_loads_with_one_warning(
    index_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = copy_index(index_dir, tmp_path / "index")
    forget_digests(index / "current")
    with caplog.at_level(logging.WARNING, logger="qa.store"):
        IndexReader(index).close()
        IndexReader(index).close()
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("qa.store")]
    assert len(warnings) == 1, warnings
    assert "no file digests" in warnings[0] and "rebuild the index" in warnings[0]
    answer = QAEngine(index, encoder(), Settings(index_dir=str(index))).ask(QUESTION)
    assert answer.answered


def test_scores_are_finite_numbers(index_dir: Path) -> None:
    """What the library returns is JSON without NaN, for every question of the seed."""
    qa = QAEngine(index_dir, encoder(), Settings(index_dir=str(index_dir)))
    questions = json.loads((DATA / "seed-qa-dev.json").read_text(encoding="utf-8"))["questions"]
    for question in [q["q"] for q in questions]:
        answer = qa.ask(question)
        json.dumps(answer.to_dict(), allow_nan=False)  # raises on NaN or infinity


# ---------------------------------------------------------------- failed builds


def _french(tmp_path: Path) -> list[Article]:
    path = tmp_path / "lanternes.txt"
    path.write_text(FRENCH_ARTICLE, encoding="utf-8")
    return read_file(path)[0]


def _rebuild(index: Path, articles: list[Article], enc: Any = None) -> indexing.BuildReport:
    """A full rebuild with the real encoder (no second encoder: quicker)."""
    settings = Settings(index_dir=str(index), rescore_model="none")
    return indexing.build_from_articles(articles, index, enc or encoder(), settings)


def _assert_untouched(index: Path, build_id: str | None) -> None:
    """Nothing of the failed build is left, and the previous one still serves."""
    assert current_build_id(index) == build_id
    assert sorted(p.name for p in (index / "builds").iterdir()) == [build_id]
    assert not list(index.glob(".current-*"))
    qa = QAEngine(index, encoder(), Settings(index_dir=str(index)))
    assert qa.ask(QUESTION).answered


def _stale_leftover(index: Path) -> Path:
    """What a build killed outright leaves: its temporary folder, half written."""
    stale = index / "builds" / ".tmp-20200101T000000-deadbeef"
    stale.mkdir()
    (stale / "chunks.npy").write_bytes(b"\x93NUMPY half")
    return stale


def test_disk_full_while_writing(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up while sentences.npy is written: DiskFull, one line,
    this build's folder and an older killed build's leftovers removed."""
    index = copy_index(index_dir, tmp_path / "index")
    previous = current_build_id(index)
    _stale_leftover(index)
    save = store_module.save_npy

    def full(path: Path, array: np.ndarray) -> None:
        if path.name == "sentences.npy":
            path.write_bytes(b"\x93NUMPY" + b"\0" * 100)  # what fitted
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(path, array)

    monkeypatch.setattr(store_module, "save_npy", full)
    with pytest.raises(DiskFull) as info:
        _rebuild(index, _french(tmp_path))
    message = str(info.value)
    assert "no space left" in message and "Free some space" in message and "\n" not in message
    _assert_untouched(index, previous)


def test_sqlite_full_is_a_full_disk(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own "database or disk is full" (a real SQLITE_FULL, from a page cap)."""
    index = copy_index(index_dir, tmp_path / "index")
    previous = current_build_id(index)
    connect = sqlite3.connect

    def capped(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        db.execute("PRAGMA max_page_count = 4")
        return db

    monkeypatch.setattr(store_module.sqlite3, "connect", capped)
    with pytest.raises(DiskFull) as info:
        _rebuild(index, _french(tmp_path))
    assert "store.sqlite: no space left" in str(info.value)
    monkeypatch.undo()
    _assert_untouched(index, previous)


def test_permission_denied_when_publishing(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Root ignores file modes, so the refusal is injected where the build is renamed.)"""
    index = copy_index(index_dir, tmp_path / "index")
    previous = current_build_id(index)

    def refused(src: Path, dst: Path) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(store_module.os, "rename", refused)
    with pytest.raises(IndexUnwritable) as info:
        _rebuild(index, _french(tmp_path))
    message = str(info.value)
    assert "Permission denied" in message and "write access" in message, message
    monkeypatch.undo()
    _assert_untouched(index, previous)


def test_too_little_free_space_is_refused_before_writing(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = copy_index(index_dir, tmp_path / "index")
    previous = current_build_id(index)
    made: list[Path] = []
    mkdir = Path.mkdir

    def recording_mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        mkdir(self, *args, **kwargs)

    monkeypatch.setattr(store_module.shutil, "disk_usage", lambda path: _usage(free=200_000))
    monkeypatch.setattr(Path, "mkdir", recording_mkdir)
    with pytest.raises(DiskFull) as info:
        _rebuild(index, _french(tmp_path))
    message = str(info.value)
    assert (
        "needs about" in message and "0.2 MB free" in message and "nothing was written" in message
    )
    assert not [p for p in made if p.name.startswith(".tmp-")], "a build folder was started"
    monkeypatch.undo()
    _assert_untouched(index, previous)


def test_nan_from_the_encoder_is_refused_at_build(index_dir: Path, tmp_path: Path) -> None:
    """An encoder that returns NaN for one sentence: nothing is written, and the
    message names the article and the text."""
    index = copy_index(index_dir, tmp_path / "index")
    previous = current_build_id(index)
    real = encoder()

    class Faulty:
        name, dim = real.name, real.dim

        def encode(self, texts: list[str]) -> np.ndarray:
            vectors = real.encode(texts)
            vectors[["remercié les bénévoles" in t for t in texts]] = np.nan
            return vectors

    with pytest.raises(NonFiniteVectors) as info:
        _rebuild(index, _french(tmp_path), Faulty())
    message = str(info.value)
    assert "lanternes.txt" in message and "M. Girardot" in message, message
    assert info.value.exit_code == 3
    _assert_untouched(index, previous)


# ---------------------------------------------------------------- build_index.py


def _build_index_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_index", SCRIPTS / "build_index.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_disk_full_exits_3_in_one_line(
    index_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """build_index.py itself, in this process so that the disk can be made full."""
    index = copy_index(index_dir, tmp_path / "index")
    previous = current_build_id(index)
    stale = _stale_leftover(index)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(SCRIPTS))  # for its `import _bootstrap`
    script = _build_index_script()
    # The script wraps `newsqa build` (qa/cli/build.py), which loads the encoder.
    monkeypatch.setattr(build_command, "load_encoder", lambda name, threads=0: encoder(name))
    monkeypatch.setattr(store_module, "save_npy", _no_space)
    monkeypatch.setenv("QA_RESCORE_MODEL", "none")
    code = script.main(["--corpus", str(corpus), "--index", str(index), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 3, err
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "no space left" in err and "Traceback" not in err
    assert not stale.exists()
    monkeypatch.undo()
    _assert_untouched(index, previous)


def _no_space(path: Path, array: np.ndarray) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _usage(free: int) -> Any:
    total = 10**9
    return shutil._ntuple_diskusage(total, total - free, free)  # type: ignore[attr-defined]
