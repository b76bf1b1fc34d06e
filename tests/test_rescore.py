"""The second sentence encoder (qa.settings `rescore_model`): multilingual-e5-small
reads the questions the first pass (on USE) is unsure of: its nearest
sentences widen the candidates and its cosine is a feature of each. The
index records that encoder and keeps its sentence vectors; every later use
follows the index."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import ENGLISH_ARTICLE, FRENCH_ARTICLE, GLACIER_ARTICLE, encoder, titled

from qa import indexing
from qa.embed import E5_NAME, USE_NAME, Encoder, load_encoder, load_rescorer
from qa.encoders.e5 import E5Encoder
from qa.errors import EncoderMismatch, IndexMismatch
from qa.features import FEATURES
from qa.pipeline import QAEngine, Tuning
from qa.scorer import AnswerWeights
from qa.settings import Settings
from qa.store import RESCORE_NPY, IndexReader
from qa.token_match import TOKENS_KEPT

PARAPHRASES = [
    ("Le chat dort sur le canapé.", "The cat is sleeping on the sofa."),
    ("Les ministres se réunissent mercredi à Paris.", "The ministers meet in Paris on Wednesday."),
    ("La banque centrale a relevé ses taux.", "The central bank raised its interest rates."),
]
LANTERNS = "Combien de lanternes les organisateurs ont-ils installées ?"
BEES = "Who said the warm spring helped the bee colonies?"


@pytest.fixture(scope="module")
def e5() -> Encoder:
    return load_encoder(E5_NAME)


class Counting:
    """The encoder, counting the questions it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.questions = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.questions += len(texts)
        return self.inner.encode_queries(texts)


