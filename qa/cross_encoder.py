"""Cross-encoder: a small transformer that reads a question and a sentence
together, over the second encoder's token states.

The token match (qa/token_match.py) takes each question token's best cosine
with the sentence and averages: every token counts alike, and nothing reads
which sentence token answered which question word. This model reads the two
sequences jointly: each token's E5 state, projected to `dim`, plus an
embedding of its best cosine with the other side, passes through a few
pre-norm transformer layers after a [CLS] slot, whose output is the score
(plus `match_weight` times the token match, so training starts from it).

The states are those an index already keeps (`rescore_tokens`) and those the
question's E5 pass gives: nothing more is stored or encoded. Trained on the
training files by scripts/train.py (qa/cross_training.py, torch); served here
in numpy from `qa/models/cross-encoder.npz`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .token_match import SCALE

MODEL_FILE = Path(__file__).parent / "models" / "cross-encoder.npz"
LN_EPS = 1e-5  # torch's LayerNorm default, as trained


@dataclass(frozen=True)
class CrossLayer:
    norm1: tuple[np.ndarray, np.ndarray]
    qkv: tuple[np.ndarray, np.ndarray]  # (3 * dim, dim), (3 * dim,)
    out: tuple[np.ndarray, np.ndarray]
    norm2: tuple[np.ndarray, np.ndarray]
    up: tuple[np.ndarray, np.ndarray]
    down: tuple[np.ndarray, np.ndarray]


class CrossEncoder:
    """The numpy forward pass of qa/cross_training.py's `TorchCross`."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.heads = int(w["heads"][0])
        self.proj = (w["proj.weight"].T.copy(), w["proj.bias"])
        self.sim = (w["sim.weight"][:, 0], w["sim.bias"])
        self.side = w["side.weight"]
        self.cls = w["cls"].reshape(-1)
        self.out = (w["out.weight"][0], float(w["out.bias"][0]))
        self.match_weight = float(w["a"])
        self.dim = len(self.cls)
        self.layers = []
        for i in range(int(w["layers"][0])):
            p = f"enc.layers.{i}."
            self.layers.append(
                CrossLayer(
                    norm1=(w[p + "norm1.weight"], w[p + "norm1.bias"]),
                    qkv=(
                        w[p + "self_attn.in_proj_weight"].T.copy(),
                        w[p + "self_attn.in_proj_bias"],
                    ),
                    out=(
                        w[p + "self_attn.out_proj.weight"].T.copy(),
                        w[p + "self_attn.out_proj.bias"],
                    ),
                    norm2=(w[p + "norm2.weight"], w[p + "norm2.bias"]),
                    up=(w[p + "linear1.weight"].T.copy(), w[p + "linear1.bias"]),
                    down=(w[p + "linear2.weight"].T.copy(), w[p + "linear2.bias"]),
                )
            )

    def score(self, question: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) float32 scores of packed sentences (qa/token_match.py
        `pack`) for the question's unit token states (tokens, 384)."""
        n = len(rows)
        if not n or not len(question):
            return np.zeros(n, dtype=np.float32)
        dim_in = question.shape[1]
        tokens = np.asarray(rows).reshape(n, -1, dim_in)
        real = np.asarray(tokens.any(axis=2))  # (n, kept)
        # Only the longest sentence's tokens are read: the rest is padding.
        kept = int(np.flatnonzero(real.any(axis=0)).max(initial=0)) + 1
        s = tokens[:, :kept].astype(np.float32) / SCALE
        real = real[:, :kept]
        q = question.astype(np.float32)
        cos = s @ q.T  # (n, kept, lq)
        q_best = np.where(real[:, :, None], cos, -1.0).max(axis=1)  # (n, lq)
        s_best = cos.max(axis=2)  # (n, kept)
        match = q_best.mean(axis=1)
        lq = len(q)
        proj_w, proj_b = self.proj
        sim_w, sim_b = self.sim
        xq = (q @ proj_w + proj_b)[None] + q_best[..., None] * sim_w + sim_b + self.side[0]
        # Padding is skipped: only real sentence tokens are projected and read.
        xs = np.zeros((n, kept, self.dim), dtype=np.float32)
        xs[real] = s[real] @ proj_w + s_best[real][:, None] * sim_w
        xs += proj_b + sim_b + self.side[1]
        x = np.concatenate([np.broadcast_to(self.cls, (n, 1, self.dim)), xq, xs], axis=1)
        mask = np.concatenate([np.ones((n, 1 + lq), dtype=bool), real], axis=1)
        bias = np.where(mask, 0.0, -1e9).astype(np.float32)[:, None, None, :]
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            # Only [CLS]'s output is read: the last layer computes its row alone.
            read = 1 if i == last else x.shape[1]
            x = x[:, :read] + self._attention(x, mask, layer, bias, read)
            h = _layer_norm(x, *layer.norm2) @ layer.up[0] + layer.up[1]
            x = x + np.maximum(h, 0.0) @ layer.down[0] + layer.down[1]
        weight, offset = self.out
        return (x[:, 0] @ weight + offset + self.match_weight * match).astype(np.float32)

    def _attention(
        self, x: np.ndarray, mask: np.ndarray, layer: CrossLayer, bias: np.ndarray, rows: int
    ) -> np.ndarray:
        """Pre-norm self-attention of `x` (n, length, dim) over its `mask`ed
        positions, for its first `rows` positions."""
        n, length, dim = x.shape
        heads, size = self.heads, dim // self.heads
        weight, offset = layer.qkv
        normed = _layer_norm(x[mask], *layer.norm1)  # (real positions, dim)
        kv = np.zeros((n, length, 2 * dim), dtype=np.float32)
        kv[mask] = normed @ weight[:, dim:] + offset[dim:]
        kv = kv.reshape(n, length, 2, heads, size)
        first = _layer_norm(x[:, :rows].reshape(-1, dim), *layer.norm1)
        q = (first @ weight[:, :dim] + offset[:dim]).reshape(n, rows, heads, size)
        q = q.transpose(0, 2, 1, 3) * np.float32(size**-0.5)
        k = np.ascontiguousarray(kv[:, :, 0].transpose(0, 2, 3, 1))  # (n, heads, size, length)
        v = np.ascontiguousarray(kv[:, :, 1].transpose(0, 2, 1, 3))  # (n, heads, length, size)
        scores = np.matmul(q, k) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        mixed = np.matmul(scores, v).transpose(0, 2, 1, 3).reshape(-1, dim)
        return (mixed @ layer.out[0] + layer.out[1]).reshape(n, rows, dim)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + LN_EPS) * weight + bias


def load_cross_encoder(path: Path = MODEL_FILE) -> CrossEncoder | None:
    """The committed cross-encoder, or None when there is no file (the
    "cross" feature then stays 0, as in an answer model fitted without it)."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return CrossEncoder({k: z[k] for k in z.files})
