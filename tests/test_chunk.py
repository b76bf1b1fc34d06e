"""Chunking (qa.chunk): runs of whole sentences, exact slices, size and overlap,
and the parameters recorded in the index."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from helpers import ENGLISH_ARTICLE, FRENCH_ARTICLE, encoder, real_texts, seed_text
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qa import indexing
from qa.chunk import chunk_article
from qa.ingest import read_file
from qa.records import Chunk, Sentence
from qa.segment import split_sentences
from qa.settings import Settings
from qa.store import IndexReader


def check_chunks(
    text: str, sentences: list[Sentence], chunks: list[Chunk], size: int, overlap: int
) -> None:
    """Every invariant a chunking must keep."""
    if not sentences:
        assert chunks == []
        return
    assert chunks, "sentences but no chunk"
    for i, c in enumerate(chunks):
        assert text[c.start : c.end] == c.text, c
        assert c.chunk_id == f"{c.article_id}:{i}"
        assert 0 <= c.first_sentence <= c.last_sentence < len(sentences)
        # starts on a sentence start and ends on a sentence end (so never ". " first)
        assert c.start == sentences[c.first_sentence].start, c
        assert c.end == sentences[c.last_sentence].end, c
        assert c.text == c.text.strip() and c.text
        # size: only a single sentence longer than the size makes a longer chunk
        if len(c.text) > size:
            assert c.first_sentence == c.last_sentence, (len(c.text), size, c)
    # all sentences, in order, each chunk moving forward
    assert chunks[0].first_sentence == 0
    assert chunks[-1].last_sentence == len(sentences) - 1
    for prev, nxt in itertools.pairwise(chunks):
        assert prev.first_sentence < nxt.first_sentence, (prev, nxt)
        assert prev.last_sentence < nxt.last_sentence, (prev, nxt)
        assert nxt.first_sentence <= prev.last_sentence + 1, ("gap", prev, nxt)
        shared = max(0, prev.end - nxt.start)
        assert shared <= overlap, (shared, overlap, prev, nxt)
        if overlap == 0:
            assert nxt.first_sentence == prev.last_sentence + 1


def chunks_of(text: str, size: int, overlap: int) -> tuple[list[Sentence], list[Chunk]]:
    sentences = split_sentences(text)
    return sentences, chunk_article("art", text, sentences, size, overlap)


@pytest.mark.parametrize(("size", "overlap"), [(600, 150), (300, 0), (200, 100), (80, 20)])
def test_seed_chunks(size: int, overlap: int) -> None:
    text = seed_text()
    sentences, chunks = chunks_of(text, size, overlap)
    check_chunks(text, sentences, chunks, size, overlap)
    assert not any(c.text.startswith((". ", ".", ",")) for c in chunks)


def test_overlap_is_used_when_sentences_are_short() -> None:
    text = " ".join(f"Phrase numéro {i} du texte." for i in range(40))
    sentences, chunks = chunks_of(text, 120, 50)
    check_chunks(text, sentences, chunks, 120, 50)
    assert len(chunks) > 5
    # each next chunk starts with the tail of the previous one
    assert all(n.first_sentence <= p.last_sentence for p, n in itertools.pairwise(chunks))
    assert all(len(c.text) <= 120 for c in chunks)


def test_long_sentence_is_a_chunk_on_its_own() -> None:
    long = "Une phrase " + "très " * 80 + "longue."
    text = f"Court début. {long} Courte fin."
    sentences, chunks = chunks_of(text, 100, 30)
    check_chunks(text, sentences, chunks, 100, 30)
    assert [c.text for c in chunks] == ["Court début.", long, "Courte fin."]


def test_no_sentence_no_chunk() -> None:
    assert chunk_article("x", "", [], 600, 150) == []


def repeats_earlier(text: str, sentences: list[Sentence]) -> bool:
    """Some sentence's text also occurs at an earlier sentence's start."""
    return any(
        text.startswith(later.text, earlier.start)
        for j, later in enumerate(sentences)
        for earlier in sentences[:j]
    )


@pytest.mark.parametrize(
    ("text", "size", "overlap"),
    [
        ("Oui. Oui. Non. Oui. Oui. Oui. Non. Non. Oui.", 10, 0),
        ("Le. Le Le Le Le Le. Le", 20, 0),
    ],
)
def test_repeated_sentences(text: str, size: int, overlap: int) -> None:
    """Identical sentences must not confuse the search for where a chunk starts."""
    sentences, chunks = chunks_of(text, size, overlap)
    assert repeats_earlier(text, sentences)
    check_chunks(text, sentences, chunks, size, overlap)


def test_real_texts() -> None:
    for name, text in real_texts():
        sentences, chunks = chunks_of(text, 600, 150)
        try:
            check_chunks(text, sentences, chunks, 600, 150)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


# ---------------------------------------------------------------- properties

WORDS = st.sampled_from(
    ["Le", "ministre", "a", "dit", "M.", "Dr", "1.5", "11H00", "«", "»", "“oui”", "Paris", "x"]
)
ENDS = st.sampled_from([".", "!", "?", "…", "", ".\n", "\n\n", ".\u00a0"])
SENTENCE = st.tuples(st.lists(WORDS, min_size=1, max_size=25), ENDS).map(
    lambda t: " ".join(t[0]) + t[1]
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    st.lists(SENTENCE, max_size=30).map(" ".join),
    st.integers(min_value=20, max_value=400),
    st.floats(min_value=0.0, max_value=0.9),
)
def test_property_random_texts(text: str, size: int, share: float) -> None:
    """Random sentences; texts where a sentence repeats are the known bug above."""
    overlap = int(size * share)
    sentences = split_sentences(text)
    assume(not repeats_earlier(text, sentences))
    sentences, chunks = chunks_of(text, size, overlap)
    check_chunks(text, sentences, chunks, size, overlap)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    st.text(alphabet=st.sampled_from(list("ab .!?\n«»A1")), max_size=300),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=0, max_value=59),
)
def test_property_small_alphabet(text: str, size: int, overlap: int) -> None:
    overlap = min(overlap, size - 1)
    assume(not repeats_earlier(text, split_sentences(text)))
    sentences, chunks = chunks_of(text, size, overlap)
    check_chunks(text, sentences, chunks, size, overlap)


# ---------------------------------------------------------------- recorded in the index


def test_chunking_recorded_in_meta(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "fr.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    settings_ = Settings(chunk_size=120, chunk_overlap=40)
    index = tmp_path / "index"
    indexing.build(corpus, index, encoder(), settings_)
    reader = IndexReader(index)
    assert reader.meta["chunking"]["size"] == 120
    assert reader.meta["chunking"]["overlap"] == 40
    [article] = reader.list_articles()
    stored = reader.article(article["id"])
    assert stored is not None
    _sentences, expected = chunks_of(stored.text, 120, 40)
    rows = reader.db.execute(
        'SELECT chunk_id, start, "end", first_sentence, last_sentence FROM chunks ORDER BY row'
    ).fetchall()
    assert rows == [
        (c.chunk_id.replace("art", stored.id), c.start, c.end, c.first_sentence, c.last_sentence)
        for c in expected
    ]
    reader.close()


def test_add_chunks_with_the_index_parameters(tmp_path: Path) -> None:
    """An index built with small chunks keeps them for articles added later with
    default settings (meta.json keeps saying so)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "fr.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    index = tmp_path / "index"
    indexing.build(corpus, index, encoder(), Settings(chunk_size=120, chunk_overlap=40))
    extra = tmp_path / "en.txt"
    extra.write_text(ENGLISH_ARTICLE, encoding="utf-8")
    indexing.add([extra], index, encoder(), Settings())
    reader = IndexReader(index)
    assert reader.meta["chunking"]["size"] == 120
    [added] = read_file(extra)[0]
    stored = reader.article(added.id)
    assert stored is not None
    _sentences, expected = chunks_of(stored.text, 120, 40)
    rows = reader.db.execute(
        'SELECT start, "end" FROM chunks WHERE article_id = ? ORDER BY row', (added.id,)
    ).fetchall()
    reader.close()
    assert rows == [(c.start, c.end) for c in expected]
