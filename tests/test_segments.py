"""Incremental builds (qa.store.append, qa.store.segments): an add is a new
segment beside the previous build's files, a removal marks rows deleted, a
compaction answers as a fresh full build, and a failed add leaves the
previous build. Real index, real encoders."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    ENGLISH_ARTICLE,
    FRENCH_ARTICLE,
    GLACIER_ARTICLE,
    SEED,
    CountingEncoder,
    encoder,
    run_script,
)

from qa import indexing, integrity
from qa.ingest import read_file
from qa.lexical import terms
from qa.pipeline import QAEngine
from qa.settings import Settings
from qa.store import (
    CHUNKS_NPY,
    META,
    RESCORE_NPY,
    SENTENCES_NPY,
    SQLITE,
    WORDS_NPY,
    IndexReader,
    append,
    current_build_id,
    faiss_backend,
    resolve_build,
    tantivy_lexical,
)
from qa.store.segments import DELETED_CHUNKS, DELETED_SENTENCES
from web import create_app

SEED_QUESTION = "Où se retrouvent les ministres ?"
BEES_QUESTION = "What did the beekeepers of Lincolnshire collect this autumn?"
GLACIER_QUESTION = "De combien le glacier du Trient a-t-il reculé ?"
LANTERN_QUESTION = "Combien de lanternes ont été installées ?"
QUESTIONS = (SEED_QUESTION, BEES_QUESTION, GLACIER_QUESTION, LANTERN_QUESTION)
# Files of the first segment that an add must share with the previous build.
SHARED = (CHUNKS_NPY, SENTENCES_NPY, WORDS_NPY, RESCORE_NPY, faiss_backend.CHUNKS_FAISS)


def write_corpus(folder: Path, names: tuple[str, ...]) -> Path:
    texts = {
        "seed-article.txt": SEED.read_text(encoding="utf-8"),
        "lanternes.txt": FRENCH_ARTICLE,
        "bees.txt": ENGLISH_ARTICLE,
        "glacier.txt": GLACIER_ARTICLE,
    }
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text(texts[name], encoding="utf-8")
    return folder


def full_build(root: Path, names: tuple[str, ...]) -> Path:
    corpus = write_corpus(root / "corpus", names)
    index = root / "index"
    report = indexing.build(corpus, index, encoder(), Settings(index_dir=str(index)))
    assert report.errors == []
    return index


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed, a French and an English article, one full build (read-only)."""
    return full_build(
        tmp_path_factory.mktemp("base"), ("seed-article.txt", "lanternes.txt", "bees.txt")
    )


@pytest.fixture
def index(base: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(base, tmp_path / "index", symlinks=True))


def article_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def article_id(path: Path) -> str:
    return read_file(path)[0][0].id


def settings(index: Path) -> Settings:
    return Settings(index_dir=str(index))


def meta(build: Path) -> dict:
    return json.loads((build / META).read_text())


def answers(index: Path) -> list[tuple[str | None, list[str]]]:
    engine = QAEngine(index, encoder(), settings(index))
    out = []
    for question in QUESTIONS:
        answer = engine.ask(question)
        out.append((answer.answer, [c.article_id for c in answer.citations]))
    return out


def test_an_add_is_a_new_segment_beside_the_previous_files(index: Path, tmp_path: Path) -> None:
    old = resolve_build(index)
    old_reader = IndexReader(index)
    old_rows = {a: old_reader.chunk_rows_of([a]) for a in old_reader.article_ids()}
    old_rows_total = old_reader.rows["chunks"]
    old_reader.close()
    glacier = article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)
    counting = CountingEncoder(encoder())
    report = indexing.add([glacier], index, counting, settings(index))
    assert report.added == [article_id(glacier)] and report.articles == 4

    new = resolve_build(index)
    assert new != old and old.exists()  # the previous build is kept for its readers
    built = meta(new)
    assert [s["dir"] for s in built["segments"]] == [".", f"segments/{built['build_id']}"]
    for name in SHARED:  # the same files, not copies: nothing of the old rows rewritten
        assert os.stat(new / name).st_ino == os.stat(old / name).st_ino, name
    tantivy_files = {p.name for p in (old / tantivy_lexical.FOLDER).iterdir() if "." in p.stem}
    for name in tantivy_files:
        if not name.endswith((".json", ".lock")):
            assert (
                os.stat(new / tantivy_lexical.FOLDER / name).st_ino
                == os.stat(old / tantivy_lexical.FOLDER / name).st_ino
            )
    # SQLite is the one copy: a build's writes must never reach the previous one.
    assert os.stat(new / SQLITE).st_ino != os.stat(old / SQLITE).st_ino
    # Only the new article's text was encoded.
    assert not any("beekeepers" in t for t in counting.texts)

    reader = IndexReader(index)  # checks every file, digests included
    assert reader.counts["articles"] == 4
    for a, rows in old_rows.items():
        assert reader.chunk_rows_of([a]) == rows  # no row renumbered
    new_rows = reader.chunk_rows_of([article_id(glacier)])
    assert new_rows[0] == old_rows_total
    for row in new_rows:  # the new segment's vectors are searched
        vector = np.asarray(reader.chunk_vectors[row], dtype=np.float32)
        assert reader.search_chunks(vector, 1)[0].row == row
    reader.close()
    previous = IndexReader(old)  # and the previous build still opens whole
    assert previous.counts["articles"] == 3
    previous.close()
    engine = QAEngine(index, encoder(), settings(index))
    assert article_id(glacier) in {c.article_id for c in engine.ask(GLACIER_QUESTION).citations}
    assert engine.ask(SEED_QUESTION).answered


