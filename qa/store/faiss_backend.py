"""The default search backend: FAISS for chunk vectors (`chunks.faiss` in the
build folder, memory-mapped by readers) and SQLite FTS5 for their terms
(`chunks_fts` in store.sqlite, written with the other tables).

`faiss_kind` picks the structure from the number of chunks, `make_faiss_index`
builds it and meta.json's "faiss" entry records what was picked
(docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np

from ..errors import IndexMismatch
from . import tantivy_lexical
from .search import Connect, Hit, Hits, fts_search
from .segments import DELETED_CHUNKS, Segment, read_deleted, segments_of

_faiss: Any = faiss  # the parts of FAISS its type stubs lack

KIND = "faiss"
CHUNKS_FAISS = "chunks.faiss"
# Chunk BM25 by tantivy (qa.store.tantivy_lexical), recorded in meta.json.
LEXICAL = {"engine": "tantivy", "folder": tantivy_lexical.FOLDER, "k1": 1.2, "b": 0.75}
TANTIVY_BYTES_PER_CHUNK = 256  # ~75 on the benchmark's chunks: a generous bound

# Below this many chunks search is exact (flat); from it on, IVF lists of 8-bit
# scalar-quantised vectors (a quarter of float32's memory; the exact vectors stay
# in chunks.npy). Why 50,000 (scripts/bench_scale.py, one query on one core):
# exact search costs ~0.08 ms per 1,000 vectors, ~4 ms at 50k, which is what
# IVF-SQ8 costs at the probe count below (~3 ms of CPU at any size, recall@10
# 0.97-0.99 against exact search); past it exact search grows linearly (15 ms
# p95 at 100k, 150 ms at 1M) and IVF does not. Dev corpora (< 1k chunks) stay
# exact. Measurements: docs/scaling.md.
IVF_THRESHOLD = 50_000
# IVF lists: ~2·sqrt(n) rounded to a power of two (2048 at 1M: k-means trains in
# ~20-40 s on 2 cores, 4096 lists took ~3 min for +0.01 recall at the same scan),
# trained on a fixed-seed sample of IVF_TRAIN_PER_LIST rows per list.
IVF_MIN_LISTS = 256
IVF_MAX_LISTS = 8192
IVF_TRAIN_PER_LIST = 50
# Lists probed per query: enough to scan ~IVF_SCAN vectors (at a fixed scan,
# recall@10 grows with the corpus: 0.98 at 100k, 0.97-0.98 at 1M on the
# benchmark's mixtures, ~3 ms of CPU), never under 1/32 of the lists, so that
# recall holds past 1M (latency then grows: see docs/scaling.md).
IVF_SCAN = 40_000
IVF_MIN_PROBE_FRACTION = 32
# HNSW over the same 8-bit codes ('hnsw_sq8') is not picked by `faiss_kind`: at
# 1M it searches faster (0.5 ms p95, recall@10 0.97) but builds in 230-280 s
# where IVF takes 20-90 s (paid by every full build and compaction; adds append
# IVF segments, where HNSW has no cheap equivalent), and FAISS reads its
# graph and codes into each worker's own memory (~800 MB) where IVF lists are
# memory-mapped and shared. It can be built for comparison (bench_scale.py
# --kind hnsw_sq8), and HNSW builds of earlier versions still open.
# (qa.store.milvus_backend has its own FLAT -> HNSW switch.)
HNSW_THRESHOLD = 200_000
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80
HNSW_TRAIN_SIZE = 100_000  # rows that fit the scalar quantiser's ranges


def faiss_kind(n_vectors: int) -> str:
    """The FAISS structure for `n_vectors` chunks: 'flat' (exact) or 'ivf_sq8'."""
    return "ivf_sq8" if n_vectors >= IVF_THRESHOLD else "flat"


def ivf_lists(n_vectors: int) -> int:
    """IVF lists for `n_vectors`: a power of two near 2·sqrt(n), and no more
    than the vectors can train (which only binds below IVF_THRESHOLD, in tests)."""
    target = 2 * max(n_vectors, 1) ** 0.5
    nlist = min(IVF_MAX_LISTS, max(IVF_MIN_LISTS, 2 ** round(np.log2(target))))
    return int(min(nlist, max(1, n_vectors // IVF_TRAIN_PER_LIST)))


def ivf_probes(nlist: int, n_vectors: int) -> int:
    """Lists to probe per query: ~IVF_SCAN vectors, at least 1/32 of the lists."""
    scan = -(-IVF_SCAN * nlist // max(n_vectors, 1))  # ceil
    return min(nlist, max(scan, nlist // IVF_MIN_PROBE_FRACTION))


def faiss_meta(kind: str, n_vectors: int) -> dict[str, Any]:
    """What meta.json records about the chunk index (its "faiss" entry)."""
    meta: dict[str, Any] = {"kind": kind, "metric": "inner_product"}
    if kind == "ivf_sq8":
        nlist = ivf_lists(n_vectors)
        meta |= {
            "nlist": nlist,
            "nprobe": ivf_probes(nlist, n_vectors),
            "quantizer": "QT_8bit",
            "train_size": min(n_vectors, nlist * IVF_TRAIN_PER_LIST),
        }
    elif kind == "hnsw_sq8":
        meta |= {
            "hnsw_m": HNSW_M,
            "ef_construction": HNSW_EF_CONSTRUCTION,
            "ef_search": HNSW_EF_SEARCH,
            "quantizer": "QT_8bit",
        }
    return meta


def make_faiss_index(vectors: np.ndarray, kind: str) -> faiss.Index:
    """An inner-product index over unit rows (so scores are cosines, exact for
    'flat', 8-bit quantised for the others). Its parameters: `faiss_meta`."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    params = faiss_meta(kind, n)
    index: faiss.Index
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf_sq8":
        coarse = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(
            coarse, dim, params["nlist"], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.nprobe = params["nprobe"]  # stored in the file too
        index.train(training_sample(vectors, params["train_size"]))
    elif kind == "hnsw_sq8":
        sq8: Any = faiss.ScalarQuantizer.QT_8bit  # (typed as a ScalarQuantizer by the stub)
        index = faiss.IndexHNSWSQ(dim, sq8, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.train(training_sample(vectors, HNSW_TRAIN_SIZE))
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}")
    if n:
        index.add(vectors)
    return index


def set_search_params(index: faiss.Index, meta: dict[str, Any]) -> None:
    """Search-time parameters of a loaded chunk index, from meta.json's "faiss"."""
    if isinstance(index, faiss.IndexIVF):
        index.nprobe = int(meta.get("nprobe", index.nprobe))
    elif hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(meta.get("ef_search", HNSW_EF_SEARCH))


def training_sample(vectors: np.ndarray, size: int) -> np.ndarray:
    """A fixed-seed sample of rows (the same vectors always train the same index)."""
    if size >= len(vectors):
        return vectors
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), size, replace=False))
    return vectors[rows]


