"""Faults around the server: a damaged index (even in place, at the same size)
refuses to start in one line; /ask under load while the index is rebuilt and
swapped never fails and never mixes builds; an article removed under a running
server is never cited again.

Already covered by tests/test_index.py, so not repeated here: SIGKILL of
build_index.py at random points (test_sigkill_during_build_leaves_a_whole_index),
re-adding the same file, a changed file replacing its old version, and removal
at the library level."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import (
    ENGLISH_ARTICLE,
    GLACIER_ARTICLE,
    PYTHON,
    ROOT,
    SCRIPTS,
    garble_sqlite_pages,
    script_env,
)
from test_workers import ServeProcess, dev_questions

from qa import indexing
from qa.pipeline import QAEngine
from qa.settings import Settings
from qa.store import IndexReader

# ---------------------------------------------------------------- refusing to start


def _truncate_faiss(build: Path) -> str:
    path = build / "chunks.faiss"
    path.write_bytes(path.read_bytes()[:64])
    return "chunks.faiss"


def _garbage_sqlite(build: Path) -> str:
    """Same size, so only opening it can tell."""
    path = build / "store.sqlite"
    path.write_bytes(os.urandom(path.stat().st_size))
    return "store.sqlite"


def _nan_in_chunk_vectors(build: Path) -> str:
    """Same size: answers carried "score": NaN, which is not JSON."""
    path = build / "chunks.npy"
    vectors = np.load(path)
    vectors[:, 0] = np.nan
    np.save(path, vectors)
    return "chunks.npy"


def _garbage_sqlite_header(build: Path) -> str:
    with open(build / "store.sqlite", "r+b") as f:
        f.write(b"garbage!" * 16)
    return "store.sqlite"


def _delete_meta(build: Path) -> str:
    (build / "meta.json").unlink()
    return "meta.json"


def _unknown_encoder(build: Path) -> str:
    meta = json.loads((build / "meta.json").read_text())
    meta["encoder"]["name"] = "no-such-org/no-such-encoder"
    (build / "meta.json").write_text(json.dumps(meta))
    return "meta.json"


def _wrong_encoder_dim(build: Path) -> str:
    """The files disagree with meta.json before any encoder is asked: the vectors are named."""
    meta = json.loads((build / "meta.json").read_text())
    meta["encoder"]["dim"] = 384
    (build / "meta.json").write_text(json.dumps(meta))
    return "chunks.faiss"


def _earlier_e5_layout(build: Path) -> str:
    """A build whose sentence vectors were made by E5 in place of the encoder's."""
    meta = json.loads((build / "meta.json").read_text())
    meta["sentence_encoder"] = {"name": "multilingual-e5-small-q4", "dim": 384}
    (build / "meta.json").write_text(json.dumps(meta))
    return "meta.json"


def _second_vectors_gone(build: Path) -> str:
    (build / "rescore_sentences.npy").unlink()
    return "rescore_sentences.npy"


