"""The cross-encoder (qa/cross_encoder.py): trained in torch by
qa/cross_training.py on real training questions, served in numpy from the
token states an index keeps, read in the second pass as the "cross" feature."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DATA, FRENCH_ARTICLE, encoder
from test_token_match import LANTERNS, build

from qa import cross_training as ct
from qa import evaluation as ev
from qa import features
from qa.cross_encoder import MODEL_FILE, CrossEncoder, load_cross_encoder
from qa.embed import E5_NAME
from qa.encoders.e5 import E5Encoder
from qa.features import CROSS
from qa.pipeline import QAEngine, Tuning
from qa.scorer import AnswerWeights, load_model
from qa.settings import Settings


@pytest.fixture(scope="module")
def e5() -> E5Encoder:
    return E5Encoder()


def test_the_numpy_forward_pass_is_the_trained_models(e5: E5Encoder) -> None:
    torch.manual_seed(0)
    model = ct.TorchCross()
    with torch.no_grad():  # weights off their initial values, so every part counts
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.eval()
    served = CrossEncoder(ct.export(model))
    question = e5.encode_query_tokens("Combien de lanternes ont été installées ?")[1]
    sentences = [line for line in FRENCH_ARTICLE.splitlines() if line.strip()]
    rows = e5.encode_tokens(sentences)[1]
    states = [ct.sentence_states(r.reshape(-1, 384)) for r in rows]
    q, qm = ct.padded([question] * len(rows))
    s, sm = ct.padded(states)
    with torch.no_grad():
        expected = model(q, qm, s, sm).numpy()
    got = served.score(question, rows)
    assert got.shape == (len(sentences),) and np.allclose(got, expected, atol=1e-4), (got, expected)
    assert expected.std() > 0.1


def test_training_learns_to_put_the_answer_first(tmp_path: Path) -> None:
    """On real PIAF training questions, through the index a training run builds."""
    articles, questions = ev.load_squad(DATA / "piaf" / "piaf-train.json", "fr", "piaf")
    articles = articles[:6]
    kept = {a.id for a in articles}
    questions = [q for q in questions if q.article_id in kept]
    settings = Settings(index_dir=str(tmp_path / "index"), rescore_model=E5_NAME)
    engine = ev.build_engine(articles, tmp_path / "index", encoder(), settings)
    groups, tokens = ct.groups_of(engine, articles, questions, seed=0)
    assert len(groups) >= 15 and all(len(g.rows) > 1 for g in groups)
    engine.reader.close()

    def right_first(cross: CrossEncoder) -> float:
        firsts = [cross.score(g.question, tokens[list(g.rows)]).argmax() == 0 for g in groups]
        return float(np.mean(firsts))

    untrained = right_first(CrossEncoder(ct.train(groups, tokens, seed=0, epochs=0)))
    trained = right_first(CrossEncoder(ct.train(groups, tokens, seed=0, epochs=30)))
    assert trained > untrained + 0.1, (untrained, trained)


def test_the_second_pass_reads_its_best_candidates_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, settings = build(tmp_path)
    reads = 3  # of this two-article index's six sentences
    monkeypatch.setattr(features, "CROSS_READS", reads)
    cross = load_cross_encoder()
    assert cross is not None
    second = AnswerWeights.trained(second_encoder=True)
    unsure = replace(AnswerWeights.trained(second_encoder=False), unsure_below=float("inf"))
    tuning = Tuning(unsure, rescoring=second, cross=cross)
    engine = QAEngine(index, encoder(), settings, tuning)
    ranking = engine.rank(LANTERNS, 5)
    assert ranking.rescored and len(ranking.scored) > reads
    rows = np.array([s.features for s in ranking.scored])
    column = rows[:, CROSS].copy()
    rows[:, CROSS] = 0
    # it reads the candidates the second weights rank best without it
    read = np.argsort(-(rows @ second.vector()), kind="stable")[:reads]
    unread = np.setdiff1d(np.arange(len(column)), read)
    assert np.allclose(column[unread], column[read].min())
    assert abs(column[read].mean()) < 1e-5 and column[read].std() > 0
    assert "trois cents lanternes" in ranking.scored[int(column.argmax())].text

    without = QAEngine(index, encoder(), settings, replace(tuning, cross=None))
    ranking = without.rank(LANTERNS, 5)
    assert ranking.rescored and all(s.features[CROSS] == 0 for s in ranking.scored)
    assert without.ask(LANTERNS).answered


def test_the_committed_cross_encoder_is_the_answer_models() -> None:
    assert load_cross_encoder(MODEL_FILE.with_name("missing.npz")) is None
    cross = load_cross_encoder()
    assert cross is not None and MODEL_FILE.stat().st_size < 5_000_000
    # the answer model was fitted on its scores, and weighs them
    assert load_model()["second"]["weights"]["cross"] > 0
