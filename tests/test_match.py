"""The "match_" features: kernel pooling (KNRM) over the cosines of the
question's words with a sentence's words, on a real index of the seed."""

from __future__ import annotations

import numpy as np
import pytest

from qa.features import FEATURES, KERNELS, MATCH_FEATURES, _kernel_matches
from qa.pipeline import QAEngine

EXACT, LOOSE = KERNELS.index(("exact", 1.0, 1e-3)), [n for n, _, _ in KERNELS].index("50")


def test_kernels_count_each_text_word_at_its_cosine_level() -> None:
    # Two question words (IDF weights 0.75 / 0.25) and three text words: the
    # first is the first question word itself, the second sits at cosine 0.5
    # of the second question word, the third matches nothing.
    cosines = np.array([[1.0, 0.1, 0.0], [0.2, 0.5, -0.1]], dtype=np.float32)
    columns = {10: 0, 11: 1, 12: 2}
    weights = np.array([0.75, 0.25])
    same, twice, loose, unrelated, empty = _kernel_matches(
        cosines, [[10, 12], [10, 10], [11], [12], []], columns, weights
    )
    assert same[EXACT] == pytest.approx(0.75 * np.log(2))
    assert twice[EXACT] == pytest.approx(0.75 * np.log(3))  # a word counts as often as it occurs
    assert loose[EXACT] == pytest.approx(0.0, abs=1e-6)
    assert loose[LOOSE] == pytest.approx(0.25 * np.log(2))
    assert unrelated == pytest.approx(np.zeros(len(KERNELS)), abs=1e-6)
    assert empty == pytest.approx(np.zeros(len(KERNELS)))


def test_the_sentence_that_shares_the_question_words_matches_most(engine: QAEngine) -> None:
    """Through the server's ranking pass: the seed sentence that names the
    coalition's meeting matches "réunion de la coalition" exactly, another
    does not, and every candidate gets the features."""
    ranking = engine.rank("Quel est l'objectif de la réunion de la coalition à Paris ?", 5)
    exact = FEATURES.index("match_exact")
    assert set(MATCH_FEATURES) <= set(FEATURES) and len(MATCH_FEATURES) == len(KERNELS)
    by_text = {s.text: s.features for s in ranking.scored}
    sharing = [f for t, f in by_text.items() if "coalition" in t and "réunion" in t]
    others = [f for t, f in by_text.items() if "coalition" not in t and "réunion" not in t]
    assert sharing and others
    assert min(f[exact] for f in sharing) > max(f[exact] for f in others)
    assert all(np.isfinite(f).all() for f in by_text.values())
