"""Publication date, outlet and author (qa.publication_date, qa.metadata):
datelines, record fields, and every dev page against its annotation
(html/metadata.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import DATA, ENGLISH_ARTICLE, FRENCH_ARTICLE, encoder

from qa import indexing
from qa.clean import clean_html, clean_text
from qa.ingest import read_file
from qa.metadata import site_name
from qa.publication_date import accentless_key, dateline, normalize_date, parse_date
from qa.settings import Settings
from qa.store import IndexReader

needs_data = pytest.mark.skipif(
    not (DATA / "html" / "metadata.json").is_file(), reason="no dev data in ../shared"
)

# --------------------------------------------------------------------------- datelines


@pytest.mark.parametrize(
    ("line", "date"),
    [
        ("Publié le 12/03/2020 à 18h30", "2020-03-12"),
        ("Publié le 12/03/2020 à 18h30, mis à jour le 13/03/2020 à 08h12", "2020-03-12"),
        ("Mis à jour le 13/03/2020 à 08h12 - Publié le 12/03/2020", "2020-03-12"),
        ("Par Matthieu Hy le 07 Mai 2020", "2020-05-07"),
        ("jeudi 13 juin 2019, par Attac France", "2019-06-13"),
        ("Le 1er mars 2021", "2021-03-01"),
        ("Par Nicolas Gutierrez C. le 14.09.2020 à 11h46", "2020-09-14"),
        ("Créé: 12.12.2019, 07h36", "2019-12-12"),
        ("Publié le 5 févr. 2020", "2020-02-05"),
        ("12 déc. 2019", "2019-12-12"),
        ("Published March 12, 2020", "2020-03-12"),
        ("Published 12 March 2020, updated 14 March 2020", "2020-03-12"),
        ("Updated March 14, 2020 · Published March 12th, 2020", "2020-03-12"),
        ("By Jane Doe | Sept. 3, 2019", "2019-09-03"),
        ("2020-03-12T18:30:00+01:00", "2020-03-12"),
        ("12/03/20", "2020-03-12"),
        ("Mis à jour le 13/03/2020", None),  # an update date is not the publication date
        ("Updated March 14, 2020", None),
        ("Le 31/02/2020", None),  # no such day
        ("Horaires : 17h00", None),
    ],
)
def test_dateline(line: str, date: str | None) -> None:
    lines = ["Le titre de l'article", line, "Le premier paragraphe de l'article commence ici."]
    assert dateline(lines, "Le titre de l'article", 2) == date


def test_dateline_prefers_the_labelled_date_and_ignores_dates_outside_the_header() -> None:
    lines = [
        "Édition du 12 octobre 2020",  # above the title: a banner
        "Le titre",
        "Photo du 3 janvier 2020",
        "Publié le 7 mai 2020",
        "Le premier paragraphe, qui parle du 4 juillet 1776.",
        "Commentaire de Muriel - Le 22/01/2020",
    ]
    assert dateline(lines, "Le titre", 4) == "2020-05-07"
    assert dateline(lines[:3] + lines[4:], "Le titre", 3) == "2020-01-03"  # unlabelled: first
    assert dateline(["Le titre", "Le premier paragraphe."], "Le titre", 1) is None


@pytest.mark.parametrize(
    ("value", "date"),
    [
        ("2020-03-12", "2020-03-12"),
        ("2020-03-12T18:30:00Z", "2020-03-12"),
        ("Thu, 12 Mar 2020 18:30:00 +0000", "2020-03-12"),
        ("12 mars 2020", "2020-03-12"),
        ("March 12, 2020", "2020-03-12"),
        ("12/03/2020", "2020-03-12"),
        (1584037800, "2020-03-12"),
        ("hier", None),
        ("", None),
        (None, None),
        (True, None),
    ],
)
def test_normalize_record_dates(value: object, date: str | None) -> None:
    assert normalize_date(value) == date


def test_parse_date_reads_the_first_date() -> None:
    assert parse_date("du 3 au 5 mai 2020, puis le 12/06/2020") == "2020-05-05"
    assert parse_date("le 12/06/2020, puis du 3 au 5 mai 2020") == "2020-06-12"
    assert parse_date("rien") is None


# --------------------------------------------------------------------------- outlets


@pytest.mark.parametrize(
    ("lines", "head", "declared", "domain", "outlet"),
    [
        ([], "T", "Le Devoir", None, "Le Devoir"),
        (["Le titre", "© Le Devoir 2002-2020"], "Le titre | Le Devoir", None, None, "Le Devoir"),
        (["x"], "Libre cours | Dalloz Actualité", None, "dalloz-actualite.fr", "Dalloz Actualité"),
        (["Le titre", "Le Monde"], "Le titre - Le Monde", None, None, "Le Monde"),
        (["Le titre", "© Copyright MesOpinions.com"], "Le titre", None, None, "MesOpinions.com"),
        (["Le titre"], "Covid-19 - un an après", None, None, None),  # a hyphen, no evidence
        (["Le titre"], "Le titre", "https://www.example.org/", None, "example.org"),
        (["Le titre"], "Le titre", None, None, None),
    ],
)
def test_site_name(
    lines: list[str], head: str, declared: str | None, domain: str | None, outlet: str | None
) -> None:
    assert site_name(lines, head, declared, domain) == outlet


# --------------------------------------------------------------------------- records


def test_record_metadata_fields(tmp_path: Path) -> None:
    records = [
        {
            "text": ENGLISH_ARTICLE,
            "date": "Thu, 12 Mar 2020 18:30:00 +0000",
            "outlet": "Lincolnshire Echo",
            "author": {"name": "Jane Doe"},
        },
        {
            "text": FRENCH_ARTICLE,
            "date": "2020-03-12T23:30:00-05:00",
            "site_name": "Le Devoir",
            "authors": ["Jeanne Corriveau", "Marco Fortier"],
        },
        {"text": FRENCH_ARTICLE + " Encore.", "date": "l'an dernier", "source": "La Presse"},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    articles, errors = read_file(path)
    assert errors == []
    assert [(a.date, a.source, a.author) for a in articles] == [
        ("2020-03-12", "Lincolnshire Echo", "Jane Doe"),
        ("2020-03-12", "Le Devoir", "Jeanne Corriveau, Marco Fortier"),
        (None, "La Presse", None),  # no date rather than a wrong one
    ]


def test_text_file_dateline_through_ingest(tmp_path: Path) -> None:
    page = "\n\n".join(
        [
            "Le pont du Doubs inauguré | L'Est Républicain",
            "Accueil",
            "Le pont du Doubs inauguré",
            "Publié le 12/03/2020 à 18h30 - Mis à jour le 13/03/2020 à 07h00",
            FRENCH_ARTICLE,
            "© L'Est Républicain 2020",
        ]
    )
    path = tmp_path / "a.txt"
    path.write_text(page, encoding="utf-8")
    articles, _ = read_file(path)
    assert (articles[0].date, articles[0].source) == ("2020-03-12", "L'Est Républicain")


# --------------------------------------------------------------------------- dev pages


def _annotations() -> dict[str, dict[str, str | None]]:
    pages: dict[str, dict[str, str | None]] = json.loads(
        (DATA / "html" / "metadata.json").read_text(encoding="utf-8")
    )["pages"]
    return pages


def _urls() -> dict[str, str]:
    expect = json.loads((DATA / "html" / "expectations.json").read_text(encoding="utf-8"))
    return {page: meta["url"] for page, meta in expect["pages"].items()}


def same_outlet(found: str | None, annotated: str | None) -> bool:
    """Equal once folded, or one name inside the other ("PSL", "Université PSL")."""
    if not found or not annotated:
        return found == annotated
    a, b = accentless_key(found), accentless_key(annotated)
    return a == b or f" {a} " in f" {b} " or f" {b} " in f" {a} "


def same_author(found: str | None, annotated: str | None) -> bool:
    return (
        found is not None
        and annotated is not None
        and accentless_key(found) == accentless_key(annotated)
    )


@needs_data
def test_dev_pages_dates_outlets_and_authors() -> None:
    """Every dated page's date to the day, null where none is shown; every outlet
    named; an author is right or absent, never someone else."""
    urls = _urls()
    authors = 0
    for page, truth in _annotations().items():
        cleaned = clean_html((DATA / "html" / page).read_text(encoding="utf-8"), urls[page])
        assert cleaned.date == truth["date"], page
        assert same_outlet(cleaned.source, truth["outlet"]), (page, cleaned.source)
        assert cleaned.author is None or same_author(cleaned.author, truth["author"]), page
        authors += same_author(cleaned.author, truth["author"])
    assert authors >= 5


@needs_data
def test_dev_text_dumps_datelines_and_outlets() -> None:
    """Dumps have no markup: the dateline gives the date, never a wrong one."""
    right = named = 0
    for page, truth in _annotations().items():
        dump = DATA / "text" / page.replace(".html", ".txt")
        cleaned = clean_text(dump.read_text(encoding="utf-8"))
        assert cleaned.date is None or cleaned.date == truth["date"], page
        assert cleaned.source is None or same_outlet(cleaned.source, truth["outlet"]), page
        right += cleaned.date == truth["date"]
        named += cleaned.source is not None
    assert right >= 9 and named >= 6


@needs_data
def test_build_stores_the_metadata(tmp_path: Path) -> None:
    """Through a real build: an HTML dev page, a dated text dump, a JSONL record."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    page = "ledevoir.com.trottinettes.html"
    (corpus / page).write_bytes((DATA / "html" / page).read_bytes())
    dump = "sciencesetavenir.fr.rumeur.txt"
    (corpus / dump).write_bytes((DATA / "text" / dump).read_bytes())
    record = {"text": ENGLISH_ARTICLE, "date": "2024-10-01T08:30:00Z", "publisher": "The Echo"}
    (corpus / "r.jsonl").write_text(json.dumps(record), encoding="utf-8")
    index = tmp_path / "index"
    report = indexing.build(corpus, index, encoder(), Settings(index_dir=str(index)))
    assert report.errors == []
    listed = {(a["date"], a["source"], a["author"]) for a in IndexReader(index).list_articles()}
    assert listed == {
        ("2020-02-19", "Le Devoir", "Jeanne Corriveau"),
        ("2020-09-14", "Sciences et Avenir", None),
        ("2024-10-01", "The Echo", None),
    }