def test_a_removal_marks_rows_deleted_and_they_are_never_found(index: Path, tmp_path: Path) -> None:
    reader = IndexReader(index)
    bees = next(a for a in reader.article_ids() if "Lincolnshire" in reader.article(a).text)
    chunk_rows = reader.chunk_rows_of([bees])
    sentence_rows = [s.row for s in reader.article_sentences(bees)]
    chunk_vectors = np.asarray(reader.chunk_vectors[chunk_rows], dtype=np.float32)
    rescore_vectors = np.asarray(reader.rescore_vectors[sentence_rows], dtype=np.float32)
    bee_terms = sorted({t for ts in reader.chunk_terms(chunk_rows).values() for t in ts})
    old = reader.path
    reader.close()

    report = indexing.remove([bees], index, encoder())
    assert report.removed == [bees] and report.articles == 2
    new = resolve_build(index)
    assert meta(new)["segments"] == meta(old)["segments"]  # no segment written
    assert os.stat(new / CHUNKS_NPY).st_ino == os.stat(old / CHUNKS_NPY).st_ino
    assert np.load(new / DELETED_CHUNKS).tolist() == chunk_rows
    assert np.load(new / DELETED_SENTENCES).tolist() == sentence_rows

    reader = IndexReader(index)
    live = reader.counts["chunks"]
    for vector in chunk_vectors:
        hits = reader.search_chunks(vector, 1000)
        assert len(hits) == live and not {h.row for h in hits} & set(chunk_rows)
    assert reader.lexical_chunks(bee_terms, 1000)  # other chunks share some terms
    assert not {h.row for h in reader.lexical_chunks(bee_terms, 1000)} & set(chunk_rows)
    assert reader.lexical_chunks(terms("beekeepers Lincolnshire", "en"), 10) == []
    for vector in rescore_vectors:
        hits = reader.rescore_sentences(vector, 10_000)
        assert len(hits) == reader.counts["sentences"]
        assert not {h.row for h in hits} & set(sentence_rows)
    assert reader.article(bees) is None and bees not in reader.article_ids()
    assert reader.words(["beekeepers", "lincolnshire"]) == {}
    reader.close()

    client = create_app(
        {
            "ENGINE": QAEngine(index, encoder(), settings(index)),
            "FEEDBACK_DB": tmp_path / "f.sqlite3",
        }
    ).test_client()
    listed = {a["id"] for a in client.get("/articles").get_json()["articles"]}
    assert bees not in listed and len(listed) == 2
    assert client.get(f"/articles/{bees}").status_code == 404
    for question in (BEES_QUESTION, "beekeepers Lincolnshire honey harvest"):
        answer = client.post("/ask", json={"question": question}).get_json()
        shown = {c["article_id"] for c in answer["citations"]} | {
            p["article_id"] for p in answer["passages"]
        }
        assert bees not in shown, question


def test_compaction_answers_as_a_fresh_full_build(index: Path, tmp_path: Path) -> None:
    glacier = article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)
    indexing.add([glacier], index, encoder(), settings(index))
    reader = IndexReader(index)
    bees = next(a for a in reader.article_ids() if "Lincolnshire" in reader.article(a).text)
    reader.close()
    indexing.remove([bees], index, encoder())
    segmented = answers(index)

    counting = CountingEncoder(encoder())
    report = indexing.compact(index, counting)
    assert counting.texts == []  # nothing encoded: every word is still known
    assert report.articles == 3 and report.removed == []
    compacted = meta(resolve_build(index))
    assert [s["dir"] for s in compacted["segments"]] == ["."]
    assert DELETED_CHUNKS not in compacted["files"]

    fresh_index = full_build(
        tmp_path / "fresh", ("seed-article.txt", "lanternes.txt", "glacier.txt")
    )
    fresh = meta(resolve_build(fresh_index))
    assert compacted["counts"] == fresh["counts"]
    assert compacted["faiss"] == fresh["faiss"]
    assert answers(index) == answers(fresh_index)
    # The segmented build cited the same articles before it was compacted.
    assert [c for _, c in segmented] == [c for _, c in answers(fresh_index)]


