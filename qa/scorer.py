"""The answer model: weights over the candidates' features (`qa.features`)
and the score under which the service abstains, trained by scripts/train.py
on the training sets and loaded from its file, `qa/models/answer-model.json`.

A sentence's score is its weighted features minus the abstention threshold:
0 is where the service stops answering, on every index. Indexes built with
a second encoder score with the weights that read its cosine ("second");
those without one with the weights fitted without it ("first").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelLoadError
from .features import FEATURES, SECOND_ENCODER_FEATURES, Candidates
from .records import Article, Citation
from .store import SentenceRow

__all__ = ["FEATURES", "MODEL_FILE", "SECOND_ENCODER_FEATURES", "AnswerWeights", "ScoredSentence"]

MODEL_FILE = Path(__file__).parent / "models" / "answer-model.json"


@dataclass(frozen=True)
class AnswerWeights:
    """Weights of FEATURES and the score under which the service abstains."""

    weights: tuple[tuple[str, float], ...]
    abstain_below: float
    read_chunks: int = 8  # passages whose sentences are read
    # First pass only: the second encoder is asked when the best sentence's
    # score (its margin over the threshold) is under `unsure_below`, or when
    # it leads the next by under `close_below` (trained: scripts/train.py).
    unsure_below: float = float("inf")
    close_below: float = float("inf")

    @classmethod
    def trained(cls, second_encoder: bool, path: Path = MODEL_FILE) -> AnswerWeights:
        """The trained weights for an index with (or without) a second encoder."""
        model = load_model(path)
        part = model["second" if second_encoder else "first"]
        ask = part.get("ask_second", {})
        return cls(
            tuple(part["weights"].items()),
            float(part["abstain_below"]),
            unsure_below=float(ask.get("unsure_below", "inf")),
            close_below=float(ask.get("close_below", "inf")),
        )

    def unsure(self, scored: list[ScoredSentence]) -> bool:
        """Whether these weights' ranking should be put to the second encoder."""
        if len(scored) < 2:
            return True
        return scored[0].score < self.unsure_below or (
            scored[0].score - scored[1].score < self.close_below
        )

    def vector(self) -> np.ndarray:
        """The weights in FEATURES order; a feature not named weighs 0."""
        named = dict(self.weights)
        unknown = set(named) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown answer features: {sorted(unknown)}")
        return np.asarray([named.get(f, 0.0) for f in FEATURES], dtype=np.float32)


@cache
def load_model(path: Path = MODEL_FILE) -> dict[str, Any]:
    """The model file written by scripts/train.py."""
    try:
        model = json.loads(path.read_text())
        for part in ("first", "second"):
            float(model[part]["abstain_below"])
            dict(model[part]["weights"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"Cannot read the answer model {path} ({type(exc).__name__}: {exc}); "
            "rebuild it with: python scripts/train.py"
        ) from exc
    return model


@dataclass(frozen=True)
class ScoredSentence:
    sentence: SentenceRow
    article: Article
    score: float  # over the abstention threshold of the weights that scored it: >= 0 answers
    features: tuple[float, ...]

    @property
    def text(self) -> str:
        return self.article.text[self.sentence.start : self.sentence.end]


def score_sentences(found: Candidates, weights: AnswerWeights) -> list[ScoredSentence]:
    """Candidate sentences scored by `weights`, best first."""
    scores = found.features @ weights.vector() - weights.abstain_below
    order = np.argsort(-scores, kind="stable")
    return [
        ScoredSentence(
            found.sentences[i],
            found.articles[i],
            float(scores[i]),
            tuple(map(float, found.features[i])),
        )
        for i in order
    ]


def citations(scored: list[ScoredSentence], limit: int = 3) -> list[Citation]:
    out = []
    for s in scored[:limit]:
        out.append(
            Citation(
                article_id=s.article.id,
                title=s.article.title,
                url=s.article.url,
                sentence=s.text,
                start=s.sentence.start,
                end=s.sentence.end,
                score=round(s.score, 4),
                date=s.article.date,
                source=s.article.source,
            )
        )
    return out
