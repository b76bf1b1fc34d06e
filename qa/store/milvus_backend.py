"""Writing chunk search into Milvus (the "milvus" backend): one collection per
index, holding each chunk's vector (dense search) and its lexical terms (BM25
full-text search, computed by Milvus itself from the `terms` text through a
BM25 function).

Builds change the collection incrementally (docs/milvus.md): a chunk is keyed
by its content, so an add inserts only new chunks and a removal deletes only
removed ones. Each build is a generation: entities carry the generation that
inserted them (`born`), and a build searches `born <= its generation`, so the
inserts of the next build stay invisible to readers of this one. Each build
folder holds its keys in row order (`milvus_keys.npy`, hits map back to rows
through it) and the keys it removed (`milvus_stale.npy`): those stay in
Milvus for readers of the previous build and are deleted by the build after.

The collection is searched by `milvus_search.MilvusSearch` and dropped with
the index's last build by `milvus_drop.drop`; connecting is `milvus_client`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException

from ..errors import IndexMismatch
from .files import read_npy, save_npy
from .milvus_client import KEYS_NPY, KIND, STALE_NPY, connect, is_lite
from .milvus_drop import drop, drop_quietly
from .milvus_search import MilvusSearch
from .search import Connect

log = logging.getLogger(__name__)

INSERT_BATCH = 1000  # rows per insert call: well under gRPC's message size limit
MAX_TERMS_BYTES = 65_535  # Milvus's largest VARCHAR
# Exact (FLAT) search below this many chunks, as the FAISS store does (a few
# ms per query up to there); HNSW from it on, with ef >= 128 at search time.
HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
# FTS5's BM25 parameters, so both stores rank lexical hits alike.
BM25_K1 = 1.2
BM25_B = 0.75


def collection_name(build_id: str) -> str:
    """A valid Milvus collection name (letters, digits, '_') for a build."""
    return "qa_build_" + re.sub(r"\W", "_", build_id, flags=re.ASCII)


def dense_index(n_rows: int) -> str:
    """Exact search for small collections, HNSW for large ones."""
    return "HNSW" if n_rows >= HNSW_THRESHOLD else "FLAT"


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
                    drop_quietly(client, name)
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


def _delete_quietly(client: MilvusClient, name: str, where: str) -> None:
    try:
        client.delete(name, filter=where)
    except MilvusException as exc:
        log.warning("Milvus collection %s: entities %s not deleted: %s", name, where, exc.message)
