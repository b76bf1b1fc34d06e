"""Chunk search in Milvus: one collection per index, holding each chunk's
vector (dense search) and its lexical terms (BM25 full-text search, computed
by Milvus itself from the `terms` text through a BM25 function).

Builds change the collection incrementally (docs/milvus.md): a chunk is keyed
by its content, so an add inserts only new chunks and a removal deletes only
removed ones. Each build is a generation: entities carry the generation that
inserted them (`born`), and a build searches `born <= its generation`, so the
inserts of the next build stay invisible to readers of this one. Each build
folder holds its keys in row order (`milvus_keys.npy`, hits map back to rows
through it) and the keys it removed (`milvus_stale.npy`): those stay in
Milvus for readers of the previous build and are deleted by the build after.

The same code talks to Milvus Lite (a local `*.db` path, served in-process by
the `milvus-lite` package) and to a Milvus standalone or distributed server
(`http://host:19530`). A Milvus Lite path can be open in one process at a
time; for a builder and a server in separate processes, run a Milvus server
(or `milvus-lite server`) and give its http:// URI instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException

from ..errors import IndexMismatch, IndexProblem
from .files import read_npy, save_npy
from .layout import META
from .search import Connect, Hit, Hits

log = logging.getLogger(__name__)

KIND = "milvus"
KEYS_NPY = "milvus_keys.npy"  # row i of the build -> its chunk's key in the collection
STALE_NPY = "milvus_stale.npy"  # keys the build removed, deleted by the next build
INSERT_BATCH = 1000  # rows per insert call: well under gRPC's message size limit
MAX_TERMS_BYTES = 65_535  # Milvus's largest VARCHAR
MAX_TOP_K = 16_384  # Milvus's largest search limit
# Exact (FLAT) search below this many chunks, as the FAISS store does (a few
# ms per query up to there); HNSW from it on, with ef >= 128 at search time.
HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
HNSW_EF_SEARCH = 128
# FTS5's BM25 parameters, so both stores rank lexical hits alike.
BM25_K1 = 1.2
BM25_B = 0.75


class MilvusUnavailable(IndexProblem):
    """The Milvus a build's search lives in cannot be reached."""


def collection_name(build_id: str) -> str:
    """A valid Milvus collection name (letters, digits, '_') for a build."""
    return "qa_build_" + re.sub(r"\W", "_", build_id, flags=re.ASCII)


def dense_index(n_rows: int) -> str:
    """Exact search for small collections, HNSW for large ones."""
    return "HNSW" if n_rows >= HNSW_THRESHOLD else "FLAT"


def is_lite(uri: str) -> bool:
    """Whether pymilvus serves `uri` with Milvus Lite (its rule: a local `*.db` path)."""
    return uri.endswith(".db") and "://" not in uri


def connect(uri: str) -> MilvusClient:
    """A client for `uri`; pymilvus shares one gRPC channel per address, and a
    Milvus Lite path gets one in-process server per process."""
    lite_file = is_lite(uri)
    # Milvus Lite's in-process server answers idle keepalive pings with
    # GOAWAY "too_many_pings" (noise on stderr, then a reconnect): no pings
    # without calls there; a real server keeps pymilvus's defaults.
    options = {"grpc.keepalive_permit_without_calls": 0} if lite_file else {}
    try:
        return MilvusClient(uri=uri, grpc_options=options)
    except MilvusException as exc:
        hint = (
            " A Milvus Lite file can be open in one process at a time: stop the other "
            "process, or serve it with `milvus-lite server` and use its http:// URI."
        )
        message = f"Cannot connect to Milvus at {uri}: {exc.message}."
        raise MilvusUnavailable(message + (hint if lite_file else "")) from exc


def chunk_keys(vectors: np.ndarray, terms: list[str]) -> np.ndarray:
    """A stable int64 key per chunk, from its content: its vector rounded to
    float16 (as the build folder stores it, so a chunk carried into the next
    build keeps its key) and its terms. The n-th copy of the same content in a
    build gets its own key; copies are interchangeable, so that is stable too."""
    half = np.ascontiguousarray(vectors, dtype=np.float16)
    keys = np.zeros(len(terms), dtype=np.int64)
    seen: set[int] = set()
    for i, text in enumerate(terms):
        digest = hashlib.blake2b(half[i].tobytes() + text.encode("utf-8"), digest_size=8)
        copy = 0
        while True:
            key = int.from_bytes(digest.digest(), "little", signed=True)
            if key not in seen:
                break
            copy += 1
            digest.update(copy.to_bytes(4, "little"))
        seen.add(key)
        keys[i] = key
    return keys


