"""Chunking: runs of whole sentences, merged by langchain's TextSplitter.

langchain merges the pieces it is given up to `chunk_size` characters with
`chunk_overlap` characters carried over; we give it whole sentences (each with
the whitespace that follows it), so every chunk starts and ends on a sentence
boundary and is an exact slice of the article text.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_text_splitters import TextSplitter

from .records import Chunk, Sentence

# A sentence longer than chunk_size becomes a chunk of its own: expected, not
# worth the warning langchain logs for it.
logging.getLogger("langchain_text_splitters.base").setLevel(logging.ERROR)


class _Piece(str):
    """A sentence with its trailing whitespace, knowing which sentence it is."""

    sentence_no: int


class SentenceTextSplitter(TextSplitter):
    """A TextSplitter whose pieces are sentences found by `qa.segment`.

    `spans` records, for each chunk it returns, the indices of its first and
    last sentence: langchain decides the merge, we keep exact positions even
    when the same sentence text occurs twice.
    """

    def __init__(self, sentences: list[Sentence], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sentences = sentences
        self.spans: list[tuple[int, int]] = []

    def split_text(self, text: str) -> list[str]:
        self.spans = []
        return self._merge_splits(_pieces(text, self._sentences), separator="")

    def _join_docs(self, docs: list[str], separator: str) -> str | None:
        joined = super()._join_docs(docs, separator)
        if joined is not None:
            first, last = docs[0], docs[-1]
            assert isinstance(first, _Piece) and isinstance(last, _Piece)
            self.spans.append((first.sentence_no, last.sentence_no))
        return joined


def _pieces(text: str, sentences: list[Sentence]) -> list[str]:
    """Each sentence with the whitespace up to the next one."""
    ends = [s.start for s in sentences[1:]] + [sentences[-1].end] if sentences else []
    pieces: list[str] = []
    for i, (s, end) in enumerate(zip(sentences, ends, strict=True)):
        piece = _Piece(text[s.start : end])
        piece.sentence_no = i
        pieces.append(piece)
    return pieces


def chunk_article(
    article_id: str, text: str, sentences: list[Sentence], size: int, overlap: int
) -> list[Chunk]:
    """Chunks covering every sentence, in order, each `text[start:end]`."""
    if not sentences:
        return []
    splitter = SentenceTextSplitter(sentences, chunk_size=size, chunk_overlap=overlap)
    splitter.split_text(text)  # records each chunk's sentence span
    chunks: list[Chunk] = []
    for first, last in splitter.spans:
        start, end = sentences[first].start, sentences[last].end
        chunks.append(
            Chunk(
                article_id, f"{article_id}:{len(chunks)}", start, end, text[start:end], first, last
            )
        )
    return chunks
