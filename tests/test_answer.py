"""Extractive answers on the seed: the cited sentence, its citation, the short
answer, abstention and the question's language, through the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, FRENCH_ARTICLE, encoder

from qa import indexing
from qa.errors import BadQuestion
from qa.lexical import content_words, terms
from qa.pipeline import QAEngine
from qa.qtype import (
    AGE,
    AREA,
    DATE,
    DURATION,
    LENGTH,
    MONEY,
    NUMBER,
    PERSON,
    PLACE,
    SHARE,
    TIME,
    counted_words,
    question_measure,
    question_names,
    question_type,
)
from qa.records import Article
from qa.retrieve import Query
from qa.scorer import ScoredSentence
from qa.settings import Settings
from qa.short import _soft_anchor_positions, short_answer
from qa.spans import answer_spans, measured_spans, typed_spans
from qa.store import SentenceRow

SEED_QA = json.loads((DATA / "seed-qa-dev.json").read_text())["questions"]
ANSWERABLE = [q for q in SEED_QA if q["gold"]]
UNANSWERABLE = [q for q in SEED_QA if not q["gold"]]


def _article_text(engine: QAEngine, article_id: str) -> str:
    article = engine.reader.article(article_id)
    assert article is not None
    return article.text


@pytest.mark.parametrize("q", ANSWERABLE, ids=[q["q"] for q in ANSWERABLE])
def test_answerable_seed_question_cites_the_gold_sentence(engine: QAEngine, q: dict) -> None:
    answer = engine.ask(q["q"])
    assert answer.answered
    assert answer.language == q["lang"]
    assert any(g in answer.answer for g in q["gold"]), answer.answer
    # The contract's invariants.
    assert answer.answer == answer.citations[0].sentence
    for c in answer.citations:
        assert _article_text(engine, c.article_id)[c.start : c.end] == c.sentence
    for p in answer.passages:
        assert _article_text(engine, p.article_id)[p.start : p.end] == p.text
    if answer.short_answer:
        text = _article_text(engine, answer.citations[0].article_id)
        s = answer.short_answer
        assert text[s.start : s.end] == s.text
        assert answer.citations[0].start <= s.start < s.end <= answer.citations[0].end


@pytest.mark.parametrize("q", UNANSWERABLE, ids=[q["q"] for q in UNANSWERABLE])
def test_unanswerable_seed_question_abstains_in_its_language(engine: QAEngine, q: dict) -> None:
    answer = engine.ask(q["q"])
    assert not answer.answered
    assert answer.answer is None and answer.short_answer is None and answer.citations == []
    assert answer.language == q["lang"]
    expected = "Je ne trouve pas" if q["lang"] == "fr" else "I could not find"
    assert answer.message.startswith(expected)


def test_short_answers_are_typed_spans_of_the_cited_sentence(engine: QAEngine) -> None:
    hour = engine.ask("À quelle heure se retrouvent les ministres ?")
    assert hour.short_answer is not None and hour.short_answer.text == "11H00 GMT"
    count = engine.ask("Combien de pays sont représentés par leurs ministres de la Défense ?")
    assert count.short_answer is not None and count.short_answer.text == "sept pays"
    who = engine.ask("Qui doit discuter de la Syrie lors d'une rencontre en Suisse ?")
    assert who.short_answer is not None and who.short_answer.text == "John Kerry et Sergueï Lavrov"
    # An open question has no sure short answer.
    assert engine.ask("De quoi Daech profite-t-il en Libye ?").short_answer is None


def test_question_words_are_found_across_languages_by_meaning(engine: QAEngine) -> None:
    ranking = engine.rank("Who is the American secretary of defense?", 5, frozenset())
    best = ranking.scored[0]
    at = _soft_anchor_positions(engine.reader, best.text, "fr", ranking.query)
    found = {best.text[a:].split()[0].lower() for a in at}
    assert {"secrétaire", "américain"} <= found
    # ...so an English question gets the short answer next to them.
    count = engine.ask("How many countries send their defence ministers?")
    assert count.short_answer is not None and count.short_answer.text == "sept pays"


@pytest.mark.parametrize(
    "question",
    [
        "Combien de journalistes couvrent la réunion des ministres de la Défense des pays "
        "engagés dans la campagne aérienne ?",
        "How many journalists cover the meeting of the defence ministers of the countries in "
        "the air campaign?",
        "Combien d'habitants comptent les sept pays les plus engagés dans la campagne aérienne ?",
    ],
)
def test_how_many_x_is_not_answered_by_a_count_of_something_else(
    engine: QAEngine, question: str
) -> None:
    # The sentence of "sept pays" scores over the threshold for these, and
    # holds a number, but counts countries: no journalists, no inhabitants.
    ranking = engine.rank(question, 5, frozenset())
    assert ranking.scored[0].score >= engine.settings.abstain_threshold
    assert "sept pays" in ranking.scored[0].text
    assert not engine.answers(ranking)
    assert not engine.ask(question).answered


@pytest.mark.parametrize(
    ("question", "counted"),
    [
        ("Combien de pays sont représentés ?", ("pays", "sont")),
        ("How many Covid-19 cases were recorded?", ("covid-19", "cases")),
        ("How many of the tickets?", ("of", "the")),
        ("Quand a-t-il parlé ?", ()),
    ],
)
def test_counted_words(question: str, counted: tuple[str, ...]) -> None:
    # (The engine keeps those that are content words: "sont", "of" drop out.)
    assert counted_words(question) == counted


@pytest.mark.parametrize(
    ("sentence", "times"),
    [
        ("Il doit se rendre ce vendredi à 16 heures au Château de Lány.", ["16 heures"]),
        ("La séance reprend à 14 heures 30, puis à midi le lendemain.", ["14 heures 30", "à midi"]),
        ("The talks start at 4 o'clock.", ["4 o'clock"]),
        ("Il a 12 ans et 3 frères.", []),
    ],
)
def test_time_spans_read_hours_in_words(sentence: str, times: list[str]) -> None:
    assert [s.text for s in typed_spans(sentence, TIME)] == times


def test_a_duration_stays_a_number_but_the_parts_of_a_time_do_not() -> None:
    assert [s.text for s in answer_spans("Le vol dure 16 heures.", NUMBER, set())] == ["16 heures"]
    assert [s.text for s in answer_spans("Ils se voient à 11H00 GMT, à sept.", NUMBER, set())] == [
        "sept"
    ]


def test_english_question_on_french_article_answers_in_english(engine: QAEngine) -> None:
    answer = engine.ask("What did Australia decide about its military aid?")
    assert answer.language == "en" and answer.message.startswith("According to")
    assert "L'Australie en revanche" in (answer.answer or "")


def test_citations_are_best_first_and_top_k_bounds_passages(engine: QAEngine) -> None:
    answer = engine.ask("Que reconnaissent les Occidentaux comme nécessaire ?", top_k=2)
    scores = [c.score for c in answer.citations]
    assert scores == sorted(scores, reverse=True)
    assert 1 <= len(answer.passages) <= 2
    assert answer.took_ms > 0


@pytest.mark.parametrize("bad", [None, 3, "", "   ", "x" * 2001, "\ud800 lone surrogate"])
def test_bad_questions_are_refused_by_name(engine: QAEngine, bad: object) -> None:
    with pytest.raises(BadQuestion):
        engine.ask(bad)


@pytest.mark.parametrize("top_k", [0, -1, 51, 2.5, "3", True])
def test_bad_top_k_is_refused(engine: QAEngine, top_k: object) -> None:
    with pytest.raises(BadQuestion):
        engine.ask("Où se retrouvent les ministres ?", top_k)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("À quelle heure commence la réunion ?", TIME),
        ("Quand la campagne a-t-elle été lancée ?", DATE),
        ("When was the campaign launched?", DATE),
        ("Combien de pays ?", NUMBER),
        ("How many countries?", NUMBER),
        ("Qui préside la réunion ?", PERSON),
        ("Avec qui a-t-il parlé ?", PERSON),
        ("Qui est le président de la coalition ?", PERSON),
        ("Qui était Premier ministre du Pakistan avant Raja Pervez Ashraf ?", PERSON),
        ("Who is the American secretary of defense?", PERSON),
        # Only a name after "who is": a description is asked for, not a person.
        ("Qui est Maria Kirilenko ?", None),
        ("qui est Didier Raoult?", None),
        ("Who was Ashton Carter?", None),
        ("Qui était Knut IV ?", None),
        ("Où se retrouvent les ministres ?", PLACE),
        ("Qu'est-ce qui a changé ?", None),
        ("De quoi la campagne a-t-elle souffert ?", None),
        # the first question word decides: a count, asked about a time
        ("How many cases had been recorded when he was called back?", NUMBER),
        ("Quel âge avait-il quand il est mort ?", NUMBER),
        # an amount of money, asked with "quel est"; a prize is no price
        ("Quel est le montant de l'amende ?", NUMBER),
        ("What was the cost of the project?", NUMBER),
        ("Quel est le prix Goncourt de cette année ?", None),
    ],
)
def test_question_types(question: str, kind: str | None) -> None:
    assert question_type(question) == kind


@pytest.mark.parametrize(
    ("sentence", "dates"),
    [
        # decades, and what bounds a year or a century, are part of the date
        (
            "Dans les années 1820, tout change ; in the 1960s too.",
            ["Dans les années 1820", "in the 1960s"],
        ),
        ("Imposée jusqu'en 1985, levée à partir de 1990.", ["jusqu'en 1985", "à partir de 1990"]),
        (
            "Au début du XVIIe siècle naît le projet du XXe siècle.",
            ["Au début du XVIIe siècle", "XXe siècle"],
        ),
    ],
)
def test_date_spans(sentence: str, dates: list[str]) -> None:
    found = typed_spans(sentence, DATE)
    assert [s.text for s in found] == dates
    # ...and their numbers are no counts
    assert answer_spans(sentence, NUMBER, set()) == []


def test_typed_spans_find_dates_numbers_and_names() -> None:
    sentence = "Lancée à l'été 2014, la campagne réunit sept pays à 11H00 GMT avec John Kerry."
    assert [s.text for s in typed_spans(sentence, DATE)] == ["l'été 2014"]
    assert "sept" in [s.text for s in typed_spans(sentence, NUMBER)]
    assert [s.text for s in typed_spans(sentence, TIME)] == ["11H00 GMT"]
    assert [s.text for s in typed_spans(sentence, PERSON)] == ["John Kerry"]


@pytest.mark.parametrize(
    ("sentence", "names"),
    [
        ("répète le secrétaire américain à la Défense Ashton Carter.", ["Ashton Carter"]),
        ("selon le ministre de l'Intérieur Gérald Darmanin, hier.", ["Gérald Darmanin"]),
        ("the head of the Pentagon Ashton Carter said.", ["Ashton Carter"]),
        # no article before: the whole name stays
        ("Jean-Yves Le Drian reçoit Ashton Carter.", ["Jean-Yves Le Drian", "Ashton Carter"]),
        ("à la Maison Blanche, mardi.", ["Maison Blanche"]),
        # a capitalised conjunction opening the sentence is no name
        ("Si Mme de Montespan accepte, le roi viendra.", ["Mme de Montespan"]),
    ],
)
def test_person_spans_skip_a_thing_named_after_an_article(sentence: str, names: list[str]) -> None:
    found = typed_spans(sentence, PERSON)
    assert [s.text for s in found] == names
    assert all(sentence[s.start : s.end] == s.text for s in found)


@pytest.mark.parametrize(
    ("sentence", "numbers"),
    [
        ("Ainsi, huit véhicules sur dix étaient mal garés.", ["huit véhicules sur dix"]),
        ("Nine out of ten readers agree.", ["Nine out of ten"]),
        ("Il a marqué 3 buts sur 12 tirs.", ["3 buts sur 12"]),
        # a year is no numerator, and "m" of "matchs" is no metre
        ("Elle a gagné en 2013 sur 52 matchs joués.", ["2013", "52"]),
        ("Il court 10 km par jour et saute 3 m.", ["10 km", "3 m"]),
        # numbers apart stay apart
        ("Sept pays et 4 500 enseignants, dont dix sur le campus.", ["Sept", "4 500", "dix"]),
        # "un", "une" are articles here, not counts
        ("PSL est une université de 17 000 étudiants.", ["17 000"]),
        ("Il a un fils et deux filles.", ["deux"]),
        ("Une dizaine d'incubateurs et un million d'euros.", ["Une dizaine", "un million"]),
        # numbers in several words, whole
        (
            "Quatre millions ont fui, dont quarante-quatre enfants.",
            ["Quatre millions", "quarante-quatre"],
        ),
        ("Vingt et un voûtes pour deux cent mille bouteilles.", ["Vingt et un", "deux cent mille"]),
        # numbers counting in bulk, whole
        ("Des dizaines de milliers de gens, des deux côtés.", ["Des dizaines de milliers", "deux"]),
        (
            "Several thousands came, and plusieurs millions.",
            ["Several thousands", "plusieurs millions"],
        ),
        # a capitalised number word inside a sentence belongs to a name
        ("La guerre de Cent Ans dura 116 ans.", ["116 ans"]),
    ],
)
def test_number_spans(sentence: str, numbers: list[str]) -> None:
    found = typed_spans(sentence, NUMBER)
    assert [s.text for s in found] == numbers
    assert all(sentence[s.start : s.end] == s.text for s in found)


@pytest.mark.parametrize(
    ("question", "measure"),
    [
        ("Combien coûte une trottinette ?", MONEY),
        ("How much does the ticket cost?", MONEY),
        ("Combien de temps a duré la guerre ?", DURATION),
        ("How long did the war last?", DURATION),
        ("Quel pourcentage des élèves a réussi ?", SHARE),
        ("À quel âge est-elle devenue veuve ?", AGE),
        ("Sur quelle distance s'étend le jet ?", LENGTH),
        ("Quelle superficie couvre le parc ?", AREA),
        ("Quel est le montant de l'amende ?", MONEY),
        ("Combien de pays ?", None),
        # only number-asking questions have a measure: this "prix" is a prize
        ("Qui a reçu le prix Nobel ?", None),
    ],
)
def test_question_measures(question: str, measure: str | None) -> None:
    assert question_measure(question) == measure


@pytest.mark.parametrize(
    ("sentence", "measure", "numbers"),
    [
        # the unit after the number is part of it; other numbers are not answers
        (
            "Dont 61 % en trottinettes, pour 1,5 million d'euros et $30 de plus.",
            MONEY,
            ["1,5 million d'euros", "$30"],
        ),
        ("La guerre dura quatre ans et fit 300 morts en 1918.", DURATION, ["quatre ans"]),
        (
            "Huit véhicules sur dix, soit 80 % du total, et 12 vélos.",
            SHARE,
            ["Huit véhicules sur dix", "80 %"],
        ),
        ("Le jet s'étend sur au moins 5 000 années-lumière.", LENGTH, ["5 000 années-lumière"]),
        ("Veuve à 19 ans, elle eut 3 enfants.", AGE, ["19 ans"]),
    ],
)
def test_measured_spans(sentence: str, measure: str, numbers: list[str]) -> None:
    found = measured_spans(sentence, typed_spans(sentence, NUMBER), measure)
    assert [s.text for s in found] == numbers
    assert all(sentence[s.start : s.end] == s.text for s in found)


def _short(question: str, sentence: str) -> str | None:
    """The short answer of `sentence`, cited for `question` (French)."""
    article = Article("a", "Titre", sentence, "fr")
    best = ScoredSentence(SentenceRow(0, "a", 0, 0, len(sentence), False), article, 1.0, ())
    query = Query(
        question,
        "fr",
        np.zeros(1, dtype=np.float32),
        tuple(terms(question, "fr")),
        {},
        kind=question_type(question),
        measure=question_measure(question),
        counted=tuple(w for w in counted_words(question) if w in content_words(question, "fr")),
        named=tuple(frozenset(n) for n in question_names(question)),
    )
    found = short_answer(best, query)
    return found.text if found else None


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        # clearly the span next to the question's words, with the thing counted
        (
            "Combien de pays sont représentés ?",
            "Sept pays sont représentés, tandis que dix observateurs venus d'ailleurs assistent.",
            "Sept pays",
        ),
        # the word after the number is not what is counted: the number alone
        ("Combien de matchs a-t-elle gagnés ?", "Elle a gagné 40 rencontres.", "40"),
        (
            "Combien de personnes travaillaient à la Ferme ?",
            "La Ferme employait des dizaines de milliers de personnes en 1780.",
            "des dizaines de milliers de personnes",
        ),
        # someone the question names is not who it asks about...
        ("Pour qui travaille Holly ?", "Holly Goodhead travaille pour la CIA.", None),
        # ...but a relative sharing a surname may be
        (
            "Qui est la fille de Yuri Kirilenko ?",
            "Sa fille Maria Kirilenko est née à Moscou.",
            "Maria Kirilenko",
        ),
        # a year is no count
        (
            "Combien de trottinettes y aura-t-il ?",
            "En 2020, il n'y aura pas de trottinettes.",
            None,
        ),
        # two dates about as near the question's words: no guess
        ("Quand le roi régna-t-il ?", "Le roi régna de 1180 à 1223.", None),
        # the only date, but far from what the question asks about
        (
            "Quand le traité fut-il signé ?",
            "Le traité fut signé par les deux rois, après de longues négociations menées "
            "par des émissaires venus de toute l'Europe et reçus au château, en 1748.",
            None,
        ),
        (
            "Quand le traité fut-il signé ?",
            "Le traité fut signé en 1748 par les deux rois.",
            "en 1748",
        ),
        # a price question is not answered by a share, whatever its distance
        (
            "Combien coûte une trottinette électrique ?",
            "Elles ont fait 365 000 déplacements, dont 61 % en trottinettes électriques.",
            None,
        ),
        (
            "Combien coûte une trottinette électrique ?",
            "Une trottinette électrique coûte 400 euros, et 61 % des usagers en louent.",
            "400 euros",
        ),
    ],
)
def test_short_answer_only_when_tied_to_the_question(
    question: str, sentence: str, expected: str | None
) -> None:
    assert _short(question, sentence) == expected


def test_ask_script_json_lines_answers_each_line(index_dir: Path) -> None:
    import subprocess
    import sys

    from helpers import SCRIPTS

    questions = "Où se retrouvent les ministres ?\nQuelle est la population de Lyon ?\n"
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "ask.py"), "--index", str(index_dir), "--json-lines"],
        input=questions,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    answers = [json.loads(line) for line in out]
    assert [a["answered"] for a in answers] == [True, False]


@pytest.mark.parametrize(
    ("question", "sure", "unsure"),
    [
        ("What did Australia decide about its military aid?", "According to", "Not sure, but"),
        ("De quoi Daech profite-t-il en Libye ?", "D'après", "Réponse incertaine, d'après"),
    ],
)
def test_answers_under_the_sure_threshold_say_they_are_unsure(
    index_dir: Path, question: str, sure: str, unsure: str
) -> None:
    score = QAEngine.load(Settings(index_dir=str(index_dir))).ask(question).citations[0].score
    under = QAEngine.load(Settings(index_dir=str(index_dir), sure_threshold=score + 0.01))
    over = QAEngine.load(Settings(index_dir=str(index_dir), sure_threshold=score - 0.01))
    hedged, plain = under.ask(question), over.ask(question)
    assert hedged.message.startswith(unsure) and plain.message.startswith(sure)
    # The hedge changes the words only: the same sentence is cited either way.
    assert hedged.answered and hedged.answer == plain.answer


def test_a_rebuild_that_rewrites_an_article_answers_from_its_new_text(tmp_path: Path) -> None:
    # A reader keeps the articles it has read (qa/store/database.py): the next
    # build's reader must not answer from the text of the one before, though
    # the article keeps its id (given by its record).
    folder, index = tmp_path / "corpus", tmp_path / "index"
    folder.mkdir()
    title, body = FRENCH_ARTICLE.split("\n", 1)

    def write(text: str) -> None:
        record = {"id": "lanternes", "title": title, "text": text, "lang": "fr"}
        (folder / "lanternes.json").write_text(json.dumps(record), encoding="utf-8")

    write(body)
    settings = Settings(index_dir=str(index), rescore_model="none")
    indexing.build(folder, index, encoder(), settings)
    engine = QAEngine(index, encoder(), settings)
    question = "Combien de lanternes les organisateurs ont-ils installées ?"
    assert "trois cents lanternes" in str(engine.ask(question).answer)
    write(body.replace("trois cents", "huit cents"))
    indexing.build(folder, index, encoder(), settings)
    assert engine.reload_if_changed()
    answer = engine.ask(question)
    assert answer.citations[0].article_id == "lanternes"
    assert str(answer.answer).startswith("Les organisateurs ont installé huit cents lanternes")


def test_a_question_runs_on_the_query_threads(engine: QAEngine) -> None:
    # numpy's BLAS would split a question's small products over every core
    # (and spin against the second encoder): a question gets `query_threads`.
    from threadpoolctl import threadpool_info

    seen: list[set[int]] = []

    class Watching:
        name, dim = engine.encoder.name, engine.encoder.dim

        def encode(self, texts: list[str]) -> np.ndarray:
            return engine.encoder.encode(texts)

        def encode_queries(self, texts: list[str]) -> np.ndarray:
            seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
            return engine.encoder.encode_queries(texts)

    settings = Settings(index_dir=str(engine.index_dir), query_threads=1)
    watched = QAEngine(engine.index_dir, Watching(), settings)
    assert watched.ask("Où se retrouvent les ministres ?").answered
    assert seen == [{1}]
