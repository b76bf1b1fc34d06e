"""A question analysed once: the `Query` record (qa/retrieve.py) that
retrieval, sentence features, the answer model and short answers all read.

Its language, its terms (names matched across languages) and content words
with their IDF and word vectors, its vector, what kind of thing it asks for
(a date, a number of some measure, a person, a place) and, for "how many X",
the words that may be X.
"""

from __future__ import annotations

import numpy as np

from .embed import Encoder, clip_query, encode_question_and_words
from .lang import detect_language
from .lexical import content_words, name_stems, terms
from .qtype import counted_words, question_measure, question_names, question_type
from .retrieve import Query, idf, idf_weights
from .store import IndexReader

OUTSIDE_WORDS_CACHED = 50_000  # vectors of question words not in the index, kept


class QuestionAnalyser:
    """Questions into `Query` records, with the first encoder; keeps the
    vectors of question words that the index lacks, for the next questions."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self._outside_words: dict[str, np.ndarray] = {}

    def analyse(self, question: str, reader: IndexReader) -> Query:
        """`question`, as the index `reader` serves, analysed (its `text` is the
        part of it that is read)."""
        # What is read of a question is bounded, so is its cost: the encoder's
        # first MAX_QUERY_TOKENS tokens (qa/embed.py), words and terms included.
        question = clip_query(self.encoder, question)
        lang = detect_language(question)
        query_terms = terms_with_names(reader, question, lang)
        query_words = tuple(content_words(question, lang))
        known = reader.words(query_words)
        outside = {w: self._outside_words.get(w) for w in query_words if w not in known}
        missing = [w for w, v in outside.items() if v is None]
        # The question is read as a question (USE's question tower, when there
        # is one); the words the index lacks (an English question on French
        # articles) as the index's words are, and kept for next time.
        question_vector, vectors = encode_question_and_words(self.encoder, question, missing)
        fresh = dict(zip(missing, vectors, strict=True))
        if len(self._outside_words) > OUTSIDE_WORDS_CACHED:
            self._outside_words.clear()
        self._outside_words.update(fresh)
        outside.update(fresh)
        word_vectors = np.zeros((len(query_words), self.encoder.dim), dtype=np.float32)
        for i, w in enumerate(query_words):
            word_vectors[i] = reader.word_vectors[known[w][0]] if w in known else outside[w]
        sentences = reader.counts["sentences"]
        measure = question_measure(question)
        # "How many X": the words that may be X (a measured number needs none).
        counted = tuple(w for w in counted_words(question) if w in query_words)
        return Query(
            text=question,
            lang=lang,
            vector=question_vector,
            terms=query_terms,
            idf=idf_weights(reader, query_terms),
            words=query_words,
            word_vectors=word_vectors,
            word_idf=np.array(
                [idf(sentences, known[w][1] if w in known else 0) for w in query_words]
            ),
            kind=question_type(question),
            measure=measure,
            counted=() if measure else counted,
            named=tuple(frozenset(name) for name in question_names(question)),
        )


def terms_with_names(reader: IndexReader, question: str, lang: str) -> tuple[str, ...]:
    """The question's terms, where a name whose stem in the question's language
    the index lacks takes its stem in another language that the index holds:
    "Aurélie Trouvé" in an English question meets the same name in a French
    article, which the English stemmer alone would miss ("aureli", "aurel")."""
    query_terms = terms(question, lang)
    names = name_stems(question)
    if not names:
        return tuple(query_terms)
    frequency = reader.document_frequencies(
        {stem for stems in names.values() for stem in stems.values()}
    )
    for stems in names.values():
        own = stems.get(lang, next(iter(stems.values())))
        known = max(stems.values(), key=lambda stem: frequency.get(stem, 0))
        if frequency.get(own, 0) == 0 and frequency.get(known, 0) > 0:
            query_terms = [known if t == own else t for t in query_terms]
    return tuple(query_terms)