def test_a_failed_add_leaves_the_previous_build(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    glacier = article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)
    indexing.add([glacier], index, encoder(), settings(index))
    before = current_build_id(index)
    build = resolve_build(index)
    stats = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in build.rglob("*") if p.is_file()}
    expected = answers(index)

    def killed(*args: object) -> None:
        raise RuntimeError("killed while adding")

    monkeypatch.setattr(tantivy_lexical, "append", killed)
    text = GLACIER_ARTICLE.replace("Trient", "Rhône")
    with pytest.raises(RuntimeError, match="killed"):
        indexing.add([article_file(tmp_path, "rhone.txt", text)], index, encoder(), settings(index))
    assert current_build_id(index) == before
    assert not list((index / "builds").glob(".tmp-*"))
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in stats} == stats
    IndexReader(index).close()  # whole: digests, vectors, SQLite
    assert answers(index) == expected
    monkeypatch.undo()
    report = indexing.add(
        [article_file(tmp_path, "rhone.txt", text)], index, encoder(), settings(index)
    )
    assert report.articles == 5


def test_a_reader_of_the_previous_build_is_unaffected_by_the_swap(
    index: Path, tmp_path: Path
) -> None:
    reader = IndexReader(index)
    vector = np.asarray(reader.chunk_vectors[0], dtype=np.float32)
    query = terms(GLACIER_QUESTION, "fr")

    def seen() -> tuple[object, ...]:
        return (
            reader.search_chunks(vector, 50),
            reader.lexical_chunks(query, 50),
            reader.list_articles(),
            reader.counts,
        )

    before = seen()
    bees = next(a for a in reader.article_ids() if "Lincolnshire" in reader.article(a).text)
    indexing.add(
        [article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)], index, encoder(), settings(index)
    )
    assert seen() == before
    indexing.remove([bees], index, encoder())
    assert seen() == before
    reader.close()


def test_readding_the_same_content_to_a_segmented_build_adds_nothing(
    index: Path, tmp_path: Path
) -> None:
    glacier = article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)
    indexing.add([glacier], index, encoder(), settings(index))
    build = current_build_id(index)
    counting = CountingEncoder(encoder())
    report = indexing.add([glacier], index, counting, settings(index))
    assert report.added == [] and report.unchanged == [article_id(glacier)]
    assert current_build_id(index) == build and counting.texts == []
    assert len(meta(resolve_build(index))["segments"]) == 2


def test_a_build_from_before_segments_loads_and_its_first_add_rewrites_it(
    index: Path, tmp_path: Path
) -> None:
    build = resolve_build(index)
    older = meta(build)
    del older["segments"]  # as a build of the previous version wrote it
    (build / META).write_text(json.dumps(older))
    reader = IndexReader(index)
    assert len(reader.segments) == 1 and reader.counts == older["counts"]
    reader.close()
    expected = answers(index)
    assert expected[0][0]

    indexing.add(
        [article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)], index, encoder(), settings(index)
    )
    rewritten = meta(resolve_build(index))
    assert [s["dir"] for s in rewritten["segments"]] == ["."]  # whole, now with segments
    indexing.remove([article_id(tmp_path / "glacier.txt")], index, encoder())
    assert DELETED_CHUNKS in meta(resolve_build(index))["files"]  # ... so this one appends
    assert answers(index) == expected


def test_ivf_segments_share_the_first_ones_quantiser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # IVF from the first chunk on, so that the small test corpus gets IVF lists.
    monkeypatch.setattr(faiss_backend, "IVF_THRESHOLD", 1)
    index = full_build(tmp_path, ("seed-article.txt", "lanternes.txt", "bees.txt"))
    assert meta(resolve_build(index))["faiss"]["kind"] == "ivf_sq8"
    glacier = article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)
    indexing.add([glacier], index, encoder(), settings(index))
    reader = IndexReader(index)
    bees = next(a for a in reader.article_ids() if "Lincolnshire" in reader.article(a).text)
    reader.close()
    indexing.remove([bees], index, encoder())

    reader = IndexReader(index)
    assert len(reader.segments) == 2
    assert reader.meta["faiss"]["kind"] == "ivf_sq8"
    deleted = set(np.load(reader.path / DELETED_CHUNKS).tolist())
    live = sorted(set(range(reader.rows["chunks"])) - deleted)
    assert len(live) == reader.counts["chunks"]
    vectors = np.asarray(reader.chunk_vectors[list(range(reader.rows["chunks"]))], np.float32)
    for row in live:  # each live chunk, old segment or new, is its own nearest
        hits = reader.search_chunks(vectors[row], 1000)
        assert hits[0].row == row
        assert sorted(h.row for h in hits) == live  # every live row, no deleted one
    reader.close()
    assert article_id(glacier) in {c for _, cs in answers(index) for c in cs}


