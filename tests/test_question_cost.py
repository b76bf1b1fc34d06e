"""A question's cost is bounded: each encoder reads at most MAX_QUERY_TOKENS of its
tokens of a question, and so does the engine (its words and terms included).
Timings are in scripts/bench_question_cost.py, not here."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from helpers import DATA

from qa.embed import MAX_QUERY_TOKENS, clip_tokens
from qa.encoders.e5 import E5Encoder
from qa.encoders.use import USEEncoder
from qa.pipeline import QAEngine

RNG = random.Random(7)
LONG = {
    "cjk": "".join(chr(RNG.randint(0x4E00, 0x9FFF)) for _ in range(2000)),
    "accented": "".join(RNG.choices("éèêëàâäùûüîïôöçœæ", k=2000)),
    "words": " ".join("".join(RNG.choices("abcdefghij", k=6)) for _ in range(300))[:2000],
    "giant word": "".join(RNG.choices("abcdefghijklmnopqrstuvwxyz", k=2000)),
    "expanding": "﷽" * 2000,
}


def real_questions() -> list[str]:
    raw = json.loads((DATA / "piaf" / "piaf-dev.json").read_text(encoding="utf-8"))
    piaf = [q["question"] for d in raw["data"] for p in d["paragraphs"] for q in p["qas"]]
    news = json.loads((DATA / "news-qa-dev.json").read_text(encoding="utf-8"))["questions"]
    return piaf + [q["q"] for q in news]


def encoders(engine: QAEngine) -> tuple[USEEncoder, E5Encoder]:
    """The seed index's two encoders: USE, then E5 for close calls."""
    first, second = engine.encoder, engine.rescorer
    assert isinstance(first, USEEncoder) and isinstance(second, E5Encoder)
    return first, second


@pytest.mark.parametrize("kind", sorted(LONG))
def test_encoders_read_at_most_the_cap(engine: QAEngine, kind: str) -> None:
    text = LONG[kind]
    for enc in encoders(engine):
        count = enc.count_tokens
        assert count(text) > MAX_QUERY_TOKENS  # long enough to be cut
        kept = clip_tokens(text, count)
        assert text.startswith(kept) and count(kept) <= MAX_QUERY_TOKENS
        # the longest such start: one more character holds too many tokens
        assert count(text[: len(kept) + 1]) > MAX_QUERY_TOKENS
        # what the encoder reads of the question is that start, nothing more
        assert np.allclose(enc.encode_queries([text]), enc.encode_queries([kept]), atol=1e-6)


def test_real_questions_are_read_whole(engine: QAEngine) -> None:
    """The cap sits above every dev question: none loses a token, so no answer changes."""
    questions = real_questions()
    assert len(questions) > 1000
    for enc in encoders(engine):
        cut = [q for q in questions if clip_tokens(q, enc.count_tokens) != q]
        assert cut == [], cut[:3]


def test_the_engine_reads_the_capped_question(engine: QAEngine) -> None:
    """Words, terms and vectors all come from the first tokens; the answer still
    repeats the question as asked."""
    question = "Où se retrouvent les ministres ? " + LONG["words"][:1900]
    ranking = engine.rank(question, 5)
    read = ranking.query.text
    assert question.startswith(read) and len(read) < 400
    assert encoders(engine)[0].count_tokens(read) <= MAX_QUERY_TOKENS
    assert len(ranking.query.words) < 40
    # the rest of the question changes nothing (but float noise of batching)
    alone = engine.rank(read, 5)
    assert [s.sentence.row for s in ranking.scored] == [s.sentence.row for s in alone.scored]
    assert [s.score for s in ranking.scored] == pytest.approx([s.score for s in alone.scored])
    assert engine.ask(question).question == question.strip()


def test_clip_keeps_short_texts_and_handles_edges() -> None:
    def count(text: str) -> int:
        return len(text.split())

    assert clip_tokens("", count) == ""
    assert clip_tokens("a b c", count, max_tokens=3) == "a b c"
    assert clip_tokens("a b c d", count, max_tokens=3) == "a b c "
    assert clip_tokens("x" * 10_000, len, max_tokens=5) == "xxxxx"
    assert clip_tokens("x" * 10_000, lambda t: 2 * len(t), max_tokens=1) == ""