class MilvusBackend:
    """Publishes a build's chunks into its index's Milvus collection. Nothing
    of the chunk search but its keys is written into the build folder: no
    FAISS index is trained.

    A backend made by `following` the current build's search continues its
    collection (an add or a removal); one made from a URI alone starts a new
    collection (a full build), and the old one is dropped with its last build.
    """

    kind = KIND

    def __init__(self, uri: str = "", previous: dict[str, Any] | None = None) -> None:
        if not uri:
            raise ValueError("--store milvus needs a Milvus URI (--milvus-uri / QA_MILVUS_URI)")
        # A Milvus Lite path is made absolute so that meta.json means the same
        # file whatever the reader's working directory.
        self.uri = str(Path(uri).resolve()) if is_lite(uri) else uri
        self.previous = previous if previous and "generation" in previous else None

    @classmethod
    def following(cls, search: dict[str, Any]) -> MilvusBackend:
        """The backend of the build after the one whose meta.json "search" is `search`."""
        return cls(search.get("uri", ""), search)

    def publish(
        self, folder: Path, build_id: str, vectors: np.ndarray, terms: list[str]
    ) -> dict[str, Any]:
        n, dim = vectors.shape
        if len(terms) != n:
            raise ValueError(f"{n} chunk vectors but {len(terms)} chunk terms")
        keys = chunk_keys(vectors, terms)
        client = connect(self.uri)
        try:
            if self.previous is None:
                search = self._create(client, build_id, int(dim), n)
                stale = np.zeros(0, dtype=np.int64)
                new = np.arange(n)
            else:
                search, stale, new = self._continue(client, folder, keys)
            name, generation = search["collection"], search["generation"]
            try:
                _insert(client, name, generation, keys, vectors, terms, new)
                client.flush(name)
                client.load_collection(name)
            except BaseException:
                # Leave no half-filled collection, and no entities of a
                # generation that was never published.
                if self.previous is None:
                    _drop_quietly(client, name)
                else:
                    _delete_quietly(client, name, f"born >= {generation}")
                raise
        finally:
            client.close()
        save_npy(folder / KEYS_NPY, keys)
        save_npy(folder / STALE_NPY, stale)
        search.update(
            build=build_id,
            index_dir=str(folder.resolve().parent.parent),
            dim=int(dim),
            count=int(n),
            stale=len(stale),
            metric="IP",
            lexical={"function": "BM25", "k1": BM25_K1, "b": BM25_B},
        )
        return {"search": search}

    def _create(self, client: MilvusClient, build_id: str, dim: int, n: int) -> dict[str, Any]:
        name = collection_name(build_id)
        index = dense_index(n)
        if client.has_collection(name):  # left by an interrupted attempt
            client.drop_collection(name)
        client.create_collection(
            name, schema=_schema(client, dim), index_params=_index_params(client, index)
        )
        return {"kind": KIND, "uri": self.uri, "collection": name, "generation": 1, "index": index}

    def _continue(
        self, client: MilvusClient, folder: Path, keys: np.ndarray
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        """Prepare the collection of the previous build for the next generation:
        returns the search entry, the keys this build removes and the rows it inserts."""
        previous = self.previous
        assert previous is not None
        name = previous["collection"]
        generation = int(previous["generation"]) + 1
        before = folder.parent / previous["build"]
        if not client.has_collection(name):
            raise IndexMismatch(
                f"Milvus collection {name!r} of the current build is missing at {self.uri}. "
                "Rebuild the index: `python scripts/build_index.py --store milvus ...`."
            )
        # Entities of a writer killed before its swap: no published build sees them.
        client.delete(name, filter=f"born >= {generation}")
        # What the previous build removed: only the build before it, pruned
        # by this write, still sees them.
        removed = read_npy(before / STALE_NPY)
        if len(removed):
            client.delete(name, ids=[int(k) for k in removed])
        kept = np.asarray(read_npy(before / KEYS_NPY))
        stale = np.setdiff1d(kept, keys).astype(np.int64)
        new = np.flatnonzero(~np.isin(keys, kept))
        search = {
            "kind": KIND,
            "uri": self.uri,
            "collection": name,
            "generation": generation,
            "index": previous.get("index", "FLAT"),
        }
        return search, stale, new

    def disk_bytes(self, n_vectors: int, dim: int) -> int:
        return 16 * n_vectors  # the keys; the collection lives in Milvus

    @staticmethod
    def open(meta: dict[str, Any], folder: Path, db: Connect) -> MilvusSearch:
        return MilvusSearch.open(meta["search"], folder)

    @staticmethod
    def drop(search: dict[str, Any]) -> None:
        drop(search)


def _insert(
    client: MilvusClient,
    name: str,
    generation: int,
    keys: np.ndarray,
    vectors: np.ndarray,
    terms: list[str],
    rows: np.ndarray,
) -> None:
    for i in range(0, len(rows), INSERT_BATCH):
        client.insert(
            name,
            [
                {
                    "key": int(keys[r]),
                    "born": generation,
                    "vector": np.asarray(vectors[r], dtype=np.float32).tolist(),
                    "terms": _clip(terms[r]),
                }
                for r in rows[i : i + INSERT_BATCH]
            ],
        )


def _schema(client: MilvusClient, dim: int) -> Any:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.INT64, is_primary=True)
    schema.add_field("born", DataType.INT64)  # the generation that inserted it
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    # Terms arrive stemmed, folded and space-joined; the standard tokenizer
    # (split on non-word characters, lower-case) gives them back unchanged and,
    # unlike 'whitespace', exists in Milvus Lite as well as in Milvus.
    schema.add_field(
        "terms",
        DataType.VARCHAR,
        max_length=MAX_TERMS_BYTES,
        enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="terms_bm25",
            function_type=FunctionType.BM25,
            input_field_names=["terms"],
            output_field_names=["sparse"],
        )
    )
    return schema