def build(root: Path, **settings: object) -> tuple[Path, Settings]:
    folder = root / "corpus"
    folder.mkdir()
    (folder / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    (folder / "bees.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    index = root / "index"
    config = Settings(index_dir=str(index), **settings)  # type: ignore[arg-type]
    report = indexing.build(folder, index, encoder(), config)
    assert report.errors == []
    return index, config


def test_e5_unit_rows_queries_differ_from_passages(e5: Encoder) -> None:
    assert (e5.name, e5.dim) == (E5_NAME, 384)
    text = "Les ministres de la Défense se retrouvent à 11H00."
    passages, queries = e5.encode([text, "x" * 3000, ""]), e5.encode_queries([text])
    assert passages.shape == (3, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    # E5 marks queries and passages apart: the same text gives two vectors
    assert 0.5 < float(passages[0] @ queries[0]) < 0.999
    assert e5.encode([]).shape == e5.encode_queries([]).shape == (0, 384)


def test_e5_french_question_finds_english_sentence_and_back(e5: Encoder) -> None:
    fr, en = [p[0] for p in PARAPHRASES], [p[1] for p in PARAPHRASES]
    for questions, passages in ((fr, en), (en, fr)):
        sims = e5.encode_queries(questions) @ e5.encode(passages).T
        assert list(sims.argmax(axis=1)) == [0, 1, 2], np.round(sims, 3)


def test_none_means_no_second_encoder() -> None:
    assert load_rescorer("none") is None and load_rescorer("") is None
    second = load_rescorer(E5_NAME)
    assert second is not None and second.name == E5_NAME


def test_default_build_keeps_e5_sentence_vectors(tmp_path: Path, e5: Encoder) -> None:
    index, settings = build(tmp_path)
    assert settings.rescore_model == E5_NAME
    reader = IndexReader(index)
    assert reader.meta["encoder"] == {"name": USE_NAME, "dim": 512}
    assert reader.meta["rescorer"] == {"name": E5_NAME, "dim": 384, "tokens": TOKENS_KEPT}
    n = reader.counts["sentences"]
    assert reader.sentence_vectors.shape == (n, 512)
    assert reader.rescore_vectors is not None and reader.rescore_vectors.shape == (n, 384)
    assert reader.meta["files"][RESCORE_NPY] > 0
    # row i of both files is sentence i, under its title
    row = reader.article_sentences(reader.article_ids()[0])[1]
    article = reader.article(row.article_id)
    assert article is not None
    text = titled(article, article.text[row.start : row.end])
    assert np.allclose(reader.rescore_vectors[row.row], e5.encode([text])[0], atol=1e-5)
    # (stored as float16: equal within its precision)
    stored = np.asarray(reader.sentence_vectors[row.row], dtype=np.float32)
    assert np.allclose(stored, encoder().encode([text])[0], atol=float(np.finfo(np.float16).eps))
    reader.close()
    engine = QAEngine.load(settings)
    assert engine.rescorer is not None and engine.rescorer.name == E5_NAME
    assert engine.tuning.rescoring == AnswerWeights.trained(second_encoder=True)
    answer = engine.ask(LANTERNS)
    assert answer.answered and "trois cents lanternes" in (answer.answer or "")
    answer = engine.ask(BEES)
    assert answer.answered and "Dr. Ellis" in (answer.answer or "")


@pytest.mark.parametrize("unsure", [True, False])
def test_second_encoder_reads_the_questions_the_first_pass_is_unsure_of(
    tmp_path: Path, e5: Encoder, unsure: bool
) -> None:
    index, settings = build(tmp_path)
    rescore = FEATURES.index("rescore")
    trained = Tuning(
        AnswerWeights.trained(second_encoder=False),
        rescoring=AnswerWeights.trained(second_encoder=True),
    )
    # Thresholds that make every first pass unsure, or none.
    limit = float("inf") if unsure else float("-inf")
    first = replace(trained.answer, unsure_below=limit, close_below=limit)
    counting = Counting(e5)
    engine = QAEngine(index, encoder(), settings, replace(trained, answer=first), rescorer=counting)
    ranking = engine.rank(LANTERNS, 5)
    assert ranking.rescored is unsure and counting.questions == int(unsure)
    cosines = [s.features[rescore] for s in ranking.scored]
    assert all(c != 0 for c in cosines) if unsure else all(c == 0 for c in cosines)
    if unsure:
        # the passages of its nearest sentences are read, whatever their rank
        near = engine.reader.rescore_sentences(e5.encode_queries([LANTERNS])[0], 3)
        held = set(engine.reader.chunks_holding([r for r, _ in near]))
        assert held <= {c.chunk.row for c in ranking.chunks}
    answer = engine.ask(LANTERNS)
    assert answer.answered and "trois cents lanternes" in (answer.answer or "")
    assert answer.citations[0].score >= 0  # both passes: 0 is where they abstain


def test_nearest_sentences_by_the_second_encoder(tmp_path: Path, e5: Encoder) -> None:
    index, _ = build(tmp_path)
    reader = IndexReader(index)
    assert reader.rescore_vectors is not None
    question = e5.encode_queries([LANTERNS])[0]
    near = reader.rescore_sentences(question, 4)
    cosines = np.asarray(reader.rescore_vectors, dtype=np.float32) @ question
    assert [r for r, _ in near] == list(np.argsort(-cosines)[:4])
    assert np.allclose([c for _, c in near], np.sort(cosines)[::-1][:4], atol=1e-6)
    sentence = reader.sentences([near[0][0]])[near[0][0]]
    for row in reader.chunks_holding([sentence.row]):
        chunk = reader.chunks([row])[row]
        assert chunk.article_id == sentence.article_id
        assert chunk.first_sentence <= sentence.idx <= chunk.last_sentence
    reader.close()


def test_build_without_second_encoder(tmp_path: Path) -> None:
    index, settings = build(tmp_path, rescore_model="none")
    reader = IndexReader(index)
    assert reader.meta["rescorer"] is None and reader.rescore_vectors is None
    assert not (reader.path / RESCORE_NPY).exists()
    reader.close()
    engine = QAEngine.load(settings)
    assert engine.rescorer is None and engine.tuning.rescoring is None
    ranking = engine.rank(BEES, 5)
    assert not ranking.rescored
    answer = engine.ask(BEES)
    assert answer.answered and "Dr. Ellis" in (answer.answer or "")


def test_earlier_layout_with_e5_sentence_vectors_asks_for_a_rebuild(tmp_path: Path) -> None:
    """Last layout's opt-in E5 builds kept E5 vectors in place of USE's."""
    index, settings = build(tmp_path, rescore_model="none")
    meta_path = index / "current" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["sentence_encoder"] = {"name": E5_NAME, "dim": 384}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexMismatch, match="Rebuild the index"):
        QAEngine.load(settings)


def test_missing_second_vectors_ask_for_a_rebuild(tmp_path: Path) -> None:
    index, settings = build(tmp_path)
    (index / "current" / RESCORE_NPY).unlink()
    with pytest.raises(IndexMismatch):
        QAEngine.load(settings)


def test_add_follows_the_index_not_the_settings(tmp_path: Path) -> None:
    index, _ = build(tmp_path, rescore_model="none")
    extra = tmp_path / "glacier.txt"
    extra.write_text(GLACIER_ARTICLE, encoding="utf-8")
    # the caller's settings name E5, the index was built without it
    settings = Settings(index_dir=str(index), rescore_model=E5_NAME)
    report = indexing.add([extra], index, encoder(), settings)
    assert report.added and not report.errors
    reader = IndexReader(index)
    assert reader.meta["rescorer"] is None and reader.rescore_vectors is None
    reader.close()


def test_add_and_remove_keep_e5_vectors_in_step(tmp_path: Path, e5: Encoder) -> None:
    index, _ = build(tmp_path)
    extra = tmp_path / "glacier.txt"
    extra.write_text(GLACIER_ARTICLE, encoding="utf-8")
    indexing.add([extra], index, encoder(), Settings(index_dir=str(index), rescore_model="none"))
    reader = IndexReader(index)
    glacier = next(a for a in reader.list_articles() if "Trient" in a["title"])
    bees = next(a for a in reader.list_articles() if "bee" in a["title"].lower())
    reader.close()
    indexing.remove([bees["id"]], index, encoder())
    reader = IndexReader(index)
    assert reader.meta["rescorer"] == {"name": E5_NAME, "dim": 384, "tokens": TOKENS_KEPT}
    for article_id in reader.article_ids():
        article = reader.article(article_id)
        assert article is not None
        stored = reader.article_sentences(article_id)
        texts = [titled(article, article.text[s.start : s.end]) for s in stored]
        assert reader.rescore_vectors is not None
        vectors = reader.rescore_vectors[[s.row for s in stored]]
        assert np.allclose(vectors, e5.encode(texts), atol=1e-5), article_id
    assert glacier["id"] in reader.article_ids() and bees["id"] not in reader.article_ids()
    reader.close()


def test_engine_refuses_a_second_encoder_unlike_the_index(tmp_path: Path) -> None:
    index, settings = build(tmp_path)
    with pytest.raises(EncoderMismatch, match="second sentence vectors by"):
        QAEngine(index, encoder(), settings, rescorer=encoder())


def test_e5_threads_do_not_change_its_vectors(e5: Encoder) -> None:
    """A batch runs on `threads` threads and a question on the caller's: the
    vectors are the same either way."""
    two, one = E5Encoder(2), E5Encoder(1)
    assert (one.threads, two.threads) == (1, 2)
    texts = ["Quand les ministres se retrouvent-ils ?", "The ministers meet at 11:00 GMT."]
    assert np.allclose(two.encode_queries(texts), one.encode_queries(texts), atol=1e-5)
    many = [f"{t} ({n})" for n in range(40) for t in texts]  # several batches
    assert np.allclose(two.encode(many), one.encode(many), atol=1e-5)
    assert np.allclose(one.encode(texts), e5.encode(texts), atol=1e-5)


def test_server_follows_the_index_and_says_so(tmp_path: Path) -> None:
    """An index built without the second encoder (as before it existed) is
    served as built, with a warning that names the fix."""
    from test_workers import ServeProcess

    index, _ = build(tmp_path, rescore_model="none")
    with ServeProcess(tmp_path / "serve.log", "--index", index) as server:
        status, _, body = server.request("POST", "/ask", {"question": BEES})
        assert status == 200 and "Dr. Ellis" in json.loads(body)["answer"]
        log = server.log()
    assert "second sentence encoder 'none', the settings name" in log, log
    assert "rebuild the index" in log


def test_reload_follows_a_rebuild_with_another_second_encoder(tmp_path: Path) -> None:
    index, settings = build(tmp_path)
    engine = QAEngine.load(settings)
    assert engine.rescorer is not None and engine.tuning.rescoring is not None
    corpus = tmp_path / "corpus"
    without = Settings(index_dir=str(index), rescore_model="none")
    indexing.build(corpus, index, engine.encoder, without)
    assert engine.reload_if_changed()
    assert engine.rescorer is None and engine.tuning.rescoring is None
    assert engine.reader.rescorer is None
    assert not engine.rank(LANTERNS, 5, frozenset()).rescored
    assert engine.ask(LANTERNS).answered
    indexing.build(corpus, index, engine.encoder, Settings(index_dir=str(index)))
    assert engine.reload_if_changed()
    assert engine.rescorer is not None and engine.rescorer.name == E5_NAME
    assert engine.tuning.rescoring == AnswerWeights.trained(second_encoder=True)
    assert engine.ask(BEES).answered