def test_a_flat_build_that_outgrows_exact_search_is_rewritten_as_ivf(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = meta(resolve_build(index))["counts"]["chunks"]
    monkeypatch.setattr(faiss_backend, "IVF_THRESHOLD", chunks + 1)
    indexing.add(
        [article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)], index, encoder(), settings(index)
    )
    rewritten = meta(resolve_build(index))
    assert rewritten["faiss"]["kind"] == "ivf_sq8"
    assert [s["dir"] for s in rewritten["segments"]] == ["."]  # one full rewrite...
    text = GLACIER_ARTICLE.replace("Trient", "Rhône")
    indexing.add([article_file(tmp_path, "rhone.txt", text)], index, encoder(), settings(index))
    assert len(meta(resolve_build(index))["segments"]) == 2  # ...then IVF segments


def test_appended_segments_are_merged_past_the_limit_rows_unchanged(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(append, "MAX_APPENDED", 2)
    paths = [
        article_file(tmp_path, f"{river}.txt", GLACIER_ARTICLE.replace("Trient", river))
        for river in ("Trient", "Rhône", "Aletsch")
    ]
    for path in paths[:2]:
        indexing.add([path], index, encoder(), settings(index))
    reader = IndexReader(index)
    assert len(reader.segments) == 3
    rows = {a: reader.chunk_rows_of([a]) for a in reader.article_ids()}
    first_appended = reader.segments[1].first_chunk
    reader.close()
    indexing.remove([article_id(paths[0])], index, encoder())
    indexing.add([paths[2]], index, encoder(), settings(index))

    reader = IndexReader(index)
    assert [s.dir for s in reader.segments] == [".", f"segments/{reader.build_id}"]
    merged = reader.segments[1]
    assert merged.first_chunk == first_appended
    assert merged.chunks == reader.rows["chunks"] - first_appended
    del rows[article_id(paths[0])]  # removed: its rows stay marked in the merged segment
    assert {a: reader.chunk_rows_of([a]) for a in rows} == rows
    deleted = set(np.load(reader.path / DELETED_CHUNKS).tolist())
    live = sorted(set(range(reader.rows["chunks"])) - deleted)
    assert len(live) == reader.counts["chunks"]
    vectors = np.asarray(reader.chunk_vectors[list(range(reader.rows["chunks"]))], np.float32)
    for row in live:
        hits = reader.search_chunks(vectors[row], 1000)
        assert hits[0].row == row and sorted(h.row for h in hits) == live
    reader.close()
    cited = {c for _, cs in answers(index) for c in cs}
    assert article_id(paths[0]) not in cited


def test_a_swap_checks_only_the_files_an_add_wrote(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    IndexReader(index).close()  # as a server that opened the previous build
    checked: list[str] = []
    digested: list[str] = []
    check, digest = integrity.check_vector_file, integrity.digest
    monkeypatch.setattr(integrity, "check_vector_file", lambda p: checked.append(p) or check(p))
    monkeypatch.setattr(integrity, "digest", lambda p, *a: digested.append(p) or digest(p, *a))
    indexing.add(
        [article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)], index, encoder(), settings(index)
    )
    checked.clear()
    digested.clear()
    reader = IndexReader(index)  # what a server does on the swap
    segment = reader.path / reader.segments[1].dir
    assert checked and all(p.parent == segment for p in checked)
    assert (reader.path / SQLITE) in digested  # copied, so checked again
    assert not any(p.parent == reader.path and p.suffix == ".npy" for p in digested)
    reader.close()


def test_compact_from_the_command_line(index: Path, tmp_path: Path) -> None:
    indexing.add(
        [article_file(tmp_path, "glacier.txt", GLACIER_ARTICLE)], index, encoder(), settings(index)
    )
    assert len(meta(resolve_build(index))["segments"]) == 2
    done = run_script("build_index.py", "--index", index, "--compact", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "4 articles" in done.stdout
    assert [s["dir"] for s in meta(resolve_build(index))["segments"]] == ["."]
