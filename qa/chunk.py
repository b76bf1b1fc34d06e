"""Chunking: runs of whole sentences, merged by langchain's TextSplitter.

langchain merges the pieces it is given up to `chunk_size` characters with
`chunk_overlap` characters carried over; we give it whole sentences (each with
the whitespace that follows it), so every chunk starts and ends on a sentence
boundary and is an exact slice of the article text.
"""

from __future__ import annotations

from typing import Any

from langchain_text_splitters import TextSplitter

from .records import Chunk, Sentence


class SentenceTextSplitter(TextSplitter):
    """A TextSplitter whose pieces are sentences found by `qa.segment`."""

    def __init__(self, sentences: list[Sentence], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sentences = sentences

    def split_text(self, text: str) -> list[str]:
        return self._merge_splits(_pieces(text, self._sentences), separator="")


def _pieces(text: str, sentences: list[Sentence]) -> list[str]:
    """Each sentence with the whitespace up to the next one."""
    ends = [s.start for s in sentences[1:]] + [sentences[-1].end] if sentences else []
    return [text[s.start : end] for s, end in zip(sentences, ends, strict=True)]


def chunk_article(
    article_id: str, text: str, sentences: list[Sentence], size: int, overlap: int
) -> list[Chunk]:
    """Chunks covering every sentence, in order, each `text[start:end]`."""
    if not sentences:
        return []
    splitter = SentenceTextSplitter(sentences, chunk_size=size, chunk_overlap=overlap)
    chunks: list[Chunk] = []
    first = 0
    for piece in splitter.split_text(text):
        # A chunk is consecutive whole sentences, so it starts where a sentence does.
        while not text.startswith(piece, sentences[first].start):
            first += 1
        start = sentences[first].start
        end = start + len(piece)
        last = first
        while last + 1 < len(sentences) and sentences[last + 1].end <= end:
            last += 1
        chunks.append(
            Chunk(article_id, f"{article_id}:{len(chunks)}", start, end, piece, first, last)
        )
        first += 1
    return chunks
