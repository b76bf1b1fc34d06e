"""The dev-set evaluation (qa/evaluation.py): the seed's questions asked among
the ten dev web pages, as scripts/evaluate.py reports them ("seed+pages")."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DATA

from qa import evaluation as ev
from qa.embed import load_encoder
from qa.pipeline import QAEngine
from qa.settings import Settings


def test_page_articles_are_the_ten_dev_pages() -> None:
    pages = ev.page_articles(DATA)
    assert len(pages) == 10
    assert len({a.id for a in pages}) == 10
    assert all(a.title and len(a.text) > 300 for a in pages)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> QAEngine:
    settings = Settings()
    return ev.build_engine(
        ev.seed_articles(DATA) + ev.page_articles(DATA),
        Path(tmp_path_factory.mktemp("crowd")),
        load_encoder(settings.model, settings.encoder_threads()),
        settings,
    )


@pytest.fixture(scope="module")
def crowd(engine: QAEngine) -> ev.Report:
    _, questions = ev.load_seed(DATA)
    return ev.run(engine, questions, "seed+pages")


def test_seed_questions_find_the_seed_among_other_articles(crowd: ev.Report) -> None:
    answerable = crowd.subset()
    assert len(answerable) == 14
    wrong = [o.question.text for o in answerable if not o.right_at(1)]
    assert not wrong
    assert all(o.answered for o in answerable)


def test_english_questions_beat_bm25_among_other_articles(
    engine: QAEngine, crowd: ev.Report
) -> None:
    # BM25 cannot match English words to a French article: the dense side must lead.
    _, questions = ev.load_seed(DATA)
    bm25 = ev.bm25_baseline(engine.reader, questions, "seed+pages BM25")
    assert ev.rate(crowd.subset("en"), 1) == 1.0
    assert ev.rate(bm25.subset("en"), 1) < 0.5


def test_a_second_pass_from_question_memory_answers_as_the_first(
    engine: QAEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scripts/evaluate.py asks PIAF's questions again with their paragraphs
    # left out, from the vectors its first pass made, on two threads: same figures.
    _, questions = ev.load_seed(DATA)
    assert engine.reader.rescore_tokens is not None
    asker = ev.QuestionMemory(engine.encoder)
    second = ev.QuestionMemory(engine.rescorer) if engine.rescorer else None
    remembering = QAEngine(engine.index_dir, asker, engine.settings, rescorer=second)

    def seen(report: ev.Report) -> list[tuple[object, ...]]:
        return [(o.ranked, o.answered, o.confidence, o.short, o.rescored) for o in report.outcomes]

    first = ev.run(remembering, questions, "first")
    with ev.replaying(asker, second):
        if second is not None:  # the second encoder's token states are kept too

            def encode_again(text: str) -> None:
                raise AssertionError(f"encoded again: {text!r}")

            monkeypatch.setattr(second.encoder, "encode_query_tokens", encode_again)
        again = ev.run(remembering, questions, "again", threads=2)  # as evaluate.py does
        assert asker.replay
    assert not asker.replay
    assert seen(again) == seen(first)
    assert any(o.rescored for o in again.outcomes)
    kept = asker.encode_queries([questions[0].text])
    with ev.replaying(asker):
        assert (asker.encode_queries([questions[0].text]) == kept).all()
