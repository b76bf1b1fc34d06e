"""Names across languages: an English question finds a name in a French
article although the English and French stemmers cut it differently."""

from __future__ import annotations

from pathlib import Path

from helpers import DATA, encoder

from qa import evaluation as ev
from qa import indexing
from qa.lexical import name_stems
from qa.pipeline import QAEngine
from qa.settings import Settings


def test_names_have_a_term_in_each_language() -> None:
    stems = name_stems("Who is Aurélie Trouvé?")
    assert stems == {
        "Aurélie": {"fr": "aurel", "en": "aureli"},
        "Trouvé": {"fr": "trouv", "en": "trouve"},
    }
    # the first word is capitalised as every question's is; stop words are no names
    assert name_stems("Quand Paris a-t-il Le droit ?") == {"Paris": {"fr": "paris", "en": "pari"}}


def test_english_question_finds_a_name_in_a_french_article(tmp_path: Path) -> None:
    # Among the ten dev pages, where a match report has "trouvé" too.
    settings = Settings(rescore_model="none")
    articles = ev.seed_articles(DATA) + ev.page_articles(DATA)
    indexing.build_from_articles(articles, tmp_path / "index", encoder(), settings)
    engine = QAEngine(tmp_path / "index", encoder(), settings)
    answer = engine.ask("Who is Aurélie Trouvé?")
    assert answer.answered
    assert answer.answer is not None and answer.answer.startswith("Aurélie Trouvé, porte-parole")
