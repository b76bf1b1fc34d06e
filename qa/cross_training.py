"""Training the cross-encoder (qa/cross_encoder.py) on the training files.

Training only (scripts/train.py): this module needs torch, which serving
never imports. A `Group` is one training question's E5 token states and the
rows of its candidate sentences in a packed token matrix (qa/token_match.py
`pack`), the answering sentence first: the other sentences of its paragraph,
the sentences of other paragraphs of its article that the token match ranks
highest (hard negatives) and a few drawn at random from them. The loss is a
softmax over each group (listwise, as the answer model is fitted).

Measured on a fifth of the training titles held out (docs/answer-scoring.md):
within the question's paragraph, French rank-1 0.684 by the token match, 0.732
by this model; English 0.827, 0.837.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .cross_encoder import CrossEncoder
from .evaluation import Question
from .pipeline import QAEngine
from .records import Article
from .token_match import SCALE, TokenEncoder, token_match

DIM = 128  # the model's width (E5's states are projected from 384)
LAYERS = 1
HEADS = 4
PARAGRAPH_NEGATIVES = 12  # other sentences of the question's paragraph, at most
HARD_NEGATIVES = 6  # best token matches among the article's other paragraphs
RANDOM_NEGATIVES = 2
QUESTIONS_A_STEP = 16
RATE = 5e-4


@dataclass(frozen=True)
class Group:
    """One training question: its unit token states and candidate rows, right one first."""

    question: np.ndarray  # (tokens, 384) float32
    rows: tuple[int, ...]
    title: str  # its article's, by which training splits the questions


def groups_of(
    engine: QAEngine, articles: Sequence[Article], questions: Sequence[Question], seed: int
) -> tuple[list[Group], np.ndarray]:
    """A `Group` for each of `questions` whose answer is in a sentence of
    `engine`'s index (built from `articles`, paragraphs titled by their
    article), and a copy of the packed token states its rows index. The
    questions' token states come from the engine's second encoder, as served."""
    reader, rescorer = engine.reader, engine.rescorer
    if reader.rescore_tokens is None or not isinstance(rescorer, TokenEncoder):
        raise ValueError("the cross-encoder trains on an index built with E5's token states")
    tokens = np.array(reader.rescore_tokens)
    sentences = {
        a.id: [s for s in reader.article_sentences(a.id) if not s.heading] for a in articles
    }
    title_of = {a.id: a.title for a in articles}
    by_title: dict[str, list[int]] = {}
    for a in articles:
        by_title.setdefault(a.title, []).extend(s.row for s in sentences[a.id])
    rng = random.Random(seed)
    groups = []
    for q in questions:
        paragraph = sentences.get(q.article_id or "", [])
        gold = [s.row for s in paragraph if q.span and s.start <= q.span[0] < s.end]
        if not gold:
            continue
        states = rescorer.encode_query_tokens(q.text)[1]
        if not len(states):
            continue
        title = title_of[q.article_id or ""]
        rows = [s.row for s in paragraph]
        groups.append(group(states, gold[0], rows, by_title[title], tokens, rng, title))
    return groups, tokens


def merged(parts: Sequence[tuple[list[Group], np.ndarray]]) -> tuple[list[Group], np.ndarray]:
    """The groups of several indexes over one token matrix."""
    groups, offset = [], 0
    for part, tokens in parts:
        groups += [Group(g.question, tuple(r + offset for r in g.rows), g.title) for g in part]
        offset += len(tokens)
    return groups, np.concatenate([tokens for _, tokens in parts])


def group(
    question: np.ndarray,
    gold: int,
    paragraph: Sequence[int],
    article: Sequence[int],
    tokens: np.ndarray,
    rng: random.Random,
    title: str,
) -> Group:
    """The candidates of one question: `gold`, the rest of its `paragraph`, and
    negatives from the rest of its `article` (rows of `tokens`)."""
    own = set(paragraph)
    others = [r for r in article if r not in own]
    hard: list[int] = []
    if others:
        match = token_match(question, tokens[others])
        hard = [others[i] for i in np.argsort(-match, kind="stable")[:HARD_NEGATIVES]]
        taken = set(hard)
        rest = [r for r in others if r not in taken]
        hard += rng.sample(rest, min(RANDOM_NEGATIVES, len(rest)))
    near = [r for r in paragraph if r != gold][:PARAGRAPH_NEGATIVES]
    return Group(question.astype(np.float32), (gold, *near, *hard), title)


class TorchCross(torch.nn.Module):
    """The cross-encoder on padded batches of (question, sentence) pairs."""

    def __init__(self, dim_in: int = 384) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(dim_in, DIM)
        self.sim = torch.nn.Linear(1, DIM)
        self.side = torch.nn.Embedding(2, DIM)
        self.cls = torch.nn.Parameter(torch.zeros(1, 1, DIM))
        layer = torch.nn.TransformerEncoderLayer(
            DIM, HEADS, 2 * DIM, dropout=0.1, batch_first=True, norm_first=True
        )
        self.enc = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.out = torch.nn.Linear(DIM, 1)
        # The token match's weight: training starts from that ranking.
        self.a = torch.nn.Parameter(torch.tensor(10.0))

    def forward(
        self, q: torch.Tensor, qm: torch.Tensor, s: torch.Tensor, sm: torch.Tensor
    ) -> torch.Tensor:
        cos = torch.einsum("bid,bjd->bij", q, s)
        q_best = cos.masked_fill(~sm[:, None, :], -1.0).max(2).values
        s_best = cos.masked_fill(~qm[:, :, None], -1.0).max(1).values
        match = (q_best * qm).sum(1) / qm.sum(1)
        xq = self.proj(q) + self.sim(q_best[..., None]) + self.side.weight[0]
        xs = self.proj(s) + self.sim(s_best[..., None]) + self.side.weight[1]
        x = torch.cat([self.cls.expand(len(q), 1, DIM), xq, xs], 1)
        real = torch.cat([torch.ones(len(q), 1, dtype=torch.bool), qm, sm], 1)
        h = self.enc(x, src_key_padding_mask=~real)
        return self.out(h[:, 0]).squeeze(-1) + self.a * match


def padded(arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, longest, dim) zero-padded states and the mask of the real ones."""
    length = max(len(a) for a in arrays)
    x = np.zeros((len(arrays), length, arrays[0].shape[1]), np.float32)
    for i, a in enumerate(arrays):
        x[i, : len(a)] = a
    t = torch.from_numpy(x)
    return t, t.abs().sum(-1) > 0


