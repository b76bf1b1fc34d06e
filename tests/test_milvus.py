"""The Milvus store (qa.store.milvus_*) against Milvus Lite: the same corpus built with
both stores answers alike, meta.json describes the collection, a missing or
partial collection is named, and --add/--remove change the index's one
collection in place while the previous build's readers keep answering."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install -e '.[milvus]')")
pytest.importorskip(
    "milvus_lite", reason="milvus-lite is not installed (pip install -e '.[milvus]')"
)

from helpers import DATA, FRENCH_ARTICLE, PIAF, SEED, encoder
from pymilvus import MilvusClient

from qa import indexing
from qa.embed import Encoder
from qa.errors import IndexMismatch
from qa.evaluation import Question, load_piaf, load_seed
from qa.ingest import read_file
from qa.lexical import terms
from qa.pipeline import QAEngine
from qa.settings import Settings
from qa.store import IndexReader
from qa.store.milvus_backend import MilvusBackend, collection_name
from qa.store.milvus_client import KEYS_NPY
from qa.store.milvus_drop import drop
from qa.store.milvus_search import MilvusSearch

PIAF_SAMPLE = 3  # every 3rd PIAF question: 312 of 934, a fixed sample
AGREEMENT = 0.95
LANTERN_QUESTION = "Combien de visiteurs le festival des lanternes a-t-il attirés ?"


class MemoEncoder:
    """The real encoder, remembering every vector: the second store's build and
    questions reuse the first's, so the comparison costs one encoding."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.seen: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if new:
            self.seen.update(zip(new, self.inner.encode(new), strict=True))
        return np.stack([self.seen[t] for t in texts]) if texts else self.inner.encode(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)


@dataclass(frozen=True)
class Stores:
    faiss: Path
    milvus: Path
    uri: str
    encoder: MemoEncoder
    questions: list[Question]

    def engine(self, store: str) -> QAEngine:
        index = self.faiss if store == "faiss" else self.milvus
        return QAEngine(index, self.encoder, settings(index, store, self.uri))


def settings(index: Path, store: str = "milvus", uri: str = "") -> Settings:
    return Settings(index_dir=str(index), store=store, milvus_uri=uri)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    """The seed article and the PIAF paragraphs, built once with each store."""
    root = tmp_path_factory.mktemp("milvus")
    seed_articles, _ = read_file(SEED)
    piaf_articles, piaf_questions = load_piaf(PIAF)
    _, seed_questions = load_seed(DATA)
    articles = seed_articles + piaf_articles
    memo = MemoEncoder(encoder())
    uri = str(root / "milvus.db")
    for store in ("faiss", "milvus"):
        index = root / store
        report = indexing.build_from_articles(articles, index, memo, settings(index, store, uri))
        assert report.errors == []
    questions = seed_questions + piaf_questions[::PIAF_SAMPLE]
    return Stores(root / "faiss", root / "milvus", uri, memo, questions)


def meta_of(index: Path) -> dict:
    return json.loads((index / "current" / "meta.json").read_text())


def collections(uri: str) -> set[str]:
    client = MilvusClient(uri=uri)
    try:
        return set(client.list_collections())
    finally:
        client.close()


# ---------------------------------------------------------------- the two stores agree


def test_both_stores_cite_the_same_rank1_sentence(stores: Stores) -> None:
    faiss_engine, milvus_engine = stores.engine("faiss"), stores.engine("milvus")
    assert milvus_engine.reader.search.kind == "milvus"
    same = 0
    differ = []
    for q in stores.questions:
        a, b = faiss_engine.rank(q.text, 5).scored, milvus_engine.rank(q.text, 5).scored
        first_a = (a[0].article.id, a[0].sentence.start) if a else None
        first_b = (b[0].article.id, b[0].sentence.start) if b else None
        same += first_a == first_b
        if first_a != first_b:
            differ.append(q.text)
    rate = same / len(stores.questions)
    print(f"\nrank-1 cited sentence identical for {same}/{len(stores.questions)} = {rate:.1%}")
    assert rate >= AGREEMENT, differ[:10]