def _build_folder_gone(build: Path) -> str:
    """`current` left dangling: damaged, not missing (no silent rebuild from corpus/)."""
    shutil.rmtree(build.resolve())
    return "current"


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (_truncate_faiss, 3),
        (_garbage_sqlite, 3),
        (garble_sqlite_pages, 3),
        (_nan_in_chunk_vectors, 3),
        (_garbage_sqlite_header, 3),
        (_delete_meta, 3),
        # Loads torch to find out the model is not there: the slowest refusal.
        pytest.param(_unknown_encoder, 4, marks=pytest.mark.slow),
        (_wrong_encoder_dim, 3),
        (_earlier_e5_layout, 3),
        (_second_vectors_gone, 3),
        (_build_folder_gone, 3),
    ],
)
def test_damaged_index_refuses_to_start(
    index_dir: Path, tmp_path: Path, damage: Callable[[Path], str], code: int
) -> None:
    index = tmp_path / "index"
    shutil.copytree(index_dir, index, symlinks=True)
    name = damage(index / "current")
    started = time.monotonic()
    # --corpus points at real articles: a server that rebuilt instead of refusing would start.
    command = [PYTHON, str(SCRIPTS / "serve.py"), "--index", str(index), "--port", "0"]
    out = subprocess.run(
        [*command, "--corpus", str(ROOT / "corpus")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=script_env(),
    )
    took = time.monotonic() - started
    assert out.returncode == code, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    line = lines[0]
    assert line.startswith("error: ") and f"{name}:" in line, line
    assert "rebuild the index" in line.lower(), line  # the fix
    assert str(index) in line, line  # the path, so the file can be found
    assert out.stdout == ""
    assert took < 30, f"{took:.1f} s to refuse"


# ---------------------------------------------------------------- swaps under load

SWAP_QUESTIONS = [
    "De combien le glacier du Trient a-t-il reculé ?",
    "How much honey did the beekeepers of Lincolnshire collect this autumn?",
    *dev_questions()[:6],
]
CLIENTS = 4


@dataclass
class Load:
    """What the client threads saw: (build id, answer) per response, and failures."""

    answers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(server: ServeProcess, seed: int, stop: threading.Event, load: Load) -> None:
    conn = server.connection(timeout=30)
    i = seed
    while not stop.is_set():
        question = SWAP_QUESTIONS[i % len(SWAP_QUESTIONS)]
        i += 1
        try:
            status, headers, body = server.request(
                "POST", "/ask", {"question": question}, conn=conn
            )
            answer = json.loads(body)
            if status != 200 or not isinstance(answer, dict):
                raise ValueError(f"{status} {body[:200]!r}")
            build = headers.get("x-index-build", "")
        except Exception as exc:  # every failure is recorded, none stops the others
            with load.lock:
                load.failures.append(f"{question}: {type(exc).__name__}: {exc}")
            conn = server.connection(timeout=30)
            continue
        with load.lock:
            load.answers.append((build, answer))
    conn.close()


@pytest.mark.slow
def test_ask_under_load_while_the_index_is_swapped(
    index_dir: Path, engine: QAEngine, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    shutil.copytree(index_dir, index, symlinks=True)
    settings = Settings(index_dir=str(index))
    builds: dict[str, set[str]] = {}  # build id -> its article ids

    def record(path: Path | None = None) -> str:
        reader = IndexReader(path or index)
        builds[reader.build_id] = set(reader.article_ids())
        reader.close()
        return reader.build_id

    first = record()
    glacier = tmp_path / "glacier.txt"
    glacier.write_text(GLACIER_ARTICLE, encoding="utf-8")
    bees = tmp_path / "bees.txt"
    bees.write_text(ENGLISH_ARTICLE, encoding="utf-8")

    load = Load()
    stop = threading.Event()
    # waitress with 4 threads: requests overlap the swaps inside one process.
    with ServeProcess(tmp_path / "serve.log", "--index", index, "--threads", "4") as server:
        clients = [
            threading.Thread(target=_client, args=(server, n, stop, load)) for n in range(CLIENTS)
        ]
        for t in clients:
            t.start()
        try:
            time.sleep(0.5)
            added = indexing.add([glacier], index, engine.encoder, settings)
            record(added.index_path)
            time.sleep(0.3)
            record(indexing.add([bees], index, engine.encoder, settings).index_path)
            time.sleep(0.3)
            glacier_id = added.added[0]
            last = record(indexing.remove([glacier_id], index, engine.encoder).index_path)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in clients:
                t.join(timeout=60)
        assert not any(t.is_alive() for t in clients)

        # The removed article is gone for good from the running server.
        status, _, body = server.request("GET", f"/articles/{glacier_id}")
        assert status == 404, body[:200]
        status, headers, body = server.request("POST", "/ask", {"question": SWAP_QUESTIONS[0]})
        assert status == 200 and headers["x-index-build"] == last
        assert glacier_id not in {c["article_id"] for c in json.loads(body)["citations"]}
        assert server.stop() == 0

    assert not load.failures, load.failures[:5]
    assert len(builds) == 4
    # The adds were new segments and the removal deletion marks (qa.store.append).
    final = IndexReader(index)
    assert len(final.segments) == 3 and len(final.deleted_chunks) > 0
    final.close()
    assert glacier_id not in builds[first] | builds[last]
    seen: set[str] = set()
    for build, answer in load.answers:
        assert build in builds, f"X-Index-Build {build!r} is not a published build"
        seen.add(build)
        cited = {c["article_id"] for c in answer["citations"]}
        shown = {p["article_id"] for p in answer["passages"]}
        # Wholly from the build that served it: nothing from another build.
        assert cited | shown <= builds[build], (build, cited | shown - builds[build])
    assert first in seen and last in seen, (seen, len(load.answers))
    # The glacier article was cited while it was in: the swaps were really served.
    assert any(
        glacier_id in {c["article_id"] for c in answer["citations"]} for _, answer in load.answers
    )
