"""The index folder: articles, chunks and sentences with their vectors and
lexical terms, written as whole builds and published atomically.

Layout of an index folder `DIR`:

    DIR/current -> builds/<build_id>      (symlink, swapped atomically)
    DIR/builds/<build_id>/meta.json
                          chunks.npy      (row i = chunks.row i, float32, unit rows: exact vectors)
                          sentences.npy   (row i = sentences.row i, float32, unit rows)
                          words.npy       (row i = vocab.row i: content-word vectors)
                          store.sqlite    (articles, chunks, sentences, FTS5 terms)
                          chunks.faiss    (the FAISS backend's chunk index; none with Milvus)

A build is written into a temporary folder, then renamed and published by
replacing the `current` symlink, so a reader only ever sees a whole build.
meta.json records the size and digest of every other file (`qa.integrity`),
checked with the vectors and SQLite's structure when a reader opens the build.

Modules: `layout` (file names, schema, records), `build` (writing a build),
`publish` (the lock, the swap, pruning), `files` (meta.json and vector files),
`reader` (`IndexReader`) with `database` (its SQLite side, `BuildDatabase`),
`search` (the search protocol, its `Hit` record and the registry of
backends), a module per backend (`faiss_backend`;
`milvus_backend`, the writer, with `milvus_search`, `milvus_drop` and
`milvus_client`). Code outside this package goes through the names below.
"""

from .append import append_build, can_append
from .build import write_build
from .files import verify_digests
from .layout import (
    ARTICLE_FIELDS,
    CHUNKS_NPY,
    FORMAT_VERSION,
    META,
    RESCORE_NPY,
    RESCORE_TOKENS_NPY,
    SENTENCES_NPY,
    SQLITE,
    WORDS_NPY,
    ChunkRow,
    IndexedArticle,
    SentenceRow,
    Vocabulary,
)
from .publish import build_lock, current_build_id, new_build_id, resolve_build
from .reader import IndexReader
from .search import (
    BACKENDS,
    ChunkSearch,
    Hit,
    Hits,
    SearchBackend,
    backend_for,
    backend_from_meta,
)

__all__ = [
    "ARTICLE_FIELDS",
    "BACKENDS",
    "CHUNKS_NPY",
    "FORMAT_VERSION",
    "META",
    "RESCORE_NPY",
    "RESCORE_TOKENS_NPY",
    "SENTENCES_NPY",
    "SQLITE",
    "WORDS_NPY",
    "ChunkRow",
    "ChunkSearch",
    "Hit",
    "Hits",
    "IndexReader",
    "IndexedArticle",
    "SearchBackend",
    "SentenceRow",
    "Vocabulary",
    "append_build",
    "backend_for",
    "backend_from_meta",
    "build_lock",
    "can_append",
    "current_build_id",
    "new_build_id",
    "resolve_build",
    "verify_digests",
    "write_build",
]