# ---------------------------------------------------------------- meta.json and the reader


def test_meta_records_the_milvus_collection(stores: Stores) -> None:
    meta = meta_of(stores.milvus)
    search = meta["search"]
    assert search["kind"] == "milvus"
    assert search["uri"] == str(Path(stores.uri).resolve())
    assert search["collection"] == collection_name(meta["build_id"])
    assert search["count"] == meta["counts"]["chunks"] > 300
    assert search["dim"] == meta["encoder"]["dim"]
    assert search["index"] == "FLAT"
    assert search["collection"] in collections(stores.uri)
    assert meta_of(stores.faiss)["search"] == {"kind": "faiss"}
    reader = IndexReader(stores.milvus)
    assert reader.search.kind == "milvus"
    assert IndexReader(stores.faiss).search.kind == "faiss"


def test_a_milvus_build_trains_and_writes_no_faiss_index(stores: Stores) -> None:
    meta = meta_of(stores.milvus)
    assert "faiss" not in meta and "chunks.faiss" not in meta["files"]
    assert not (stores.milvus / "current" / "chunks.faiss").exists()
    assert "faiss" in meta_of(stores.faiss)
    assert (stores.faiss / "current" / "chunks.faiss").exists()


def test_dense_and_lexical_rows_are_in_range_and_match_faiss(stores: Stores) -> None:
    milvus, faiss = IndexReader(stores.milvus), IndexReader(stores.faiss)
    n = milvus.counts["chunks"]
    question = "Quand la coalition s'est-elle réunie à Paris ?"
    vector = stores.encoder.encode([question])[0]
    dense = milvus.search.dense(vector, 10)
    assert len(dense) == 10
    assert all(0 <= r < n for r, _ in dense)
    scores = [s for _, s in dense]
    assert scores == sorted(scores, reverse=True)
    # FLAT inner product on both sides: the same chunks, the same cosines.
    expected = faiss.search.dense(vector, 10)
    assert [r for r, _ in dense] == [r for r, _ in expected]
    assert np.allclose(scores, [s for _, s in expected], atol=1e-5)

    query_terms = terms(question, "fr")
    lexical = milvus.search.lexical(query_terms, 10)
    assert lexical and all(0 <= r < n for r, _ in lexical)
    scores = [s for _, s in lexical]
    assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True)
    # Every hit holds a question term (any term may match, as with FTS5).
    held = milvus.chunk_terms([r for r, _ in lexical])
    assert all(held[r] & set(query_terms) for r, _ in lexical)
    fts = {r for r, _ in faiss.search.lexical(query_terms, 10)}
    assert len(fts & {r for r, _ in lexical}) >= 7
    assert milvus.search.lexical([], 10) == []
    assert milvus.search.lexical(["zzzquasiabsent"], 10) == []
    assert milvus.search.dense(vector, 0) == []


def test_concurrent_searches_agree_with_sequential_ones(stores: Stores) -> None:
    reader = IndexReader(stores.milvus)
    qs = [q.text for q in stores.questions[:24]]
    vectors = stores.encoder.encode(qs)

    def both(i: int) -> tuple[list, list]:
        return reader.search.dense(vectors[i], 20), reader.search.lexical(terms(qs[i], "fr"), 20)

    sequential = [both(i) for i in range(len(qs))]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(both, range(len(qs)))) == sequential


# ---------------------------------------------------------------- missing or partial collections


@pytest.fixture
def small(tmp_path: Path, stores: Stores) -> Path:
    """The seed article alone, in its own Milvus Lite file."""
    index = tmp_path / "index"
    seed, _ = read_file(SEED)
    indexing.build_from_articles(seed, index, stores.encoder, settings(index))
    return index


def test_missing_collection_is_named_with_the_fix(small: Path) -> None:
    search = meta_of(small)["search"]
    # The default Milvus Lite file: inside the index folder.
    assert search["uri"] == str((small / "milvus.db").resolve())
    drop(search)
    drop(search)  # already gone: nothing to do, no error
    with pytest.raises(IndexMismatch) as caught:
        IndexReader(small)
    message = str(caught.value)
    assert search["collection"] in message and "missing" in message
    assert "build_index.py --store milvus" in message