def read_faiss(path: Path) -> faiss.Index:
    try:
        # Memory-mapped: several server processes share one copy in the page cache.
        # IO_FLAG_MMAP_IFC maps flat, HNSW and IVF files alike (FAISS >= 1.11).
        flags = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
        return faiss.read_index(str(path), flags)
    except RuntimeError as exc:
        raise IndexMismatch(f"{path}: not a readable FAISS index. Rebuild the index.") from exc


def empty_copy(index: faiss.Index) -> faiss.Index:
    """An empty chunk index trained as `index` is: flat, or IVF-SQ8 with the same
    centroids and 8-bit ranges, so a new segment's lists are encoded and probed
    exactly as the first segment's (the quantiser is trained once per full build)."""
    if not isinstance(index, faiss.IndexIVFScalarQuantizer):
        return faiss.IndexFlatIP(index.d)
    coarse = faiss.IndexFlatIP(index.d)
    coarse.add(index.quantizer.reconstruct_n(0, index.nlist))
    copy = faiss.IndexIVFScalarQuantizer(
        coarse, index.d, index.nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    copy.own_fields = True  # the copy frees its quantiser...
    cast(Any, coarse).this.disown()  # ...not Python
    faiss.copy_array_to_vector(faiss.vector_to_array(index.sq.trained), copy.sq.trained)
    copy.is_trained = True
    copy.nprobe = index.nprobe
    return copy


def write_faiss(path: Path, index: faiss.Index) -> None:
    # Serialised in memory, then written by Python: a full disk is then an
    # OSError (ENOSPC) like every other write, not a FAISS RuntimeError.
    index_bytes = faiss.serialize_index(index)
    with open(path, "wb") as f:
        f.write(index_bytes.data)


class FaissBackend:
    """FAISS and tantivy files inside the build folder (FTS5 in builds from
    before tantivy). A build can grow by segments (`append`)."""

    kind = KIND

    def __init__(self, uri: str = "") -> None:
        del uri  # nothing outside the build folder

    def publish(
        self, folder: Path, build_id: str, vectors: np.ndarray, terms: list[str]
    ) -> dict[str, Any]:
        kind = faiss_kind(len(vectors))
        write_faiss(folder / CHUNKS_FAISS, make_faiss_index(vectors, kind))
        tantivy_lexical.write(folder, terms)
        return {
            "search": {"kind": KIND},
            "faiss": faiss_meta(kind, len(vectors)),
            "lexical": LEXICAL,
        }

    def disk_bytes(self, n_vectors: int, dim: int) -> int:
        lexical = n_vectors * TANTIVY_BYTES_PER_CHUNK
        if faiss_kind(n_vectors) == "flat":
            return lexical + n_vectors * dim * 4
        return lexical + n_vectors * (dim + 8)

    @staticmethod
    def can_append(meta: dict[str, Any], adding: int) -> bool:
        """Whether `append` can extend this build by `adding` chunks: one made
        with segments (its tantivy rows deletable), over IVF-SQ8 lists, or flat
        ones that stay under IVF_THRESHOLD chunks (past it, exact search grows
        linearly: one full rewrite then picks IVF, which later adds reuse)."""
        kind = (meta.get("faiss") or {}).get("kind")
        if "segments" not in meta or kind not in ("flat", "ivf_sq8"):
            return False
        rows = sum(int(s["chunks"]) for s in meta["segments"])
        return kind == "ivf_sq8" or rows + adding < IVF_THRESHOLD

    @staticmethod
    def append(
        folder: Path,
        segment: Path,
        first_row: int,
        vectors: np.ndarray,
        terms: list[str],
        deleted_rows: np.ndarray,
    ) -> None:
        """Add a segment's chunks to the build being written in `folder` (a
        hard-linked copy of the previous one): its FAISS lists in `segment`,
        `vectors` as rows first_row, first_row + 1, ..., encoded with the first
        segment's quantiser; and the new chunks' terms, the last len(terms) of
        those rows (the others, of merged segments, are there already), to the
        tantivy index, from which `deleted_rows` are removed."""
        if len(vectors):
            index = empty_copy(read_faiss(folder / CHUNKS_FAISS))
            rows = np.arange(first_row, first_row + len(vectors), dtype=np.int64)
            if isinstance(index, faiss.IndexIVF):
                index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), rows)
            else:  # flat: rows are the segment's own, offset when searched
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            write_faiss(segment / CHUNKS_FAISS, index)
        new_first = first_row + len(vectors) - len(terms)
        tantivy_lexical.append(folder, deleted_rows, new_first, terms)

    @staticmethod
    def open(meta: dict[str, Any], folder: Path, db: Connect) -> FaissFtsSearch:
        dim, live = int(meta["encoder"]["dim"]), int(meta["counts"]["chunks"])
        segments = [s for s in segments_of(meta) if s.chunks]
        indexes = []
        for segment in segments or segments_of(meta)[:1]:
            path = folder / segment.dir / CHUNKS_FAISS
            index = read_faiss(path)
            set_search_params(index, meta.get("faiss") or {})
            if index.d != dim or index.ntotal != segment.chunks:
                raise IndexMismatch(
                    f"{path}: holds {index.ntotal} vectors of dimension {index.d}, "
                    f"meta.json says {segment.chunks} of {dim}. Rebuild the index."
                )
            indexes.append(index)
        dense = SegmentedIndex(indexes, segments, read_deleted(folder, meta, DELETED_CHUNKS))
        if (meta.get("lexical") or {}).get("engine") == "tantivy":
            return FaissFtsSearch(dense, db, tantivy_lexical.TantivyLexical(folder, live))
        return FaissFtsSearch(dense, db)  # a build from before tantivy: FTS5

    @staticmethod
    def drop(search: dict[str, Any]) -> None:
        """Nothing outside the build folder to free."""