def _index_params(client: MilvusClient, index: str) -> Any:
    params = client.prepare_index_params()
    # Inner product on unit rows is the cosine, exactly as the FAISS store scores.
    dense = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION} if index == "HNSW" else {}
    params.add_index(field_name="vector", index_type=index, metric_type="IP", params=dense)
    params.add_index(
        field_name="sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
    )
    return params


def _clip(terms: str) -> str:
    """Terms cut at a term boundary to fit a VARCHAR (only a pathological
    chunk is that long; it loses lexical matches on its tail, not its place)."""
    raw = terms.encode("utf-8")
    if len(raw) <= MAX_TERMS_BYTES:
        return terms
    return raw[:MAX_TERMS_BYTES].decode("utf-8", "ignore").rsplit(" ", 1)[0]


class MilvusSearch:
    """Dense and BM25 search over one build's generation of its collection
    (reader side).

    Thread-safe without a lock: a pymilvus client is a gRPC channel, which
    serves concurrent calls, and nothing here changes after `open`.
    """

    kind = KIND

    def __init__(self, client: MilvusClient, meta: dict[str, Any], keys: np.ndarray) -> None:
        self.client = client
        self.uri: str = meta["uri"]
        self.collection: str = meta["collection"]
        self.count = int(meta["count"])
        self.index: str = meta.get("index", "FLAT")
        # Entities this generation sees: its own, and those it removed, still
        # there for the previous build's readers (found, then left out).
        self.filter = f"born <= {int(meta['generation'])}"
        self.extra = int(meta.get("stale", 0))
        self._order = np.argsort(keys, kind="stable")
        self._sorted = np.asarray(keys)[self._order]

    @classmethod
    def open(cls, meta: dict[str, Any], folder: Path) -> MilvusSearch:
        """Connect and check that the build's entities are in the collection."""
        uri, name, count = meta["uri"], meta["collection"], int(meta["count"])
        fix = (
            "Rebuild the index: `python scripts/build_index.py --store milvus "
            f"--milvus-uri {uri} ...`."
        )
        if "generation" not in meta:
            raise IndexMismatch(
                f"{folder}: a Milvus build of an older format (one collection per build). {fix}"
            )
        keys = np.asarray(read_npy(folder / KEYS_NPY))
        if len(keys) != count:
            raise IndexMismatch(f"{folder / KEYS_NPY}: {len(keys)} keys, meta.json says {count}.")
        client = connect(uri)
        try:
            if not client.has_collection(name):
                raise IndexMismatch(
                    f"Milvus collection {name!r} is missing at {uri} (dropped, or the "
                    f"Milvus data was lost); meta.json expects {count} chunks there. {fix}"
                )
            client.load_collection(name)  # a no-op when loaded; needed after a restart
            # Strong consistency: every entity of the build is visible before we count.
            found = client.query(
                name,
                filter=f"born <= {int(meta['generation'])}",
                output_fields=["count(*)"],
                consistency_level="Strong",
            )[0]["count(*)"]
        except MilvusException as exc:
            client.close()
            raise MilvusUnavailable(
                f"Milvus at {uri}: cannot open collection {name!r} ({exc.message}). {fix}"
            ) from exc
        except IndexMismatch:
            client.close()
            raise
        # The removed entities are deleted by the next build: between `count`
        # and `count + stale` are there.
        if not count <= int(found) <= count + int(meta.get("stale", 0)):
            client.close()
            raise IndexMismatch(
                f"Milvus collection {name!r} at {uri} holds {found} chunks of this build, "
                f"meta.json says {count}. {fix}"
            )
        return cls(client, meta, keys)

    def _rows(self, hits: list[dict[str, Any]], k: int, score: Any) -> Hits:
        """Hits as rows of this build, best first; entities it removed left out."""
        keys = np.array([int(h["key"]) for h in hits], dtype=np.int64)
        at = np.searchsorted(self._sorted, keys).clip(0, max(len(self._sorted) - 1, 0))
        out = []
        for h, key, i in zip(hits, keys, at, strict=True):
            if len(self._sorted) and self._sorted[i] == key:
                out.append(Hit(int(self._order[i]), score(h["distance"])))
        return out[:k]

    def dense(self, vector: np.ndarray, k: int) -> Hits:
        k = min(k, self.count, MAX_TOP_K)
        if k <= 0:
            return []
        limit = min(k + self.extra, MAX_TOP_K)
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.index == "HNSW":
            params["params"] = {"ef": max(HNSW_EF_SEARCH, limit)}
        hits = self.client.search(
            self.collection,
            data=[np.asarray(vector, dtype=np.float32).reshape(-1).tolist()],
            filter=self.filter,
            anns_field="vector",
            limit=limit,
            search_params=params,
            output_fields=["key"],
        )[0]
        return self._rows(hits, k, float)

    def lexical(self, terms: Sequence[str], k: int) -> Hits:
        # Distinct terms, as the FTS5 store's `"a" OR "b"` query counts each once.
        text = " ".join(dict.fromkeys(t for t in terms if t))
        k = min(k, self.count, MAX_TOP_K)
        if not text or k <= 0:
            return []
        hits = self.client.search(
            self.collection,
            data=[text],
            filter=self.filter,
            anns_field="sparse",
            limit=min(k + self.extra, MAX_TOP_K),
            search_params={"metric_type": "BM25", "params": {"drop_ratio_search": 0.0}},
            output_fields=["key"],
        )[0]
        # Hits come best first. Milvus reports BM25 as a positive score, Milvus
        # Lite as its negation (a distance); BM25 is never negative, so abs()
        # gives the score under both.
        return self._rows(hits, k, lambda d: abs(float(d)))

    def close(self) -> None:
        self.client.close()


