"""The answer model: scripts/train.py fits it from the training sets through
the server's own ranking pass, and the committed model file is what the
engine loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, run_script

from qa import evaluation as ev
from qa.embed import load_encoder
from qa.errors import ModelLoadError
from qa.features import FEATURES
from qa.pipeline import QAEngine
from qa.scorer import MODEL_FILE, AnswerWeights, load_model
from qa.settings import Settings
from qa.training import Example, fit_listwise, rank1, threshold


def test_train_script_writes_a_model_the_engine_loads(tmp_path: Path) -> None:
    """A smoke run: a few paragraphs and questions of each training file."""
    out, tower = tmp_path / "model.json", tmp_path / "tower.npz"
    done = run_script(
        "train.py",
        "--articles", "4", "--questions", "12", "--negatives", "4", "--out", out,
        "--tower-out", tower,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = json.loads(out.read_text())
    assert model["command"].startswith("python scripts/train.py --articles 4")
    # The question tower is fine-tuned first, and its questions are the model's.
    assert tower.exists() and model["encoders"]["question tower"] == "tower.npz"
    assert model["examples"] == {"answerable": 24, "article hidden": 8}
    for part in ("first", "second"):
        weights = AnswerWeights.trained(part == "second", out)
        assert np.isfinite(weights.vector()).all() and np.isfinite(weights.abstain_below)
    assert "rescore" in model["second"]["weights"]
    assert "rescore" not in model["first"]["weights"]
    assert "second train rank-1" in done.stdout


def test_committed_model_file_records_how_it_was_made() -> None:
    model = load_model(MODEL_FILE)
    assert model["command"].startswith("python scripts/train.py")
    assert set(model["data"]) == {"piaf/piaf-train.json", "squad/squad-train-en.json"}
    assert set(model["second"]["weights"]) <= set(FEATURES)
    assert MODEL_FILE.stat().st_size < 25_000_000


def test_a_damaged_model_file_names_the_fix(tmp_path: Path) -> None:
    broken = tmp_path / "model.json"
    broken.write_text('{"first": {}}')
    with pytest.raises(ModelLoadError, match=r"scripts/train\.py"):
        load_model(broken)


def test_listwise_fit_learns_which_feature_marks_the_answer() -> None:
    """Two features, only the first marks the right candidate: it gets the weight."""
    rng = np.random.default_rng(0)
    examples = []
    for _ in range(60):
        features = rng.normal(size=(6, len(FEATURES))).astype(np.float32)
        labels = np.zeros(6, dtype=bool)
        labels[int(np.argmax(features[:, 0]))] = True
        examples.append(Example(ev.Question("q", "fr"), features, labels, True))
    w = fit_listwise(examples, [0, 1], len(FEATURES))
    assert w[0] > 5 * abs(w[1]) and not w[2:].any()
    assert rank1(examples, w) >= 0.9
    scores = np.arange(100.0)
    assert threshold(scores, np.array([]), 0.95) == pytest.approx(np.quantile(scores, 0.05))


@pytest.fixture(scope="module")
def seed_engine(tmp_path_factory: pytest.TempPathFactory) -> QAEngine:
    settings = Settings()
    return ev.build_engine(
        ev.seed_articles(DATA),
        Path(tmp_path_factory.mktemp("seed")),
        load_encoder(settings.model, settings.encoder_threads()),
        settings,
    )


def test_committed_model_answers_the_seed(seed_engine: QAEngine) -> None:
    """The committed weights, loaded at start, cite the right sentence of the
    seed for its French and English questions, and abstain on the others."""
    _, questions = ev.load_seed(DATA)
    report = ev.run(seed_engine, questions, "seed")
    assert seed_engine.tuning.rescoring == AnswerWeights.trained(second_encoder=True)
    wrong = [o.question.text for o in report.subset() if not o.right_at(1)]
    assert not wrong
    assert all(o.answered for o in report.subset())
    assert not any(o.answered for o in report.subset(answerable=False))
