"""What a build folder holds: its file names, its SQLite schema and the
records the writer takes and the reader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..records import Article, Chunk, Sentence

FORMAT_VERSION = 1
META = "meta.json"
CHUNKS_NPY = "chunks.npy"
SENTENCES_NPY = "sentences.npy"
RESCORE_NPY = "rescore_sentences.npy"  # by the second encoder, when there is one
# Its token states of each sentence (qa/token_match.py), int8, when it gives them.
RESCORE_TOKENS_NPY = "rescore_tokens.npy"
SQLITE = "store.sqlite"
WORDS_NPY = "words.npy"
# Stored as float16, half the disk and page cache of float32: unit vectors lose
# ~1e-3 of each cosine, which changed no rank-1 figure of scripts/evaluate.py
# (docs/scaling.md). Readers convert the rows they read to float32. The second
# encoder's vectors stay float32: `rescore_sentences` multiplies all of them
# per question, and converting them first would cost as much again.
HALF_FLOAT_FILES = (CHUNKS_NPY, SENTENCES_NPY)

# The articles table's columns, in `Article`'s field order.
ARTICLE_FIELDS = (
    "id",
    "title",
    "text",
    "lang",
    "url",
    "date",
    "origin",
    "credit",
    "source",
    "author",
)

SCHEMA = """
CREATE TABLE articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, lang TEXT NOT NULL,
    url TEXT, date TEXT, origin TEXT, credit TEXT, source TEXT, author TEXT
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, article_id TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    first_sentence INTEGER NOT NULL, last_sentence INTEGER NOT NULL
);
CREATE TABLE sentences (
    row INTEGER PRIMARY KEY, article_id TEXT NOT NULL, idx INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, heading INTEGER NOT NULL,
    UNIQUE (article_id, idx)
);
CREATE VIRTUAL TABLE chunks_fts USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE sentences_fts USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE sentences_vocab USING fts5vocab(sentences_fts, 'row');
CREATE INDEX chunks_by_article ON chunks(article_id);
CREATE INDEX articles_by_origin ON articles(origin);
CREATE INDEX articles_by_url ON articles(url);
CREATE TABLE vocab (word TEXT PRIMARY KEY, row INTEGER NOT NULL, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE sentence_words (row INTEGER PRIMARY KEY, words TEXT NOT NULL);
"""


@dataclass(frozen=True)
class IndexedArticle:
    """An article with everything the index keeps of it."""

    article: Article
    sentences: list[Sentence]
    chunks: list[Chunk]
    sentence_terms: list[str]  # space-joined lexical terms, one per sentence
    chunk_terms: list[str]
    sentence_words: list[list[str]]  # content words of each sentence (soft matching)
    sentence_vectors: np.ndarray  # (len(sentences), dim)
    chunk_vectors: np.ndarray  # (len(chunks), dim)
    # By the second encoder (qa.settings `rescore_model`), when the index has one.
    rescore_vectors: np.ndarray | None = None  # (len(sentences), rescorer dim)
    # Its packed token states (qa.token_match.pack), when it gives them.
    rescore_tokens: np.ndarray | None = None  # (len(sentences), tokens * rescorer dim) int8


@dataclass(frozen=True)
class Vocabulary:
    """Content words of all sentences with their vectors and sentence counts."""

    words: list[str]
    vectors: np.ndarray  # (len(words), dim)
    df: list[int]  # in how many sentences each word occurs


@dataclass(frozen=True)
class SentenceRow:
    row: int
    article_id: str
    idx: int
    start: int
    end: int
    heading: bool


@dataclass(frozen=True)
class ChunkRow:
    row: int
    chunk_id: str
    article_id: str
    start: int
    end: int
    first_sentence: int
    last_sentence: int
