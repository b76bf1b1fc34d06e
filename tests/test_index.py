"""The index folder (qa.store, qa.indexing): build, meta.json, round trips, add and
remove with vectors carried over, damaged files, and interrupted builds."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    ENGLISH_ARTICLE,
    FRENCH_ARTICLE,
    GLACIER_ARTICLE,
    SCRIPTS,
    SEED,
    CountingEncoder,
    encoder,
    popen_script,
    run_script,
    run_with_tty_stderr,
    titled,
    wait_for,
    write_piaf_jsonl,
)

from qa import indexing
from qa.chunk import chunk_article
from qa.embed import load_rescorer
from qa.errors import EncoderMismatch, IndexMismatch, IndexMissing
from qa.ingest import read_file
from qa.integrity import digest
from qa.pipeline import QAEngine
from qa.segment import split_sentences
from qa.settings import Settings
from qa.store import IndexReader, current_build_id

SEED_QUESTION = "Où se retrouvent les ministres ?"
# (Not "How much honey…": the article gives no amount, and a number question is
# answered only by a sentence that holds one.)
BEES_QUESTION = "What did the beekeepers of Lincolnshire collect this autumn?"
GLACIER_QUESTION = "De combien le glacier du Trient a-t-il reculé ?"
# Sentence and chunk vectors are stored as float16: equal to the encoder's
# within its precision.
HALF_FLOAT = float(np.finfo(np.float16).eps)


@dataclass(frozen=True)
class Built:
    corpus: Path
    index: Path
    ids: dict[str, str]  # file name -> article id


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The seed, a small French and a small English article, indexed once (read-only)."""
    root = tmp_path_factory.mktemp("built")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / "seed-article.txt")
    (corpus / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    (corpus / "bees.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    index = root / "index"
    report = indexing.build(corpus, index, encoder(), Settings(index_dir=str(index)))
    assert report.errors == []
    ids = {p.name: read_file(p)[0][0].id for p in sorted(corpus.iterdir())}
    return Built(corpus, index, ids)


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def engine(index: Path) -> QAEngine:
    return QAEngine(index, encoder(), Settings(index_dir=str(index)))


def cited_ids(index: Path, question: str) -> tuple[set[str], set[str]]:
    """(article ids cited, article ids of returned passages) for a question."""
    answer = engine(index).ask(question)
    return {c.article_id for c in answer.citations}, {p.article_id for p in answer.passages}


# ---------------------------------------------------------------- build and meta.json


def test_build_loads_and_meta_describes_it(built: Built) -> None:
    reader = IndexReader(built.index)
    meta = reader.meta
    assert meta["format_version"] == 1
    assert meta["encoder"] == {"name": "use-multilingual-v3", "dim": 512}
    assert meta["chunking"]["size"] == 600 and meta["chunking"]["overlap"] == 150
    assert meta["build_id"] == current_build_id(built.index) == reader.path.name
    created = datetime.datetime.strptime(meta["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    age = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - created
    assert datetime.timedelta(0) <= age < datetime.timedelta(hours=1)
    assert meta["counts"]["articles"] == 3
    assert {"chunks.faiss", "sentences.npy", "words.npy", "store.sqlite"} <= set(meta["files"])
    for name, size in meta["files"].items():
        assert (reader.path / name).stat().st_size == size
    on_disk = json.loads((built.index / "current" / "meta.json").read_text())
    assert on_disk == meta
    reader.close()


def test_counts_agree_with_sqlite_and_faiss(built: Built) -> None:
    reader = IndexReader(built.index)
    counts = reader.meta["counts"]
    db = reader.db
    for table in ("articles", "chunks", "sentences"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == counts[table]
    assert db.execute("SELECT count(*) FROM vocab").fetchone()[0] == counts["words"]
    assert db.execute("SELECT count(*) FROM sentences_fts").fetchone()[0] == counts["sentences"]
    assert db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == counts["chunks"]
    assert reader.search.index.ntotal == counts["chunks"]
    assert reader.search.index.d == 512
    assert reader.sentence_vectors.shape == (counts["sentences"], 512)
    rescorer = reader.meta["rescorer"]  # the default second sentence encoder
    assert reader.rescore_vectors is not None
    assert reader.rescore_vectors.shape == (counts["sentences"], rescorer["dim"])
    assert reader.word_vectors.shape == (counts["words"], 512)
    if (reader.path / "chunks.npy").exists():  # exact chunk vectors, row i = FAISS row i
        chunk_vectors = np.load(reader.path / "chunks.npy")
        assert chunk_vectors.shape == (counts["chunks"], 512)
        rebuilt = np.stack([reader.search.index.reconstruct(i) for i in range(counts["chunks"])])
        assert np.allclose(chunk_vectors, rebuilt, atol=HALF_FLOAT)
    assert sorted(reader.article_ids()) == sorted(built.ids.values())
    # the rows of each table are 0..n-1, the FAISS and numpy row numbers
    for table in ("chunks", "sentences"):
        rows = [r[0] for r in db.execute(f"SELECT row FROM {table} ORDER BY row")]
        assert rows == list(range(counts[table]))
    reader.close()


def test_round_trip_offsets_and_vectors(built: Built) -> None:
    """Every stored sentence and chunk slices the stored text where segmentation and
    chunking put it, and its vector row is the encoding of that slice."""
    reader = IndexReader(built.index)
    enc = encoder()
    assert reader.rescorer is not None
    rescorer = load_rescorer(reader.rescorer["name"])
    assert rescorer is not None
    for article_id in reader.article_ids():
        article = reader.article(article_id)
        assert article is not None
        sentences = split_sentences(article.text)
        stored = reader.article_sentences(article_id)
        assert [(s.idx, s.start, s.end, s.heading) for s in stored] == [
            (i, s.start, s.end, s.heading) for i, s in enumerate(sentences)
        ]
        texts = [article.text[s.start : s.end] for s in stored]
        assert texts == [s.text for s in sentences]
        rows = [s.row for s in stored]
        # a sentence's vectors encode it under the article's title, by both encoders
        embedded = [titled(article, t) for t in texts]
        assert np.allclose(reader.sentence_vectors[rows], enc.encode(embedded), atol=HALF_FLOAT)
        assert reader.rescore_vectors is not None
        assert np.allclose(reader.rescore_vectors[rows], rescorer.encode(embedded), atol=1e-4)

        chunk_rows = reader.db.execute(
            'SELECT row, chunk_id, start, "end", first_sentence, last_sentence FROM chunks '
            "WHERE article_id = ? ORDER BY row",
            (article_id,),
        ).fetchall()
        expected = chunk_article(article_id, article.text, sentences, 600, 150)
        assert [r[1:] for r in chunk_rows] == [
            (c.chunk_id, c.start, c.end, c.first_sentence, c.last_sentence) for c in expected
        ]
        for (_, _, start, end, first, last), c in zip(chunk_rows, expected, strict=True):
            assert article.text[start:end] == c.text
            assert start == sentences[first].start and end == sentences[last].end
        chunk_vectors = np.stack([reader.search.index.reconstruct(r[0]) for r in chunk_rows])
        embedded = [titled(article, c.text) for c in expected]
        assert np.allclose(chunk_vectors, enc.encode(embedded), atol=1e-4)
    norms = np.linalg.norm(np.asarray(reader.sentence_vectors, dtype=np.float32), axis=1)
    assert np.allclose(norms, 1.0, atol=HALF_FLOAT)
    reader.close()


def test_sentence_and_chunk_vectors_are_stored_as_float16(built: Built) -> None:
    reader = IndexReader(built.index)
    assert reader.sentence_vectors.dtype == np.float16
    assert reader.chunk_vectors.dtype == np.float16
    # The second encoder's vectors are multiplied whole per question: float32.
    assert reader.rescore_vectors is not None and reader.rescore_vectors.dtype == np.float32
    files = reader.meta["files"]
    n, dim = reader.counts["sentences"], reader.dim
    assert files["sentences.npy"] < n * dim * 2 + 1024  # half of float32's bytes, and a header
    reader.close()


def test_answers_cite_exact_slices(built: Built) -> None:
    qa = engine(built.index)
    for question, source in [(SEED_QUESTION, "seed-article.txt"), (BEES_QUESTION, "bees.txt")]:
        answer = qa.ask(question)
        assert answer.answered, question
        top = answer.citations[0]
        assert top.article_id == built.ids[source]
        text = qa.reader.article(top.article_id).text  # type: ignore[union-attr]
        assert text[top.start : top.end] == top.sentence == answer.answer
    assert "11H00" in (qa.ask(SEED_QUESTION).answer or "")


# ---------------------------------------------------------------- add


def stored_vectors(index: Path, article_id: str) -> tuple[np.ndarray, np.ndarray]:
    reader = IndexReader(index)
    item = reader.indexed_article(article_id)
    reader.close()
    return item.sentence_vectors.copy(), item.chunk_vectors.copy()


def test_add_keeps_old_vectors_and_encodes_only_new_text(built: Built, tmp_path: Path) -> None:
    index = copy_index(built.index, tmp_path / "index")
    before_id = current_build_id(index)
    before = {i: stored_vectors(index, i) for i in built.ids.values()}
    new = tmp_path / "glacier.txt"
    new.write_text(GLACIER_ARTICLE, encoding="utf-8")
    counting = CountingEncoder(encoder())
    report = indexing.add([new], index, counting, Settings(index_dir=str(index)))
    [article] = read_file(new)[0]
    assert report.added == [article.id] and report.removed == [] and report.errors == []

    reader = IndexReader(index)
    assert reader.build_id != before_id
    assert sorted(reader.article_ids()) == sorted([*built.ids.values(), article.id])
    assert reader.meta["counts"]["articles"] == 4
    reader.close()
    for article_id, (sentences, chunks) in before.items():
        after_s, after_c = stored_vectors(index, article_id)
        assert np.array_equal(after_s, sentences), article_id
        assert np.array_equal(after_c, chunks), article_id
    # only the new article's sentences, chunks and new words went through the encoder
    old_sentences = {
        s.text for p in built.corpus.iterdir() for s in split_sentences(read_file(p)[0][0].text)
    }
    new_sentences = [s.text for s in split_sentences(article.text)]
    encoded = "\n\n".join(counting.texts)
    assert all(s in encoded for s in new_sentences)
    assert not [s for s in old_sentences if s in encoded]
    assert len(counting.texts) < 100
    assert built.ids["seed-article.txt"] in cited_ids(index, SEED_QUESTION)[0]
    assert article.id in cited_ids(index, GLACIER_QUESTION)[0]


def test_readding_the_same_file_adds_nothing(built: Built, tmp_path: Path) -> None:
    index = copy_index(built.index, tmp_path / "index")
    counts = IndexReader(index).meta["counts"]
    counting = CountingEncoder(encoder())
    report = indexing.add(
        [built.corpus / "bees.txt"], index, counting, Settings(index_dir=str(index))
    )
    assert report.added == [] and report.removed == []
    assert report.unchanged == [built.ids["bees.txt"]]
    assert counting.texts == []
    reader = IndexReader(index)
    assert reader.meta["counts"] == counts
    reader.close()


def test_changed_file_replaces_the_old_version(built: Built, tmp_path: Path) -> None:
    index = copy_index(built.index, tmp_path / "index")
    path = tmp_path / "glacier.txt"
    path.write_text(GLACIER_ARTICLE, encoding="utf-8")
    settings = Settings(index_dir=str(index))
    first = indexing.add([path], index, encoder(), settings).added
    path.write_text(GLACIER_ARTICLE.replace("quarante", "soixante"), encoding="utf-8")
    report = indexing.add([path], index, encoder(), settings)
    assert report.removed == first and len(report.added) == 1 and report.added != first
    reader = IndexReader(index)
    ids = reader.article_ids()
    assert first[0] not in ids and report.added[0] in ids
    assert reader.meta["counts"]["articles"] == 4
    texts = [a.text for a in reader.articles(ids).values()]
    assert not any("quarante mètres" in t for t in texts)
    assert any("soixante mètres" in t for t in texts)
    reader.close()
    answer = engine(index).ask(GLACIER_QUESTION)
    assert answer.answered and "soixante" in (answer.answer or "")
    assert first[0] not in {c.article_id for c in answer.citations}


def test_changed_file_under_another_path_spelling_replaces(built: Built, tmp_path: Path) -> None:
    index = copy_index(built.index, tmp_path / "index")
    path = tmp_path / "glacier.txt"
    path.write_text(GLACIER_ARTICLE, encoding="utf-8")
    settings = Settings(index_dir=str(index))
    old = indexing.add([path], index, encoder(), settings).added
    path.write_text(GLACIER_ARTICLE.replace("quarante", "soixante"), encoding="utf-8")
    spelled = Path(os.path.relpath(path, Path.cwd()))
    assert str(spelled) != str(path)
    indexing.add([spelled], index, encoder(), settings)
    reader = IndexReader(index)
    assert old[0] not in reader.article_ids()
    reader.close()


# ---------------------------------------------------------------- remove


def test_removed_article_is_never_cited(built: Built, tmp_path: Path) -> None:
    index = copy_index(built.index, tmp_path / "index")
    bees = built.ids["bees.txt"]
    cited, passages = cited_ids(index, BEES_QUESTION)
    assert bees in cited and bees in passages
    report = indexing.remove([bees], index, encoder())
    assert report.removed == [bees] and report.errors == []
    reader = IndexReader(index)
    assert bees not in reader.article_ids()
    assert reader.meta["counts"]["articles"] == 2
    for table in ("sentences", "chunks"):
        n = reader.db.execute(f"SELECT count(*) FROM {table} WHERE article_id = ?", (bees,))
        assert n.fetchone()[0] == 0
    assert reader.words(["beekeepers", "lincolnshire", "honey"]) == {}
    reader.close()
    for question in (BEES_QUESTION, "beekeepers Lincolnshire honey harvest", "Dr. Ellis"):
        cited, passages = cited_ids(index, question)
        assert bees not in cited | passages, question
    # the others are untouched and still answer
    assert built.ids["seed-article.txt"] in cited_ids(index, SEED_QUESTION)[0]


def test_removing_an_unknown_id_is_reported(built: Built, tmp_path: Path) -> None:
    index = copy_index(built.index, tmp_path / "index")
    report = indexing.remove(["no-such-id"], index, encoder())
    assert report.removed == []
    assert [str(e) for e in report.errors] == [f"no-such-id: no article with this id in {index}."]
    reader = IndexReader(index)
    assert sorted(reader.article_ids()) == sorted(built.ids.values())
    reader.close()


# ---------------------------------------------------------------- encoder and damage


def test_querying_with_another_encoder(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    minilm = encoder("bundled:all-MiniLM-L6-v2")
    with pytest.raises(EncoderMismatch) as info:
        QAEngine(built.index, minilm)
    message = str(info.value)
    for part in ("use-multilingual-v3", "512", "bundled:all-MiniLM-L6-v2", "384", "--model"):
        assert part in message, message
    assert "meta.json" in message
    with pytest.raises(EncoderMismatch):
        indexing.remove(["x"], built.index, minilm)


def _truncate(build: Path) -> str:
    path = build / "chunks.faiss"
    path.write_bytes(path.read_bytes()[:100])
    return "chunks.faiss"


def _delete_meta(build: Path) -> str:
    (build / "meta.json").unlink()
    return "meta.json"


def _garbage_meta(build: Path) -> str:
    (build / "meta.json").write_bytes(b"\x00garbage{")
    return "meta.json"


def _old_format_meta(build: Path) -> str:
    meta = json.loads((build / "meta.json").read_text())
    meta["format_version"] = 99
    (build / "meta.json").write_text(json.dumps(meta))
    return "meta.json"


def _garbage_faiss_same_size(build: Path) -> str:
    path = build / "chunks.faiss"
    path.write_bytes(b"\xff" * path.stat().st_size)
    return "chunks.faiss"


def _update_meta(build: Path, name: str) -> None:
    """meta.json's size and digest of `name` made to match its new content, so
    that only the checks after them can see what changed."""
    meta = json.loads((build / "meta.json").read_text())
    meta["files"][name] = (build / name).stat().st_size
    meta["digests"]["files"][name] = digest(build / name, meta["digests"]["scheme"])
    (build / "meta.json").write_text(json.dumps(meta))


def _wrong_shape_sentences(build: Path) -> str:
    """Fewer rows, with meta.json updated so only the shape check can see it."""
    path = build / "sentences.npy"
    np.save(path, np.load(path)[:-1])
    _update_meta(build, "sentences.npy")
    return "sentences.npy"


def _missing_words(build: Path) -> str:
    (build / "words.npy").unlink()
    return "words.npy"


def _sqlite_row_gone(build: Path) -> str:
    """A row deleted in place: same file size, one article fewer than meta.json says."""
    path = build / "store.sqlite"
    size = path.stat().st_size
    db = sqlite3.connect(path)
    db.execute("DELETE FROM articles WHERE rowid = (SELECT max(rowid) FROM articles)")
    db.commit()
    db.close()
    assert path.stat().st_size == size
    _update_meta(build, "store.sqlite")  # only the row counts can see it
    return "store.sqlite"


@pytest.mark.parametrize(
    "damage",
    [
        _truncate,
        _delete_meta,
        _garbage_meta,
        _old_format_meta,
        _garbage_faiss_same_size,
        _wrong_shape_sentences,
        _missing_words,
        _sqlite_row_gone,
    ],
)
def test_damaged_index_names_the_file(built: Built, tmp_path: Path, damage: object) -> None:
    index = copy_index(built.index, tmp_path / "index")
    name = damage(index / "current")  # type: ignore[operator]
    with pytest.raises(IndexMismatch) as info:
        IndexReader(index)
    message = str(info.value)
    assert f"{name}:" in message and "Rebuild the index" in message, message
    with pytest.raises(IndexMismatch):
        engine(index)


def test_missing_index_says_how_to_build_it(tmp_path: Path) -> None:
    for folder in (tmp_path / "nothing-here", tmp_path):
        with pytest.raises(IndexMissing) as info:
            IndexReader(folder)
        message = str(info.value)
        assert str(folder) in message
        assert f"scripts/build_index.py --corpus corpus --index {folder}" in message
    with pytest.raises(IndexMissing):
        QAEngine.load(Settings(index_dir=str(tmp_path / "nothing-here")))


# ---------------------------------------------------------------- interrupted builds

PIAF_QUESTION = "En quelle année l'île Saint-Paul a-t-elle été découverte ?"  # piaf-0: 1559


def check_serving(index: Path, build_id: str | None, question: str, article_id: str) -> None:
    """The index loads as build `build_id` and answers `question` from `article_id`."""
    assert current_build_id(index) == build_id
    reader = IndexReader(index)
    assert reader.build_id == build_id
    reader.close()
    assert article_id in cited_ids(index, question)[0]


@pytest.mark.slow
def test_sigkill_during_build_leaves_a_whole_index(built: Built, tmp_path: Path) -> None:
    """SIGKILL rebuilds at several points: start-up, reading, encoding (all 185 PIAF
    paragraphs: seconds of work) and writing (a small corpus, so that the write
    comes soon). The index always loads and answers, as the previous build (or, if
    the kill came after the swap, as the whole new one); a rerun then finishes and
    cleans up."""
    index = copy_index(built.index, tmp_path / "index")
    large, small = tmp_path / "large", tmp_path / "small"
    large.mkdir()
    small.mkdir()
    write_piaf_jsonl(large / "piaf.jsonl")
    n = write_piaf_jsonl(small / "piaf.jsonl", 10)
    builds = index / "builds"
    serving = current_build_id(index)
    probe = (SEED_QUESTION, built.ids["seed-article.txt"])

    caught_writing = 0
    for corpus, when in [(large, 0.2), (large, 0.6), (large, 1.2), (large, 2.5)] + [
        (small, "writing")
    ] * 3:
        if when == "writing" and caught_writing:
            break
        leftovers = set(builds.glob(".tmp-*"))

        def writing() -> bool:
            return bool(set(builds.glob(".tmp-*")) - leftovers)  # noqa: B023

        proc = popen_script("build_index.py", "--corpus", corpus, "--index", index, "--quiet")
        if when == "writing":
            wait_for(writing, timeout=120, every=0.0005)
        else:
            time.sleep(float(when))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        now = current_build_id(index)
        if now != serving:  # the kill came after the swap: the new build is whole
            assert when == "writing"
            reader = IndexReader(index)
            assert reader.meta["counts"]["articles"] == n
            reader.close()
            serving, probe = now, (PIAF_QUESTION, "piaf-0")
        elif when == "writing":
            assert [p for p in builds.iterdir() if p.name != serving], "no partial build left"
            caught_writing += 1
        check_serving(index, serving, *probe)
    assert caught_writing, "no kill landed while the build was being written"

    done = run_script("build_index.py", "--corpus", small, "--index", index, "--quiet")
    assert done.returncode == 0, done.stderr
    check_serving(index, current_build_id(index), PIAF_QUESTION, "piaf-0")
    reader = IndexReader(index)
    assert reader.meta["counts"]["articles"] == n
    reader.close()
    assert not list(builds.glob(".tmp-*")), "leftovers of killed builds not cleaned"
    assert not list(index.glob(".current-*"))
    assert len(list(builds.iterdir())) <= 2  # the new build and the one before


def test_ctrl_c_exits_130_and_keeps_previous_index(built: Built, tmp_path: Path) -> None:
    index = copy_index(built.index, tmp_path / "index")
    previous = current_build_id(index)
    corpus = tmp_path / "piaf"
    corpus.mkdir()
    write_piaf_jsonl(corpus / "piaf.jsonl")  # all 185: seconds of work to interrupt

    def interrupt(proc: subprocess.Popen[bytes]) -> None:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)

    code, out, err = run_with_tty_stderr(
        [SCRIPTS / "build_index.py", "--corpus", corpus, "--index", index],
        until="encoding",
        then=interrupt,
    )
    assert code == 130, (out, err)
    assert "interrupted: the previous index is untouched" in err
    assert "Traceback" not in err
    assert out == ""
    check_serving(index, previous, SEED_QUESTION, built.ids["seed-article.txt"])