def train(
    groups: Sequence[Group],
    tokens: np.ndarray,
    seed: int,
    epochs: int = 1,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, np.ndarray]:
    """Fit a cross-encoder on `groups` over the packed rows `tokens`; its
    weights in the names qa/cross_encoder.py reads. Deterministic for a seed
    (on one torch thread count)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    dim_in = groups[0].question.shape[1]
    states = tokens.reshape(len(tokens), -1, dim_in)
    model = TorchCross(dim_in)
    opt = torch.optim.AdamW(model.parameters(), lr=RATE, weight_decay=0.01)
    size = min(QUESTIONS_A_STEP, len(groups))
    steps = max(1, epochs * (len(groups) // size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, RATE, total_steps=steps + 1, pct_start=0.1)
    order = list(groups)
    done = 0
    model.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for at in range(0, len(order) - size + 1, size):
            batch = order[at : at + size]
            questions = [g.question for g in batch for _ in g.rows]
            sentences = [sentence_states(states[r]) for g in batch for r in g.rows]
            q, qm = padded(questions)
            s, sm = padded(sentences)
            scores = model(q, qm, s, sm)
            loss = torch.zeros(())
            start = 0
            for g in batch:
                # The right sentence is each group's first.
                loss = loss + F.cross_entropy(
                    scores[start : start + len(g.rows)][None], torch.tensor([0])
                )
                start += len(g.rows)
            loss = loss / len(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            done += 1
            if progress:
                progress(done, steps, float(loss))
    return export(model)


def right_first(
    groups: Sequence[Group], tokens: np.ndarray, cross: CrossEncoder
) -> dict[str, float]:
    """Share of `groups` whose right sentence `cross` scores first among its
    candidates, and the same by the token match alone."""
    by_match, by_cross = [], []
    for g in groups:
        rows = tokens[list(g.rows)]
        by_match.append(int(np.argmax(token_match(g.question, rows))) == 0)
        by_cross.append(int(np.argmax(cross.score(g.question, rows))) == 0)
    return {
        "token match": round(float(np.mean(by_match)), 4),
        "cross-encoder": round(float(np.mean(by_cross)), 4),
    }


def sentence_states(row: np.ndarray) -> np.ndarray:
    """A packed row's unit states, its padding cut."""
    kept = int(np.flatnonzero(row.any(axis=1)).max(initial=0)) + 1
    return row[:kept].astype(np.float32) / SCALE


def export(model: TorchCross) -> dict[str, np.ndarray]:
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    weights["heads"] = np.array([HEADS])
    weights["layers"] = np.array([LAYERS])
    return weights
