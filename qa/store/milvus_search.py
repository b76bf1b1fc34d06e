"""Dense and BM25 chunk search over one build's generation of its index's
Milvus collection: the reader side of the Milvus store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient, MilvusException

from ..errors import IndexMismatch
from .files import read_npy
from .milvus_client import KEYS_NPY, KIND, MilvusUnavailable, connect
from .search import Hit, Hits

MAX_TOP_K = 16_384  # Milvus's largest search limit
# ef >= 128 at search time on an HNSW collection (see milvus_backend.HNSW_THRESHOLD).
HNSW_EF_SEARCH = 128


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
