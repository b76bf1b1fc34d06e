"""The question analysed once (qa/question.py): the `Query` record every
stage reads, built from a real index and the real encoder."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from helpers import FRENCH_ARTICLE, encoder

from qa import indexing
from qa.embed import Encoder
from qa.qtype import NUMBER
from qa.question import QuestionAnalyser
from qa.settings import Settings
from qa.store import IndexReader


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexReader]:
    """An index of the French lanterns article, built with the real encoder."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    index = tmp_path_factory.mktemp("index")
    assert indexing.build(folder, index, encoder(), Settings(index_dir=str(index))).errors == []
    opened = IndexReader(index)
    yield opened
    opened.close()


class Counting:
    """The real encoder, counting the texts it encodes as words."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.words: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.words += texts
        return self.inner.encode(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)


def test_a_question_is_analysed_into_one_record(reader: IndexReader) -> None:
    counting = Counting(encoder())
    analyser = QuestionAnalyser(counting)  # type: ignore[arg-type]

    query = analyser.analyse("How many lanterns did the organisers install?", reader)
    assert query.lang == "en" and query.kind == NUMBER
    assert "lanterns" in query.words and "lanterns" in query.counted
    assert np.allclose(query.vector, encoder().encode_queries([query.text])[0], atol=1e-6)
    # words the French index lacks are encoded as its words are, once
    assert "lanterns" in counting.words
    row = query.words.index("lanterns")
    assert np.allclose(query.word_vectors[row], encoder().encode(["lanterns"])[0], atol=1e-6)
    assert query.word_idf.shape == (len(query.words),)
    before = len(counting.words)
    again = analyser.analyse("How many lanterns were there?", reader)
    assert "lanterns" in again.words and len(counting.words) == before  # kept, not encoded again

    french = analyser.analyse("Combien de lanternes ont été installées ?", reader)
    assert french.lang == "fr" and "lanternes" in french.counted


def test_question_and_outside_words_in_one_batch_give_their_own_vectors(
    reader: IndexReader,
) -> None:
    """USE reads the question and the words the index lacks in one call
    (`encode_question_and_words`): each keeps the vector it gets alone."""
    use = encoder()
    assert hasattr(use, "encode_question_and_words")
    query = QuestionAnalyser(use).analyse("How many lanterns did the organisers install?", reader)
    assert np.allclose(query.vector, use.encode_queries([query.text])[0], atol=1e-5)
    outside = [w for w in query.words if not reader.words([w])]
    assert "lanterns" in outside and "organisers" in outside
    for word in outside:
        row = query.words.index(word)
        assert np.allclose(query.word_vectors[row], use.encode([word])[0], atol=1e-5)
