"""News-native answers (issue 15): relative dates resolved against the
article's publication date, the newer of two equally good articles first,
and questions restricted to a date window and to outlets, on a real index
of dated articles from several outlets."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from helpers import FRIDAY, NEWS_QUESTION, NEWS_WHEN, build_news, run_script

from qa.dates import relative_spans, resolve
from qa.errors import BadQuestion
from qa.filters import ArticleFilter
from qa.pipeline import QAEngine
from qa.qtype import DATE
from qa.spans import typed_spans
from web import create_app

RELATIVE_DATES = [
    # French
    ("mercredi", FRIDAY, "2016-01-20"),
    ("Mercredi soir", FRIDAY, "2016-01-20"),
    ("vendredi", FRIDAY, "2016-01-22"),  # a bare weekday may be the day itself
    ("vendredi dernier", FRIDAY, "2016-01-15"),
    ("lundi dernier", FRIDAY, "2016-01-18"),
    ("mardi prochain", FRIDAY, "2016-01-26"),
    ("ce dimanche", FRIDAY, "2016-01-24"),
    ("hier", FRIDAY, "2016-01-21"),
    ("aujourd'hui", FRIDAY, "2016-01-22"),
    ("aujourd’hui", FRIDAY, "2016-01-22"),
    ("avant-hier", FRIDAY, "2016-01-20"),
    ("demain", FRIDAY, "2016-01-23"),
    ("après-demain", FRIDAY, "2016-01-24"),
    ("la semaine dernière", FRIDAY, "2016-01-11/2016-01-17"),
    ("la semaine prochaine", FRIDAY, "2016-01-25/2016-01-31"),
    ("cette semaine", FRIDAY, "2016-01-18/2016-01-24"),
    ("le week-end dernier", FRIDAY, "2016-01-16/2016-01-17"),
    ("le mois dernier", FRIDAY, "2015-12-01/2015-12-31"),
    ("le mois prochain", "2016-01-31", "2016-02-01/2016-02-29"),
    ("l'an dernier", FRIDAY, "2015-01-01/2015-12-31"),
    ("l’année prochaine", FRIDAY, "2017-01-01/2017-12-31"),
    ("l'année passée", FRIDAY, "2015-01-01/2015-12-31"),
    ("il y a deux semaines", FRIDAY, "2016-01-08"),
    ("il y a 3 jours", FRIDAY, "2016-01-19"),
    ("il y a un an", FRIDAY, "2015-01-01/2015-12-31"),
    ("il y a deux mois", FRIDAY, "2015-11-01/2015-11-30"),
    ("dans trois jours", FRIDAY, "2016-01-25"),
    ("dans un mois", "2015-12-15", "2016-01-01/2016-01-31"),
    # English
    ("last Tuesday", FRIDAY, "2016-01-19"),
    ("on Tuesday", FRIDAY, "2016-01-19"),
    ("Sunday", FRIDAY, "2016-01-17"),
    ("next Monday", FRIDAY, "2016-01-25"),
    ("this Friday", FRIDAY, "2016-01-22"),
    ("yesterday", FRIDAY, "2016-01-21"),
    ("today", FRIDAY, "2016-01-22"),
    ("tomorrow", FRIDAY, "2016-01-23"),
    ("the day before yesterday", FRIDAY, "2016-01-20"),
    ("next week", FRIDAY, "2016-01-25/2016-01-31"),
    ("last week", FRIDAY, "2016-01-11/2016-01-17"),
    ("last month", "2016-03-31", "2016-02-01/2016-02-29"),
    ("this month", FRIDAY, "2016-01-01/2016-01-31"),
    ("last year", FRIDAY, "2015-01-01/2015-12-31"),
    ("next year", FRIDAY, "2017-01-01/2017-12-31"),
    ("in two weeks", FRIDAY, "2016-02-05"),
    ("two days ago", FRIDAY, "2016-01-20"),
    ("a week ago", FRIDAY, "2016-01-15"),
    ("in 3 months", FRIDAY, "2016-04-01/2016-04-30"),
    # Across a year's end, and a Monday paper's "dimanche" (the day before).
    ("la semaine dernière", "2016-01-04", "2015-12-28/2016-01-03"),
    ("dimanche", "2016-01-04", "2016-01-03"),
]


@pytest.mark.parametrize(("text", "published", "expected"), RELATIVE_DATES)
def test_relative_dates_resolve(text: str, published: str, expected: str) -> None:
    assert resolve(text, published) == expected


@pytest.mark.parametrize(
    ("text", "published"),
    [
        ("mercredi", None),  # no publication date: nothing to resolve against
        ("mercredi", "janvier 2016"),
        ("le 20 janvier 2016", FRIDAY),  # already a date
        ("mardi 12 janvier", FRIDAY),  # a weekday with its day number is a full date
        ("en 2015", FRIDAY),
        ("Paris", FRIDAY),
    ],
)
def test_what_is_not_resolved(text: str, published: str | None) -> None:
    assert resolve(text, published) is None


def test_relative_dates_are_date_answers_whole() -> None:
    sentence = "Le ministre est arrivé avant-hier et repartira mardi prochain, le 26 janvier."
    spans = [s.text for s in typed_spans(sentence, DATE)]
    assert spans == ["avant-hier", "mardi prochain", "26 janvier"]
    assert relative_spans("Il y a deux semaines, last Tuesday.") == [(0, 20), (22, 34)]


# ---------------------------------------------------------------- a real index of dated news


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> QAEngine:
    """Le Drian's article from Friday 22 January 2016, Lecornu's from Friday 15 March 2024."""
    return build_news(tmp_path_factory.mktemp("news"), FRIDAY, "2024-03-15")


@pytest.fixture(scope="module")
def swapped(tmp_path_factory: pytest.TempPathFactory) -> QAEngine:
    """The same articles with their dates swapped."""
    return build_news(tmp_path_factory.mktemp("swapped"), "2024-03-15", FRIDAY)


def cited(answer: object) -> list[str]:
    return [c.article_id for c in answer.citations]  # type: ignore[attr-defined]


def test_the_outlet_and_date_reach_the_citations(news: QAEngine) -> None:
    answer = news.ask(NEWS_QUESTION)
    assert answer.answered
    by_id = {c.article_id: c for c in answer.citations}
    assert (by_id["drian"].date, by_id["drian"].source) == (FRIDAY, "Le Monde")
    assert (by_id["lecornu"].date, by_id["lecornu"].source) == ("2024-03-15", "Libération")


def test_the_newer_of_two_equal_answers_comes_first(news: QAEngine, swapped: QAEngine) -> None:
    # The two sentences differ by a name only: whichever scores a hair higher,
    # the newer article answers, in both indexes.
    first, second = news.ask(NEWS_QUESTION), swapped.ask(NEWS_QUESTION)
    assert cited(first)[:2] == ["lecornu", "drian"]
    assert cited(second)[:2] == ["drian", "lecornu"]
    assert "Lecornu" in (first.answer or "") and "Le Drian" in (second.answer or "")
    # A tie, not a win: within TIE_SHARE of either answer model's scale.
    lecornu, drian = first.citations[:2]
    assert abs(lecornu.score - drian.score) < 0.05 * 6.45


def test_a_clearly_better_older_answer_stays_first(news: QAEngine) -> None:
    answer = news.ask("Qui a remercié les bénévoles devant l'hôtel de ville ?")
    assert cited(answer)[0] == "lanterns"  # undated, but the only one that answers


def test_a_relative_date_is_resolved_in_the_short_answer(news: QAEngine) -> None:
    old = news.ask(NEWS_WHEN, only=ArticleFilter(until="2020-12-31"))
    assert cited(old)[0] == "drian"
    assert old.short_answer is not None and old.short_answer.text == "mercredi"
    assert old.short_answer.resolved == "2016-01-20"
    new = news.ask(NEWS_WHEN, only=ArticleFilter(since="2024-01-01"))
    assert cited(new)[0] == "lecornu"
    assert new.short_answer is not None and new.short_answer.resolved == "2024-03-13"


@pytest.mark.parametrize(
    ("only", "first", "allowed"),
    [
        (ArticleFilter(until="2020-12-31"), "drian", {"drian", "honey"}),
        (ArticleFilter(since="2016-01-22", until="2016-01-22"), "drian", {"drian"}),
        (ArticleFilter(since="2017-01-01"), "lecornu", {"lecornu", "honey"}),
        (ArticleFilter(sources=("le monde",)), "drian", {"drian"}),
        (ArticleFilter(sources=("LIBÉRATION", "Reuters")), "lecornu", {"lecornu", "honey"}),
    ],
)
def test_filters_change_the_answer(
    news: QAEngine, only: ArticleFilter, first: str, allowed: set[str]
) -> None:
    answer = news.ask(NEWS_QUESTION, only=only)
    assert cited(answer)[0] == first
    assert set(cited(answer)) <= allowed
    assert {p.article_id for p in answer.passages} <= allowed


def test_a_date_filter_leaves_undated_articles_out(news: QAEngine) -> None:
    question = "Combien de visiteurs le festival des lanternes a-t-il attiré ?"
    assert cited(news.ask(question))[0] == "lanterns"
    answer = news.ask(question, only=ArticleFilter(since="2000-01-01"))
    assert "lanterns" not in cited(answer) + [p.article_id for p in answer.passages]


def test_a_filter_that_matches_nothing_says_so(news: QAEngine) -> None:
    answer = news.ask(NEWS_QUESTION, only=ArticleFilter(sources=("Le Figaro",)))
    assert not answer.answered and not answer.passages
    assert answer.message == "Aucun article indexé ne correspond à ces dates ou à ces sources."


@pytest.mark.parametrize(
    "fields",
    [
        {"since": "2016-13-01"},
        {"until": "20160122"},
        {"since": "2016-01-23", "until": "2016-01-22"},
    ],
)
def test_a_bad_filter_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(BadQuestion):
        ArticleFilter(**fields)


# ---------------------------------------------------------------- the API and ask.py


@pytest.fixture(scope="module")
def news_client(news: QAEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    folder = tmp_path_factory.mktemp("news-app")
    app = create_app({"ENGINE": news, "FEEDBACK_DB": folder / "fb.sqlite3", "TESTING": True})
    with app.test_client() as client:
        yield client


def test_ask_takes_filters(news_client: FlaskClient) -> None:
    body = {"question": NEWS_QUESTION, "until": "2020-12-31", "sources": ["LE MONDE"]}
    answer = news_client.post("/ask", json=body).get_json()
    assert answer["citations"][0]["article_id"] == "drian"
    assert answer["citations"][0]["source"] == "Le Monde"
    got = news_client.get(
        "/ask", query_string={"q": NEWS_QUESTION, "since": "2017-01-01", "sources": ["Libération"]}
    ).get_json()
    assert got["citations"][0]["article_id"] == "lecornu"
    when = news_client.post("/ask", json={"question": NEWS_WHEN, "until": "2020-12-31"}).get_json()
    assert when["short_answer"]["resolved"] == "2016-01-20"
    unfiltered = news_client.post(
        "/ask", json={"question": NEWS_QUESTION, "sources": None}
    ).get_json()
    assert unfiltered["citations"][0]["article_id"] == "lecornu"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"since": "yesterday"}, '"since"'),
        ({"since": "2016-02-30"}, '"since"'),
        ({"until": "2016-1-2"}, '"until"'),
        ({"until": 20160122}, '"until"'),
        ({"since": "2016-01-23", "until": "2016-01-22"}, '"since"'),
        ({"sources": "Le Monde"}, '"sources"'),
        ({"sources": [""]}, '"sources"'),
        ({"sources": [1]}, '"sources"'),
        ({"sources": ["x"] * 51}, '"sources"'),
    ],
)
def test_bad_filters_are_400s(
    news_client: FlaskClient, fields: dict[str, object], named: str
) -> None:
    response = news_client.post("/ask", json={"question": NEWS_QUESTION, **fields})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_filter" and named in error["message"], error


def test_bad_filters_in_the_query_are_400s(news_client: FlaskClient) -> None:
    response = news_client.get("/ask", query_string={"q": NEWS_QUESTION, "since": "hier"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_filter"


def test_ask_script_filters(news: QAEngine) -> None:
    index = news.index_dir
    done = run_script(
        "ask.py", "--index", index, "--source", "le monde", "--source", "x", NEWS_QUESTION
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["citations"][0]["article_id"] == "drian"
    done = run_script("ask.py", "--index", index, "--since", "2017-01-01", NEWS_WHEN)
    answer = json.loads(done.stdout)
    assert answer["citations"][0]["article_id"] == "lecornu"
    assert answer["short_answer"]["resolved"] == "2024-03-13"
    bad = run_script("ask.py", "--index", index, "--since", "2016-02-30", NEWS_QUESTION)
    assert bad.returncode == 2 and "--since" in bad.stderr
    bad = run_script(
        "ask.py", "--index", index, "--since", "2017-01-01", "--until", "2016-01-01", NEWS_QUESTION
    )
    assert bad.returncode == 2 and "after --until" in bad.stderr


# ---------------------------------------------------------------- pages

BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "fr-FR,fr;q=0.9,en;q=0.8",
}


def test_articles_is_a_page_for_browsers(news_client: FlaskClient) -> None:
    page = news_client.get("/articles", headers=BROWSER)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Accept" in page.vary
    html = page.get_data(as_text=True)
    assert "4 articles indexés" in html and 'id="article-filter"' in html
    newest_first = ["15 mars 2024", "1 juin 2020", "22 janvier 2016"]
    assert [html.index(d) for d in newest_first] == sorted(html.index(d) for d in newest_first)
    assert "Libération" in html and "Reuters" in html
    english = news_client.get("/articles", headers={**BROWSER, "Accept-Language": "en"})
    assert "4 indexed articles" in english.get_data(as_text=True)
    assert "15 March 2024" in english.get_data(as_text=True)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, */*"])
def test_articles_stays_json_for_json_clients(news_client: FlaskClient, accept: str | None) -> None:
    response = news_client.get("/articles", headers={"Accept": accept} if accept else {})
    assert response.mimetype == "application/json"
    listing = response.get_json()
    assert listing["count"] == 4
    assert {a["id"]: a["source"] for a in listing["articles"]}["drian"] == "Le Monde"


def test_the_chat_counts_in_good_french_and_english(
    news_client: FlaskClient, client: FlaskClient
) -> None:
    many = news_client.get("/").get_data(as_text=True)
    assert "4 articles indexés" in many and "4 indexed articles" in many
    one = client.get("/").get_data(as_text=True)  # the seed index: one article
    assert "l'article indexé" in one and "indexed article<" in one
    assert "les 1" not in one and "1 article" not in one
