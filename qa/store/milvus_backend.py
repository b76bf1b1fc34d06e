"""Chunk search in Milvus: one collection per build, holding each chunk's
vector (dense search) and its lexical terms (BM25 full-text search, computed
by Milvus itself from the `terms` text through a BM25 function).

The same code talks to Milvus Lite (a local `*.db` path, served in-process by
the `milvus-lite` package) and to a Milvus standalone or distributed server
(`http://host:19530`). A Milvus Lite path can be open in one process at a
time; for a builder and a server in separate processes, run a Milvus server
(or `milvus-lite server`) and give its http:// URI instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException

from ..errors import IndexMismatch, IndexProblem
from .search import Connect, Hit, Hits

log = logging.getLogger(__name__)

KIND = "milvus"
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


class MilvusBackend:
    """Publishes a build's chunks as a new Milvus collection. Nothing of the
    chunk search is written into the build folder: no FAISS index is trained."""

    kind = KIND

    def __init__(self, uri: str = "") -> None:
        if not uri:
            raise ValueError("--store milvus needs a Milvus URI (--milvus-uri / QA_MILVUS_URI)")
        # A Milvus Lite path is made absolute so that meta.json means the same
        # file whatever the reader's working directory.
        self.uri = str(Path(uri).resolve()) if is_lite(uri) else uri

    def publish(
        self, folder: Path, build_id: str, vectors: np.ndarray, terms: list[str]
    ) -> dict[str, Any]:
        n, dim = vectors.shape
        if len(terms) != n:
            raise ValueError(f"{n} chunk vectors but {len(terms)} chunk terms")
        name = collection_name(build_id)
        index = dense_index(n)
        client = connect(self.uri)
        try:
            if client.has_collection(name):  # left by an interrupted attempt
                client.drop_collection(name)
            client.create_collection(
                name, schema=_schema(client, dim), index_params=_index_params(client, index)
            )
            try:
                for i in range(0, n, INSERT_BATCH):
                    client.insert(
                        name,
                        [
                            {"row": r, "vector": vectors[r].tolist(), "terms": _clip(terms[r])}
                            for r in range(i, min(n, i + INSERT_BATCH))
                        ],
                    )
                client.flush(name)
                client.load_collection(name)
            except BaseException:
                # Leave no half-filled collection behind.
                _drop_quietly(client, name)
                raise
        finally:
            client.close()
        search = {
            "kind": KIND,
            "uri": self.uri,
            "collection": name,
            "dim": int(dim),
            "count": int(n),
            "index": index,
            "metric": "IP",
            "lexical": {"function": "BM25", "k1": BM25_K1, "b": BM25_B},
        }
        return {"search": search}

    def disk_bytes(self, n_vectors: int, dim: int) -> int:
        return 0  # the collection lives in Milvus

    @staticmethod
    def open(meta: dict[str, Any], folder: Path, db: Connect) -> MilvusSearch:
        return MilvusSearch.open(meta["search"])

    @staticmethod
    def drop(search: dict[str, Any]) -> None:
        drop(search)


def _schema(client: MilvusClient, dim: int) -> Any:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
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
    """Dense and BM25 search over one build's collection (reader side).

    Thread-safe without a lock: a pymilvus client is a gRPC channel, which
    serves concurrent calls, and nothing here changes after `open`.
    """

    kind = KIND

    def __init__(self, client: MilvusClient, meta: dict[str, Any]) -> None:
        self.client = client
        self.uri: str = meta["uri"]
        self.collection: str = meta["collection"]
        self.count = int(meta["count"])
        self.index: str = meta.get("index", "FLAT")

    @classmethod
    def open(cls, meta: dict[str, Any]) -> MilvusSearch:
        """Connect and check that the build's collection is there and whole."""
        uri, name, count = meta["uri"], meta["collection"], int(meta["count"])
        client = connect(uri)
        fix = (
            "Rebuild the index: `python scripts/build_index.py --store milvus "
            f"--milvus-uri {uri} ...`."
        )
        try:
            if not client.has_collection(name):
                raise IndexMismatch(
                    f"Milvus collection {name!r} is missing at {uri} (dropped, or the "
                    f"Milvus data was lost); meta.json expects {count} chunks there. {fix}"
                )
            client.load_collection(name)  # a no-op when loaded; needed after a restart
            # Strong consistency: every row of the build is visible before we count.
            found = client.query(
                name, filter="", output_fields=["count(*)"], consistency_level="Strong"
            )[0]["count(*)"]
        except MilvusException as exc:
            client.close()
            raise MilvusUnavailable(
                f"Milvus at {uri}: cannot open collection {name!r} ({exc.message}). {fix}"
            ) from exc
        except IndexMismatch:
            client.close()
            raise
        if int(found) != count:
            client.close()
            raise IndexMismatch(
                f"Milvus collection {name!r} at {uri} holds {found} chunks, "
                f"meta.json says {count}. {fix}"
            )
        return cls(client, meta)

    def dense(self, vector: np.ndarray, k: int) -> Hits:
        k = min(k, self.count, MAX_TOP_K)
        if k <= 0:
            return []
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.index == "HNSW":
            params["params"] = {"ef": max(HNSW_EF_SEARCH, k)}
        hits = self.client.search(
            self.collection,
            data=[np.asarray(vector, dtype=np.float32).reshape(-1).tolist()],
            anns_field="vector",
            limit=k,
            search_params=params,
            output_fields=["row"],
        )[0]
        return [Hit(int(h["row"]), float(h["distance"])) for h in hits]

    def lexical(self, terms: Sequence[str], k: int) -> Hits:
        # Distinct terms, as the FTS5 store's `"a" OR "b"` query counts each once.
        text = " ".join(dict.fromkeys(t for t in terms if t))
        k = min(k, self.count, MAX_TOP_K)
        if not text or k <= 0:
            return []
        hits = self.client.search(
            self.collection,
            data=[text],
            anns_field="sparse",
            limit=k,
            search_params={"metric_type": "BM25", "params": {"drop_ratio_search": 0.0}},
            output_fields=["row"],
        )[0]
        # Hits come best first. Milvus reports BM25 as a positive score, Milvus
        # Lite as its negation (a distance); BM25 is never negative, so abs()
        # gives the score under both.
        return [Hit(int(h["row"]), abs(float(h["distance"]))) for h in hits]

    def close(self) -> None:
        self.client.close()


def drop(meta: dict[str, Any]) -> None:
    """Drop a pruned build's collection. Never raises: the new build is already
    published, so a failure here only leaves an orphan collection, logged by name."""
    uri, name = meta.get("uri", ""), meta.get("collection", "")
    if not uri or not name:
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


def _drop_quietly(client: MilvusClient, name: str) -> None:
    try:
        if client.has_collection(name):
            client.drop_collection(name)
    except MilvusException as exc:
        log.warning("Milvus collection %s not dropped: %s", name, exc.message)
