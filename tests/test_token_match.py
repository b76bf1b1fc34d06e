"""Token match (qa/token_match.py): the second encoder's token states of each
sentence, kept by the index in step with its rows, and the question read
against them token by token in the second pass."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import ENGLISH_ARTICLE, FRENCH_ARTICLE, GLACIER_ARTICLE, encoder, titled

from qa import indexing
from qa.embed import E5_NAME
from qa.encoders.e5 import E5Encoder
from qa.errors import IndexMismatch
from qa.features import FEATURES
from qa.pipeline import QAEngine, Tuning
from qa.scorer import AnswerWeights
from qa.settings import Settings
from qa.store import RESCORE_TOKENS_NPY, IndexReader
from qa.token_match import TOKENS_KEPT, TokenEncoder, pack, token_match

LANTERNS = "Combien de lanternes les organisateurs ont-ils installées ?"


@pytest.fixture(scope="module")
def e5() -> E5Encoder:
    return E5Encoder()


def build(root: Path) -> tuple[Path, Settings]:
    folder = root / "corpus"
    folder.mkdir()
    (folder / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    (folder / "bees.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    index = root / "index"
    settings = Settings(index_dir=str(index), rescore_model=E5_NAME)
    assert indexing.build(folder, index, encoder(), settings).errors == []
    return index, settings


def test_the_question_matches_its_sentence_token_by_token(e5: E5Encoder) -> None:
    assert isinstance(e5, TokenEncoder) and not isinstance(encoder(), TokenEncoder)
    sentences = [
        "Le gouvernement a présenté mardi une réforme des retraites.",
        "La finale de la coupe se jouera le 12 juin au Stade de France.",
        "Les abeilles ont profité d'un printemps chaud.",
    ]
    vector, tokens = e5.encode_query_tokens("Where will the cup final be played?")
    assert np.allclose(vector, e5.encode_queries(["Where will the cup final be played?"])[0])
    # its own tokens: "query: " and the markers are not read against sentences
    assert len(tokens) == len(e5._model.tokenizer.tokens("Where will the cup final be played?"))
    assert np.allclose(np.linalg.norm(tokens, axis=1), 1.0, atol=1e-5)
    vectors, rows = e5.encode_tokens(sentences)
    assert np.allclose(vectors, e5.encode(sentences), atol=1e-6)
    assert rows.shape == (3, TOKENS_KEPT * 384) and rows.dtype == np.int8
    match = token_match(tokens, rows)
    assert match.argmax() == 1 and match[1] > match[0] + 0.02, match


def test_padding_is_never_a_match() -> None:
    rng = np.random.default_rng(0)
    states = np.zeros((2, TOKENS_KEPT, 8), dtype=np.float32)
    real = rng.normal(size=(2, 5, 8)).astype(np.float32)
    states[:, :5] = real / np.linalg.norm(real, axis=2, keepdims=True)
    question = -states[0, :3]  # cosine -1 with its own tokens, and under 0 with padding's
    expected = (question @ states[0, :5].T).max(axis=1).mean()
    assert np.isclose(token_match(question, pack(states))[0], expected, atol=0.02)
    assert token_match(question, pack(states)[:0]).shape == (0,)


def test_the_index_keeps_each_sentences_token_states_in_step(tmp_path: Path, e5: E5Encoder) -> None:
    index, settings = build(tmp_path)
    extra = tmp_path / "glacier.txt"
    extra.write_text(GLACIER_ARTICLE, encoding="utf-8")
    indexing.add([extra], index, encoder(), settings)
    reader = IndexReader(index)
    bees = next(a["id"] for a in reader.list_articles() if "bee" in a["title"].lower())
    reader.close()
    indexing.remove([bees], index, encoder())
    reader = IndexReader(index)
    assert reader.meta["rescorer"] == {"name": E5_NAME, "dim": 384, "tokens": TOKENS_KEPT}
    assert reader.rescore_tokens is not None
    assert reader.rescore_tokens.shape == (reader.rows["sentences"], TOKENS_KEPT * 384)
    for article_id in reader.article_ids():
        article = reader.article(article_id)
        assert article is not None
        stored = reader.article_sentences(article_id)
        texts = [titled(article, article.text[s.start : s.end]) for s in stored]
        rows = reader.rescore_tokens[[s.row for s in stored]].astype(np.int16)
        # int8 of the same states: a rounding step apart at most
        assert np.abs(rows - e5.encode_tokens(texts)[1]).max() <= 1, article_id
    reader.close()


def test_the_second_pass_reads_the_question_token_by_token(tmp_path: Path) -> None:
    index, settings = build(tmp_path)
    trained = Tuning(
        AnswerWeights.trained(second_encoder=False),
        rescoring=AnswerWeights.trained(second_encoder=True),
    )
    unsure = replace(trained.answer, unsure_below=float("inf"))
    engine = QAEngine(index, encoder(), settings, replace(trained, answer=unsure))
    ranking = engine.rank(LANTERNS, 5)
    assert ranking.rescored
    match = np.array([s.features[FEATURES.index("token_match")] for s in ranking.scored])
    # over its mean among the candidates; the answering sentence matches best
    assert abs(match.mean()) < 1e-5 and match.std() > 0
    best = ranking.scored[int(match.argmax())]
    assert "trois cents lanternes" in best.text


def test_missing_token_states_ask_for_a_rebuild(tmp_path: Path) -> None:
    index, settings = build(tmp_path)
    (index / "current" / RESCORE_TOKENS_NPY).unlink()
    with pytest.raises(IndexMismatch):
        QAEngine.load(settings)


def test_an_index_from_before_token_states_still_answers_and_says_to_rebuild(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index, settings = build(tmp_path)
    build_dir = (index / "current").resolve()
    meta = json.loads((build_dir / "meta.json").read_text())
    del meta["rescorer"]["tokens"]  # as builds before token states were written
    del meta["files"][RESCORE_TOKENS_NPY], meta["digests"]["files"][RESCORE_TOKENS_NPY]
    (build_dir / "meta.json").write_text(json.dumps(meta))
    (build_dir / RESCORE_TOKENS_NPY).unlink()
    with caplog.at_level(logging.WARNING, logger="qa.pipeline"):
        engine = QAEngine.load(settings)
    assert engine.reader.rescore_tokens is None
    assert "token states" in caplog.text and "rebuild" in caplog.text
    answer = engine.ask(LANTERNS)
    assert answer.answered and "trois cents lanternes" in (answer.answer or "")