class FaissFtsSearch:
    """FAISS for vectors, tantivy (or, in builds made before it, SQLite FTS5)
    for terms; all files of the build folder."""

    kind = KIND

    def __init__(
        self,
        index: SegmentedIndex,
        db: Connect,
        lexical: tantivy_lexical.TantivyLexical | None = None,
    ) -> None:
        self.index = index
        self._db = db  # the reader's per-thread connection
        self._lexical = lexical

    def dense(self, vector: np.ndarray, k: int) -> Hits:
        return self.index.search(vector, k)

    def lexical(self, terms: Sequence[str], k: int) -> Hits:
        if self._lexical is not None:
            return self._lexical.search(terms, k)
        return fts_search(self._db(), "chunks_fts", terms, k)

    def close(self) -> None:
        """The reader closes its SQLite connections; the index is only mapped."""


class SegmentedIndex:
    """The chunk vectors of every segment searched as one index, rows marked
    deleted skipped.

    IVF segments share the first one's quantiser (`empty_copy`), so their
    lists are stacked list by list (`HStackInvertedLists`, read-only and
    nothing copied) behind one IVF head: a query probes each list once across
    all segments, at the cost of one search. Flat segments are searched one by
    one and their hits merged (flat builds are small). Deleted rows are
    filtered inside FAISS by an ID selector, so k live hits come back."""

    def __init__(self, indexes: list[faiss.Index], segments: list[Segment], deleted: np.ndarray):
        self.ntotal = sum(i.ntotal for i in indexes)
        self.d = indexes[0].d
        self._keep: list[Any] = [indexes]  # FAISS objects below reference these: keep them alive
        self._parts: list[tuple[faiss.Index, int, Any]] = []  # (index, first row, params)
        if len(indexes) > 1 and isinstance(indexes[0], faiss.IndexIVF):
            head: Any = empty_copy(indexes[0])
            lists = _faiss.InvertedListsPtrVector()
            for index in indexes:
                lists.push_back(cast(Any, index).invlists)
            stacked = faiss.HStackInvertedLists(lists.size(), lists.data())
            head.replace_invlists(stacked, False)
            head.ntotal = self.ntotal
            self._keep += [lists, stacked]
            indexes, firsts = [head], [0]
        else:
            firsts = [s.first_chunk for s in segments] or [0]
        for index, first in zip(indexes, firsts, strict=True):
            self._parts.append((index, first, self._params(index, first, deleted)))

    def _params(self, index: faiss.Index, first: int, deleted: np.ndarray) -> Any:
        """Search parameters that skip the deleted rows of this part (None: none)."""
        if isinstance(index, faiss.IndexIVF):
            ids = deleted  # IVF lists store the build's rows
        else:
            lo, hi = np.searchsorted(deleted, [first, first + index.ntotal])
            ids = deleted[lo:hi] - first
        if not len(ids):
            return None
        batch = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        selector = faiss.IDSelectorNot(batch)
        self._keep += [batch, selector]
        if isinstance(index, faiss.IndexIVF):
            return _faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe)
        return _faiss.SearchParameters(sel=selector)

    def reconstruct(self, row: int) -> np.ndarray:
        """The stored (for IVF-SQ8, quantised) vector of a row, as FAISS's
        `reconstruct`: flat segments, or one IVF segment."""
        for index, first, _ in reversed(self._parts):
            if row >= first:
                return index.reconstruct(row - first)
        raise IndexError(row)

    def search(self, vector: np.ndarray, k: int) -> Hits:
        if k <= 0 or self.ntotal == 0:
            return []
        query = vector.reshape(1, -1).astype(np.float32)
        hits: Hits = []
        for index, first, params in self._parts:
            if index.ntotal == 0:
                continue
            scores, rows = index.search(query, k, params=params)
            hits += [
                Hit(int(r) + first, float(s))
                for r, s in zip(rows[0], scores[0], strict=True)
                if r >= 0
            ]
        if len(self._parts) > 1:
            hits.sort(key=lambda h: -h.score)
        return hits[:k]
