"""Token match: a question read against a sentence token by token.

A pooled vector keeps one point per sentence; the second encoder's last
hidden states keep one per token, each read in its sentence's context. The
match of a question with a sentence is the mean, over the question's tokens,
of each one's best cosine with the sentence's tokens (late interaction, as
ColBERT scores passages, here on multilingual-e5-small's own states, no
training). Over all 788 PIAF dev sentences, the right one is ranked first
for 62% of the questions by this match, against 58% by the pooled vectors'
cosine (70% and 72% within the question's paragraph; docs/answer-scoring.md).

An index keeps the first `TOKENS_KEPT` token states of each sentence as it
was encoded (<s>, "passage: ", the article's title, the sentence), in int8:
a row of TOKENS_KEPT * dim bytes per sentence, zero past its end.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .embed import Encoder

# Token states kept per sentence. Over PIAF dev, sentences under their title
# hold a median of 47 tokens, 78 at the 90th percentile; keeping 64 ranks as
# well as keeping them all (61.4% against 62.1% right first), 48 lose 2 points.
TOKENS_KEPT = 64
# Unit states in int8: the cosines move by under 1e-2, no rank-1 figure did.
SCALE = 127.0


@runtime_checkable
class TokenEncoder(Encoder, Protocol):
    """An encoder that also gives its token states (E5Encoder)."""

    def encode_tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`encode`'s vectors, and each text's packed token states (`pack`)."""
        ...

    def encode_query_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """`encode_queries`' vector of one question, and the unit states of
        its own tokens (its prefix and markers aside): (tokens, dim)."""
        ...


def pack(states: np.ndarray) -> np.ndarray:
    """(n, TOKENS_KEPT, dim) unit states, zero past each text's end, as the
    (n, TOKENS_KEPT * dim) int8 rows an index stores."""
    n = len(states)
    return np.round(np.clip(states, -1.0, 1.0) * SCALE).astype(np.int8).reshape(n, -1)


def token_match(question: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) float32: for each packed sentence, the mean over the
    `question`'s unit token states (tokens, dim) of their best cosine with
    one of its tokens."""
    if not len(rows) or not len(question):
        return np.zeros(len(rows), dtype=np.float32)
    dim = question.shape[1]
    tokens = np.asarray(rows).reshape(len(rows), -1, dim)
    padding = ~tokens.any(axis=2)  # (n, kept)
    cosines = (tokens.astype(np.float32) @ (question.T / SCALE)).astype(np.float32)
    cosines[padding] = -1.0
    return cosines.max(axis=1).mean(axis=1)
