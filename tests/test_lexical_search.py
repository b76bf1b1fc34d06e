"""Chunk BM25 by tantivy (qa.store.tantivy_lexical): the same top hits as
SQLite FTS5 on real paragraphs and questions, recorded in meta.json and
checked like every file of a build, and builds from before it still searched
with FTS5."""

from __future__ import annotations

import json
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import PIAF, piaf_contexts

from qa.errors import IndexMismatch
from qa.evaluation import load_piaf
from qa.lexical import terms
from qa.store import IndexReader
from qa.store.search import fts_search
from qa.store.tantivy_lexical import FOLDER, TantivyLexical, write


def chunk_terms() -> list[str]:
    """Each PIAF paragraph's terms, space-joined as the index stores them."""
    return [" ".join(terms(p, "fr")) for p in piaf_contexts()]


@pytest.fixture(scope="module")
def paragraphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, sqlite3.Connection]:
    """The PIAF paragraphs' terms in a tantivy index and in an FTS5 table."""
    folder = tmp_path_factory.mktemp("lexical")
    texts = chunk_terms()
    write(folder, texts)
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0')"
    )
    db.executemany("INSERT INTO t(rowid, terms) VALUES (?, ?)", enumerate(texts))
    return folder, db


def test_tantivy_finds_what_fts5_finds(paragraphs: tuple[Path, sqlite3.Connection]) -> None:
    folder, db = paragraphs
    n = len(piaf_contexts())
    lexical = TantivyLexical(folder, n)
    held = {
        i: set(t.split()) for i, t in enumerate(" ".join(terms(p, "fr")) for p in piaf_contexts())
    }
    questions = load_piaf(PIAF)[1][::5]
    same_first = overlap = 0.0
    for q in questions:
        query = terms(q.text, "fr")
        hits = lexical.search(query, 20)
        expected = fts_search(db, "t", query, 20)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
        assert all(0 <= h.row < n and held[h.row] & set(query) for h in hits)
        assert len(hits) == len(expected)
        same_first += bool(hits) and hits[0].row == expected[0].row
        overlap += len({h.row for h in hits} & {r for r, _ in expected}) / max(1, len(expected))
    # Both are BM25 (k1 1.2, b 0.75); their IDFs differ slightly (tantivy's
    # log(1 + ...) never goes negative), so near-ties may swap.
    assert overlap / len(questions) >= 0.95
    assert same_first / len(questions) >= 0.9
    assert lexical.search([], 20) == [] and lexical.search(["zzzquasiabsent"], 20) == []
    assert lexical.search(terms(questions[0].text, "fr"), 0) == []


def test_a_build_indexes_chunk_terms_with_tantivy(index_dir: Path) -> None:
    reader = IndexReader(index_dir)
    meta = reader.meta
    assert meta["lexical"]["engine"] == "tantivy"
    files = [name for name in meta["files"] if name.startswith(FOLDER + "/")]
    assert files and all(name in meta["digests"]["files"] for name in files)
    hits = reader.lexical_chunks(terms("Où se retrouvent les ministres ?", "fr"), 5)
    assert hits and all(isinstance(h.row, int) for h in hits)
    reader.close()


def test_a_build_from_before_tantivy_is_searched_with_fts5(index_dir: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(index_dir, index, symlinks=True)
    build = (index / "current").resolve()
    question = terms("Où se retrouvent les ministres ?", "fr")
    with_tantivy = IndexReader(index).lexical_chunks(question, 5)
    meta = json.loads((build / "meta.json").read_text())
    del meta["lexical"]
    for entry in (meta["files"], meta["digests"]["files"]):
        for name in [n for n in entry if n.startswith(FOLDER + "/")]:
            del entry[name]
    (build / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(build / FOLDER)
    reader = IndexReader(index)
    with_fts5 = reader.lexical_chunks(question, 5)
    assert with_fts5 and with_fts5[0].row == with_tantivy[0].row
    assert {h.row for h in with_fts5} == {h.row for h in with_tantivy}


def test_a_missing_tantivy_file_is_named(index_dir: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(index_dir, index, symlinks=True)
    build = (index / "current").resolve()
    meta = json.loads((build / "meta.json").read_text())
    name = next(n for n in meta["files"] if n.startswith(FOLDER + "/"))
    (build / name).unlink()
    with pytest.raises(IndexMismatch) as info:
        IndexReader(index)
    assert f"{name}: missing" in str(info.value)


def test_concurrent_searches_agree_with_sequential_ones(
    paragraphs: tuple[Path, sqlite3.Connection],
) -> None:
    lexical = TantivyLexical(paragraphs[0], len(piaf_contexts()))
    queries = [terms(q.text, "fr") for q in load_piaf(PIAF)[1][:60]]
    sequential = [lexical.search(q, 20) for q in queries]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda q: lexical.search(q, 20), queries)) == sequential
