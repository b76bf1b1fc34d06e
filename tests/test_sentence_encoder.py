"""The sentence encoder (qa.settings `sentence_model`): multilingual-e5-small
may score the answer sentences while USE keeps retrieval; the index records
which encoder made its sentence vectors, and every later use follows that."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import ENGLISH_ARTICLE, FRENCH_ARTICLE, GLACIER_ARTICLE, encoder

from qa import indexing
from qa.answer import FITTED, AnswerWeights
from qa.embed import E5_NAME, USE_NAME, load_encoder, load_sentence_encoder
from qa.errors import EncoderMismatch
from qa.pipeline import QAEngine
from qa.settings import Settings
from qa.store import IndexReader

PARAPHRASES = [
    ("Le chat dort sur le canapé.", "The cat is sleeping on the sofa."),
    ("Les ministres se réunissent mercredi à Paris.", "The ministers meet in Paris on Wednesday."),
    ("La banque centrale a relevé ses taux.", "The central bank raised its interest rates."),
]


@pytest.fixture(scope="module")
def e5() -> object:
    return load_encoder(E5_NAME)


def corpus(root: Path) -> Path:
    folder = root / "corpus"
    folder.mkdir()
    (folder / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    (folder / "bees.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    return folder


def build(root: Path, **settings: str) -> tuple[Path, Settings]:
    index = root / "index"
    config = Settings(index_dir=str(index), **settings)  # type: ignore[arg-type]
    report = indexing.build(corpus(root), index, encoder(), config)
    assert report.errors == []
    return index, config


def test_e5_unit_rows_queries_differ_from_passages(e5) -> None:  # type: ignore[no-untyped-def]
    assert (e5.name, e5.dim) == (E5_NAME, 384)
    text = "Les ministres de la Défense se retrouvent à 11H00."
    passages, queries = e5.encode([text, "x" * 3000, ""]), e5.encode_queries([text])
    assert passages.shape == (3, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    # E5 marks queries and passages apart: the same text gives two vectors
    assert 0.5 < float(passages[0] @ queries[0]) < 0.999
    assert e5.encode([]).shape == e5.encode_queries([]).shape == (0, 384)


def test_e5_french_question_finds_english_sentence_and_back(e5) -> None:  # type: ignore[no-untyped-def]
    fr, en = [p[0] for p in PARAPHRASES], [p[1] for p in PARAPHRASES]
    for questions, passages in ((fr, en), (en, fr)):
        sims = e5.encode_queries(questions) @ e5.encode(passages).T
        assert list(sims.argmax(axis=1)) == [0, 1, 2], np.round(sims, 3)


def test_same_means_the_passage_encoder() -> None:
    use = encoder()
    assert load_sentence_encoder("same", use) is use
    assert load_sentence_encoder(USE_NAME, use) is use
    assert load_sentence_encoder(E5_NAME, use).name == E5_NAME


def test_e5_build_records_e5_sentence_vectors(tmp_path: Path) -> None:
    index, settings = build(tmp_path, sentence_model=E5_NAME)
    reader = IndexReader(index)
    assert reader.meta["encoder"] == {"name": USE_NAME, "dim": 512}
    assert reader.meta["sentence_encoder"] == {"name": E5_NAME, "dim": 384}
    assert reader.sentence_vectors.shape == (reader.counts["sentences"], 384)
    assert reader.chunk_vectors.shape[1] == reader.word_vectors.shape[1] == 512
    reader.close()
    engine = QAEngine.load(settings)
    assert engine.sentence_encoder.name == E5_NAME
    assert engine.tuning.answer == FITTED[E5_NAME]
    answer = engine.ask("Combien de lanternes les organisateurs ont-ils installées ?")
    assert answer.answered and "trois cents lanternes" in (answer.answer or "")
    answer = engine.ask("Who said the warm spring helped the bee colonies?")
    assert answer.answered and "Dr. Ellis" in (answer.answer or "")


def test_default_builds_one_encoder_index(tmp_path: Path) -> None:
    index, settings = build(tmp_path)
    assert settings.sentence_model == "same"
    reader = IndexReader(index)
    assert reader.meta["sentence_encoder"] == {"name": USE_NAME, "dim": 512}
    assert reader.sentence_vectors.shape[1] == 512
    reader.close()
    engine = QAEngine.load(settings)
    assert engine.sentence_encoder is engine.encoder
    assert engine.tuning.answer == AnswerWeights.for_sentence_encoder(USE_NAME)
    answer = engine.ask("Who said the warm spring helped the bee colonies?")
    assert answer.answered and "Dr. Ellis" in (answer.answer or "")


def test_index_without_sentence_encoder_entry_reads_as_one_encoder(tmp_path: Path) -> None:
    """Builds written before the entry existed had their sentence vectors by `encoder`."""
    index, settings = build(tmp_path, sentence_model="same")
    meta_path = index / "current" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["sentence_encoder"]
    meta_path.write_text(json.dumps(meta))
    engine = QAEngine.load(settings)
    assert engine.sentence_encoder is engine.encoder
    assert engine.ask("Combien de lanternes les organisateurs ont-ils installées ?").answered


def test_add_follows_the_index_not_the_settings(tmp_path: Path) -> None:
    index, _ = build(tmp_path, sentence_model="same")
    extra = tmp_path / "glacier.txt"
    extra.write_text(GLACIER_ARTICLE, encoding="utf-8")
    # the caller's settings name E5, the index was built with USE sentences
    settings = Settings(index_dir=str(index), sentence_model=E5_NAME)
    report = indexing.add([extra], index, encoder(), settings)
    assert report.added and not report.errors
    reader = IndexReader(index)
    assert reader.meta["sentence_encoder"] == {"name": USE_NAME, "dim": 512}
    assert reader.sentence_vectors.shape == (reader.counts["sentences"], 512)
    reader.close()


def test_add_encodes_new_sentences_with_e5(tmp_path: Path, e5) -> None:  # type: ignore[no-untyped-def]
    index, _ = build(tmp_path, sentence_model=E5_NAME)
    extra = tmp_path / "glacier.txt"
    extra.write_text(GLACIER_ARTICLE, encoding="utf-8")
    indexing.add([extra], index, encoder(), Settings(index_dir=str(index)))
    reader = IndexReader(index)
    glacier = next(a for a in reader.list_articles() if "Trient" in a["title"])
    stored = reader.article_sentences(glacier["id"])
    article = reader.article(glacier["id"])
    assert article is not None
    texts = [indexing.embedding_text(article, article.text[s.start : s.end]) for s in stored]
    rows = [s.row for s in stored]
    assert np.allclose(reader.sentence_vectors[rows], e5.encode(texts), atol=1e-5)
    reader.close()


def test_engine_refuses_a_sentence_encoder_unlike_the_index(tmp_path: Path) -> None:
    index, settings = build(tmp_path, sentence_model=E5_NAME)
    with pytest.raises(EncoderMismatch, match="sentence vectors made by"):
        QAEngine(index, encoder(), settings, sentence_encoder=encoder())