def drop(meta: dict[str, Any]) -> None:
    """Free a pruned build's search: its collection, once no other build of
    its index folder uses it (the index's builds share one). Never raises: the
    new build is already published, so a failure here only leaves an orphan
    collection, logged by name."""
    uri, name = meta.get("uri", ""), meta.get("collection", "")
    if not uri or not name or _still_used(meta):
        return
    try:
        client = connect(uri)
    except MilvusUnavailable as exc:
        log.warning("Milvus collection %s not dropped: %s", name, exc)
        return
    try:
        _drop_quietly(client, name)
    finally:
        client.close()


def _still_used(meta: dict[str, Any]) -> bool:
    """Whether another build of the index folder searches the same collection.
    When that cannot be told (the folder moved), the collection is kept."""
    if "index_dir" not in meta:
        return False  # a bare publish (tests) or a build of the older format
    builds = Path(meta["index_dir"]) / "builds"
    if not builds.is_dir():
        log.warning("Milvus collection %s kept: %s is gone", meta["collection"], builds)
        return True
    for other in builds.iterdir():
        if other.name.startswith(".") or other.name == meta.get("build"):
            continue
        try:
            search = json.loads((other / META).read_text()).get("search") or {}
        except (OSError, ValueError):
            continue
        if (search.get("uri"), search.get("collection")) == (meta["uri"], meta["collection"]):
            return True
    return False


def _drop_quietly(client: MilvusClient, name: str) -> None:
    try:
        if client.has_collection(name):
            client.drop_collection(name)
    except MilvusException as exc:
        log.warning("Milvus collection %s not dropped: %s", name, exc.message)


def _delete_quietly(client: MilvusClient, name: str, where: str) -> None:
    try:
        client.delete(name, filter=where)
    except MilvusException as exc:
        log.warning("Milvus collection %s: entities %s not deleted: %s", name, where, exc.message)