def test_collection_with_other_row_count_is_a_mismatch(small: Path) -> None:
    search = meta_of(small)["search"]
    # One chunk of the build lost from the collection.
    key = int(np.load(small / "current" / KEYS_NPY)[0])
    client = MilvusClient(uri=search["uri"])
    client.delete(search["collection"], ids=[key])
    client.close()
    with pytest.raises(IndexMismatch, match=f"{search['collection']}.* holds"):
        MilvusSearch.open(search, small / "current")


# ---------------------------------------------------------------- add and remove


def entities(uri: str, name: str) -> int:
    client = MilvusClient(uri=uri)
    try:
        found = client.query(
            name, filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(found[0]["count(*)"])
    finally:
        client.close()


def test_add_and_remove_change_one_collection_in_place(
    small: Path, stores: Stores, tmp_path: Path
) -> None:
    first = meta_of(small)["search"]
    uri, name = first["uri"], first["collection"]
    seed_chunks = first["count"]
    article = tmp_path / "lanternes.txt"
    article.write_text(FRENCH_ARTICLE, encoding="utf-8")
    vector = stores.encoder.encode_queries([LANTERN_QUESTION])[0]
    before = IndexReader(small)  # a reader of the first build, open across the add
    expected = before.search.dense(vector, 10), before.search.lexical(["lantern"], 10)

    report = indexing.add([article], small, stores.encoder, settings(small))
    (added,) = report.added
    second = meta_of(small)["search"]
    assert (second["uri"], second["collection"]) == (uri, name)  # the same collection
    assert second["generation"] == first["generation"] + 1
    assert collections(uri) == {name}
    # Only the new article's chunks were inserted.
    assert entities(uri, name) == second["count"] > seed_chunks
    engine = QAEngine(small, stores.encoder, settings(small))
    assert engine.ask(LANTERN_QUESTION).citations[0].article_id == added
    # The first build's reader answers as before, from its own chunks only.
    assert (before.search.dense(vector, 10), before.search.lexical(["lantern"], 10)) == expected
    assert len(before.search.dense(vector, 10_000)) == seed_chunks
    before.close()

    during = IndexReader(small)  # a reader of the second build, open across the removal
    lantern = set(during.chunk_rows_of([added]))
    assert lantern & {r for r, _ in during.search.dense(vector, 5)}
    indexing.remove([added], small, stores.encoder)
    third = meta_of(small)["search"]
    assert (third["collection"], collections(uri)) == (name, {name})
    assert third["count"] == seed_chunks and third["stale"] == len(lantern)
    assert engine.reload_if_changed()
    assert added not in {c.article_id for c in engine.ask(LANTERN_QUESTION).citations}
    now = IndexReader(small)
    hits = now.search.dense(vector, 10_000)
    assert sorted(r for r, _ in hits) == list(range(seed_chunks))
    assert len(now.search.lexical(terms(LANTERN_QUESTION, "fr"), 10_000)) <= seed_chunks
    # The second build's reader still finds the removed chunks until the next build.
    assert lantern <= {r for r, _ in during.search.dense(vector, 10_000)}
    during.close()
    now.close()

    # Added back, its chunks are inserted again; offered once more, nothing changes.
    again = indexing.add([article], small, stores.encoder, settings(small))
    assert again.added == [added] and meta_of(small)["search"]["stale"] == 0
    assert entities(uri, name) == meta_of(small)["search"]["count"]
    build = meta_of(small)["build_id"]
    same = indexing.add([article], small, stores.encoder, settings(small))
    assert same.added == [] and same.unchanged == [added]
    assert meta_of(small)["build_id"] == build and collections(uri) == {name}
    assert engine.reload_if_changed()
    assert engine.ask(LANTERN_QUESTION).citations[0].article_id == added


def test_republishing_the_same_chunks_inserts_nothing(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    for b in ("b1", "b2", "b3"):
        (builds / b).mkdir(parents=True)
    vectors = unit_rows(40)
    texts = [f"t{i % 7} common" for i in range(40)]
    vectors[6], texts[6] = vectors[5], texts[5]  # two copies of one chunk: two keys
    first = MilvusBackend(str(tmp_path / "m.db")).publish(builds / "b1", "b1", vectors, texts)
    uri, name = first["search"]["uri"], first["search"]["collection"]
    second = MilvusBackend.following(first["search"]).publish(builds / "b2", "b2", vectors, texts)
    assert second["search"]["collection"] == name and second["search"]["generation"] == 2
    assert entities(uri, name) == 40 and second["search"]["stale"] == 0
    # The same chunks in another order: still nothing inserted, and rows follow.
    third = MilvusBackend.following(second["search"]).publish(
        builds / "b3", "b3", vectors[::-1].copy(), texts[::-1]
    )["search"]
    assert entities(uri, name) == 40 and third["stale"] == 0
    search = MilvusSearch.open(third, builds / "b3")
    assert search.dense(vectors[0], 1)[0].row == 39
    assert {r for r, _ in search.lexical(["t3"], 100)} == {39 - i for i in range(3, 40, 7)}
    search.close()


def test_a_killed_writer_leaves_the_previous_build_answering(small: Path, stores: Stores) -> None:
    search = meta_of(small)["search"]
    reader = IndexReader(small)
    vector = stores.encoder.encode_queries([LANTERN_QUESTION])[0]
    expected = reader.search.dense(vector, 10)
    # A writer that inserted its generation's chunks and died before the swap.
    folder = small / "builds" / ".tmp-killed"
    folder.mkdir()
    MilvusBackend.following(search).publish(
        folder, "killed", unit_rows(5, search["dim"]), [f"mort{i}" for i in range(5)]
    )
    assert entities(search["uri"], search["collection"]) == search["count"] + 5
    assert reader.search.dense(vector, 10) == expected
    assert reader.search.lexical(["mort1"], 5) == []
    reader.close()
    assert IndexReader(small).search.dense(vector, 10) == expected  # loadable and whole
    # The next writer deletes what the killed one inserted.
    indexing.remove(["nothing-such"], small, stores.encoder)
    assert entities(search["uri"], search["collection"]) == search["count"]


def test_relative_lite_path_is_stored_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stores: Stores
) -> None:
    monkeypatch.chdir(tmp_path)
    seed, _ = read_file(SEED)
    indexing.build_from_articles(
        seed, Path("index"), stores.encoder, settings(Path("index"), uri="lite.db")
    )
    assert meta_of(tmp_path / "index")["search"]["uri"] == str((tmp_path / "lite.db").resolve())


# ---------------------------------------------------------------- the backend on its own


def unit_rows(n: int, dim: int = 32) -> np.ndarray:
    rows = np.random.default_rng(7).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_large_collections_get_hnsw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa.store.milvus_backend.HNSW_THRESHOLD", 100)
    vectors = unit_rows(300)
    folder = tmp_path / "builds" / "hnsw"
    folder.mkdir(parents=True)
    meta = MilvusBackend(str(tmp_path / "m.db")).publish(
        folder, "20260101T000000-hnsw", vectors, [f"t{i % 7} common" for i in range(300)]
    )["search"]
    assert meta["index"] == "HNSW" and meta["count"] == 300
    search = MilvusSearch.open(meta, folder)
    for row in (0, 123, 299):
        hits = search.dense(vectors[row], 5)
        assert hits[0][0] == row and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert {r for r, _ in search.lexical(["t3"], 100)} == set(range(3, 300, 7))
    search.close()
    drop(meta)
    assert meta["collection"] not in collections(meta["uri"])


def test_an_empty_build_publishes_an_empty_collection(tmp_path: Path) -> None:
    meta = MilvusBackend(str(tmp_path / "m.db")).publish(
        tmp_path, "20260101T000000-empty", np.zeros((0, 32), np.float32), []
    )["search"]
    search = MilvusSearch.open(meta, tmp_path)
    assert search.dense(unit_rows(1)[0], 5) == [] and search.lexical(["x"], 5) == []
