"""BM25 over chunk terms with tantivy (the Rust search library behind
Quickwit): the lexical half of the FAISS backend's chunk search.

SQLite FTS5 scores every chunk holding any of a question's terms, so its cost
grows with the posting lists of the question's most frequent words (18 ms p50,
53 ms p95 at 100k chunks); tantivy answers the same top-20 disjunction with
block-max WAND, skipping the blocks that cannot enter the top 20 (0.2 ms p50
at 100k, 0.3 ms at 1M). Measurements and the choice: docs/scaling.md.

The index is a folder of the build (`chunks.tantivy/`), written with a full
build, extended by later adds (`append`: tantivy's own segments and deletion
files, hard-linked from build to build) and opened read-only. Terms arrive stemmed, folded and
space-joined (`qa.lexical.terms`), so the whitespace tokenizer gives them back
unchanged. BM25 with k1 = 1.2, b = 0.75, as FTS5.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import tantivy

from ..errors import IndexMismatch
from .search import Hit, Hits

FOLDER = "chunks.tantivy"
WRITER_HEAP = 128 << 20  # bytes buffered before a segment is written
APPEND_HEAP = 32 << 20  # for a few thousand chunks: a smaller peak memory


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # The chunk's row, read back from a column for each hit (tantivy's own
    # document ids are per segment), and indexed so that a removal deletes
    # its chunks by row (builds from before segments did not index it).
    builder.add_integer_field("row", stored=False, fast=True, indexed=True)
    builder.add_text_field("terms", stored=False, tokenizer_name="whitespace", index_option="freq")
    return builder.build()


def write(folder: Path, terms: Sequence[str]) -> None:
    """Index the chunks' `terms` (row i = terms[i]) into `folder/chunks.tantivy`."""
    path = folder / FOLDER
    path.mkdir()
    index = tantivy.Index(_schema(), path=str(path))
    writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
    for row, text in enumerate(terms):
        writer.add_document(tantivy.Document(row=row, terms=text))
    writer.commit()
    writer.wait_merging_threads()


def append(folder: Path, deleted_rows: Iterable[int], first_row: int, terms: Sequence[str]) -> None:
    """Delete chunks by row and add `terms` as rows first_row, first_row + 1, ...
    in `folder/chunks.tantivy`, a hard-linked copy of the previous build's.

    tantivy never changes a file it wrote: a commit writes new segment files,
    deletion files and a new meta.json (by renaming a temporary file), so the
    previous build's files, shared with this folder, stay as they were."""
    index = tantivy.Index.open(str(folder / FOLDER))
    writer = index.writer(heap_size=APPEND_HEAP, num_threads=1)
    for row in deleted_rows:
        writer.delete_documents_by_term("row", int(row))
    for row, text in enumerate(terms, start=first_row):
        writer.add_document(tantivy.Document(row=row, terms=text))
    writer.commit()
    writer.wait_merging_threads()


class TantivyLexical:
    """BM25 search over one build's chunk terms. Thread-safe: a searcher is
    an immutable view of the index.

    The index is opened at the first search, not here: opening one starts a
    tantivy thread that never ends, and the server loads its engine before it
    forks its workers. A process forked while another thread may hold a lock
    can hang on that lock (a replaced worker did, one time in three); the
    files were already checked against meta.json's digests when the build
    was opened."""

    def __init__(self, folder: Path, count: int) -> None:
        self.path = folder / FOLDER
        self.count = count
        self._opened: tuple[tantivy.Schema, tantivy.Searcher] | None = None
        self._lock = threading.Lock()

    def _open(self) -> tuple[tantivy.Schema, tantivy.Searcher]:
        with self._lock:
            if self._opened is None:
                try:
                    index = tantivy.Index.open(str(self.path))
                except (OSError, ValueError) as exc:
                    raise IndexMismatch(
                        f"{self.path}: not a readable tantivy index ({exc}). Rebuild the index."
                    ) from exc
                searcher = index.searcher()
                if searcher.num_docs != self.count:
                    raise IndexMismatch(
                        f"{self.path}: holds {searcher.num_docs} chunks, meta.json says "
                        f"{self.count}. Rebuild the index."
                    )
                self._opened = (index.schema, searcher)
            return self._opened

    def search(self, terms: Sequence[str], k: int) -> Hits:
        unique = list(dict.fromkeys(t for t in terms if t))
        if not unique or k <= 0:
            return []
        schema, searcher = self._open()
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "terms", t)) for t in unique]
        )
        hits = searcher.search(query, k, count=False).hits
        rows = searcher.fast_field_values("row", [address for _, address in hits])
        # (None only for a segment without the column, which these never are.)
        return [Hit(int(r or 0), float(score)) for r, (score, _) in zip(rows, hits, strict=True)]
