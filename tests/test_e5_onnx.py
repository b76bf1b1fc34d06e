"""qa/e5_onnx.py, E5 run by ONNX Runtime, against qa/e5.py's numpy engine on
the same weights: the float32 graph gives the same vectors, the int8 one
(E5Encoder's) vectors within its rounding, for short texts, long texts read
in windows and padded batches."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SEED

from qa.e5 import E5Model
from qa.e5_onnx import OnnxE5Model
from qa.encoders.e5 import E5Encoder
from qa.segment import split_sentences

QUESTIONS = [
    "Quand les ministres se retrouvent-ils ?",
    "Combien de pays font partie de la coalition ?",
    "Who chairs the meeting in Paris?",
    "",
]


@pytest.fixture(scope="module")
def numpy_engine() -> E5Model:
    return E5Model(threads=2)


@pytest.fixture(scope="module")
def float_engine() -> OnnxE5Model:
    return OnnxE5Model(threads=2, int8=False)


@pytest.fixture(scope="module")
def int8_engine() -> OnnxE5Model:
    return OnnxE5Model(threads=2, int8=True)


def sentences() -> list[str]:
    return [s.text for s in split_sentences(SEED.read_text(encoding="utf-8"))]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


def test_float_graph_gives_the_numpy_engines_vectors(
    numpy_engine: E5Model, float_engine: OnnxE5Model
) -> None:
    for texts, query in ((QUESTIONS, True), (sentences(), False)):
        ours = float_engine.embed(texts, query)
        assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        assert cosines(ours, numpy_engine.embed(texts, query)).min() > 0.99999


def test_int8_graph_stays_close_to_the_numpy_engine(
    numpy_engine: E5Model, int8_engine: OnnxE5Model
) -> None:
    # Over PIAF-dev (scripts/bench_e5.py): min 0.9982, median 0.9992.
    for texts, query in ((QUESTIONS, True), (sentences(), False)):
        reference = numpy_engine.embed(texts, query)
        agreement = cosines(int8_engine.embed(texts, query), reference)
        assert agreement.min() > 0.995
        assert np.median(agreement) > 0.998


def test_a_long_text_is_read_in_windows(
    numpy_engine: E5Model, float_engine: OnnxE5Model, int8_engine: OnnxE5Model
) -> None:
    text = SEED.read_text(encoding="utf-8")
    assert numpy_engine.token_count(text, False) > 512  # two windows
    texts = [text, "Une phrase courte."]
    reference = numpy_engine.embed(texts, False)
    assert cosines(float_engine.embed(texts, False), reference).min() > 0.99999
    assert cosines(int8_engine.embed(texts, False), reference).min() > 0.995
    # Its first window alone gives another vector: the second one counts.
    content = float_engine.tokenizer.tokens("passage: " + text)
    first = float_engine.forward([[float_engine.bos, *content[:510], float_engine.eos]])
    first /= np.linalg.norm(first)
    assert float(first[0] @ reference[0]) < 0.99


def test_a_padded_batch_gives_each_texts_own_vector(
    float_engine: OnnxE5Model, int8_engine: OnnxE5Model
) -> None:
    texts = [*sentences()[:6], *QUESTIONS]
    lengths = {len(float_engine.tokenizer.tokens("passage: " + t)) for t in texts}
    assert len(lengths) > 3  # one batch, padded to its longest text
    batched = float_engine.embed(texts, False)
    alone = np.concatenate([float_engine.embed([t], False) for t in texts])
    assert np.allclose(batched, alone, atol=1e-5)
    # int8 activations have a scale per token, not per batch (as ORT's
    # dynamic quantisation would): a text's neighbours do not move its vector.
    batched = int8_engine.embed(texts, False)
    alone = np.concatenate([int8_engine.embed([t], False) for t in texts])
    assert np.allclose(batched, alone, atol=1e-5)


def test_token_states_pool_to_the_window_vector(float_engine: OnnxE5Model) -> None:
    windows = [
        [float_engine.bos, *float_engine.tokenizer.tokens(t), float_engine.eos]
        for t in ("query: Où se jouera la finale ?", "passage: Le match aura lieu au stade.")
    ]
    longest = max(map(len, windows))
    pooled, states = float_engine.forward_tokens(windows, longest + 3)
    assert states.shape == (2, longest + 3, 384)
    for row, window in enumerate(windows):
        assert np.allclose(states[row, : len(window)].mean(axis=0), pooled[row], atol=1e-5)
        assert not states[row, len(window) :].any()  # past its end: zero
    assert np.allclose(pooled, float_engine.forward(windows), atol=1e-5)


def test_token_states_are_the_numpy_engines(numpy_engine: E5Model) -> None:
    encoder = E5Encoder(threads=1)
    texts = sentences()[:6]
    vectors, states = encoder._model.embed_tokens(texts, False, 8)
    reference, reference_states = numpy_engine.embed_tokens(texts, False, 8)
    assert np.allclose(vectors, encoder.encode(texts), atol=1e-6)
    assert np.allclose(reference, numpy_engine.embed(texts, False), atol=1e-6)
    assert states.shape == reference_states.shape == (6, 8, 384)
    real = np.linalg.norm(reference_states, axis=2) > 0  # zero past a text's end
    assert (np.linalg.norm(states, axis=2) > 0).tolist() == real.tolist() and not real.all()
    assert (np.einsum("ntd,ntd->nt", states, reference_states)[real] > 0.99).all()


def test_the_e5_encoder_runs_the_int8_graph(numpy_engine: E5Model) -> None:
    encoder = E5Encoder(threads=1)
    assert isinstance(encoder._model, OnnxE5Model) and encoder._model.int8
    texts = sentences()[:8]
    assert cosines(encoder.encode(texts), numpy_engine.embed(texts, False)).min() > 0.995
