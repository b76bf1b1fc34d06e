"""RSS and Atom feeds: each item an article with its title, link, date, outlet
and author, read from tests/feeds/ (French fixtures), then through a real index
build and a question answered from an item."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import FRENCH_ARTICLE, encoder

from qa import indexing
from qa.errors import UnknownFormat
from qa.feeds import html_text, looks_like_feed
from qa.ingest import read_file
from qa.pipeline import QAEngine
from qa.records import Article
from qa.settings import Settings
from qa.store import IndexReader, current_build_id

FEEDS = Path(__file__).resolve().parent / "feeds"
RSS = FEEDS / "courrier-jura.rss"
ATOM = FEEDS / "chroniques-alpines.atom"


def by_title(articles: list[Article]) -> dict[str, Article]:
    return {a.title: a for a in articles}


# ---------------------------------------------------------------- reading


def test_rss_items_become_articles() -> None:
    articles, errors = read_file(RSS)
    assert errors == []
    items = by_title(articles)
    assert len(items) == 3
    lac = items["Le lac de Vouglans vidé pour l'inspection du barrage"]
    assert lac.url == "https://www.courrier-jura.example/2016/01/21/vouglans-vidange"
    # Published at 00:30 in Paris: the 21st there, though the 20th in UTC.
    assert lac.date == "2016-01-21"
    assert lac.source == "Le Courrier du Jura"
    assert lac.author == "Claire Bouveret"
    assert lac.lang == "fr"
    assert lac.origin == f"{RSS}#courrier-jura-48213"
    # content:encoded, not the one-line description: paragraphs, <br> a break,
    # no script, no figure caption.
    assert lac.text.split("\n\n") == [
        "Le niveau du lac de Vouglans va baisser de trente mètres cet hiver, "
        "le temps d'inspecter le barrage.",
        "EDF a annoncé mercredi que la vidange partielle commencerait le 8 février "
        "et durerait six semaines.",
        "Les plongeurs de l'entreprise Hydrotech inspecteront la vanne de fond, "
        "qui n'a pas été contrôlée depuis 1985.",
        "Les pêcheurs devront ranger leurs cannes jusqu'en avril.",
    ]
    # The item's own <source> names the outlet; its heading is a paragraph.
    comte = items["Comté : la production a atteint 64 000 tonnes en 2015"]
    assert comte.source == "Agri Franche-Comté" and comte.author is None
    assert comte.text.startswith("Un record pour la filière\n\nLa production de comté")


def test_an_item_with_only_a_summary_says_so() -> None:
    items = by_title(read_file(RSS)[0])
    morez = items["Morez : la lunetterie Bonnet reprise par ses salariés (résumé)"]
    assert morez.text == (
        "Les quarante-deux salariés de la lunetterie Bonnet, à Morez, "
        "ont repris leur entreprise en coopérative."
    )
    assert (morez.date, morez.author) == ("2016-01-20", "Paul Grandjean")
    full = [a for a in items.values() if a is not morez]
    assert not any("(résumé)" in a.title for a in full)


def test_atom_entries_become_articles() -> None:
    articles, errors = read_file(ATOM)
    assert errors == []
    items = by_title(articles)
    assert len(items) == 3
    # An HTML title made text; the published date, not the update's.
    bouquetins = items["Belledonne : 412 bouquetins comptés ce printemps"]
    assert bouquetins.date == "2020-03-11"
    assert bouquetins.source == "Chroniques alpines"
    assert bouquetins.author == "Élise Marchand"
    assert bouquetins.url == "https://chroniques-alpines.example/2020/03/belledonne-bouquetins"
    assert bouquetins.text.count("\n\n") == 2 and "<p>" not in bouquetins.text
    # XHTML content; no <published>: the date of the update.
    panoramic = items["Chamonix ferme la télécabine du Panoramic"]
    assert panoramic.date == "2020-03-10"
    assert panoramic.text.startswith("La télécabine du Panoramic Mont-Blanc restera fermée")
    assert "Le refuge du Goûter ouvrira plus tôt (résumé)" in items


def test_feeds_are_found_by_content_whatever_their_name(tmp_path: Path) -> None:
    expected = read_file(RSS)[0]
    for name in ("flux", "flux.txt", "flux.html", "export.xml"):
        copy = tmp_path / name
        shutil.copy(RSS, copy)
        assert looks_like_feed(copy)
        got = read_file(copy)[0]
        # Same items, same ids: the id comes from the guid, not the file.
        assert [(a.id, a.title, a.text, a.date) for a in got] == [
            (a.id, a.title, a.text, a.date) for a in expected
        ]
    utf16 = tmp_path / "atom-utf16.xml"
    utf16.write_bytes(ATOM.read_text(encoding="utf-8").replace("utf-8", "utf-16").encode("utf-16"))
    assert looks_like_feed(utf16)
    assert [a.title for a in read_file(utf16)[0]] == [a.title for a in read_file(ATOM)[0]]


def test_other_xml_and_pages_are_not_feeds(tmp_path: Path) -> None:
    sitemap = tmp_path / "sitemap.xml"
    sitemap.write_text(
        '<?xml version="1.0"?><urlset><url><loc>https://x.example/</loc></url></urlset>'
    )
    assert not looks_like_feed(sitemap)
    with pytest.raises(UnknownFormat, match="not an RSS or Atom feed"):
        read_file(sitemap)
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body><p>rss feed</p></body></html>")
    assert not looks_like_feed(page)
    text = tmp_path / "note.txt"
    text.write_text(FRENCH_ARTICLE)
    assert not looks_like_feed(text)
    assert read_file(text)[0][0].title == "Le festival des lanternes de Montbéliard"


def test_a_bad_item_is_skipped_the_others_read(tmp_path: Path) -> None:
    feed = tmp_path / "flux.rss"
    feed.write_text(
        RSS.read_text(encoding="utf-8").replace(
            "<item>", "<item><title>Vide</title><link>https://x.example/vide</link></item><item>", 1
        ),
        encoding="utf-8",
    )
    articles, errors = read_file(feed)
    assert len(articles) == 3
    [error] = errors
    assert "https://x.example/vide" in str(error) and "no content and no summary" in str(error)


def test_html_text_keeps_inline_words_together() -> None:
    text = html_text("<p>Un <b>mot</b>-clé<!-- pub --></p><ul><li>un</li><li>deux</li></ul>")
    assert [line for line in text.split("\n") if line] == ["Un mot-clé", "un", "deux"]


# ---------------------------------------------------------------- through an index


@pytest.fixture(scope="module")
def feed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both feeds and a plain article, built by a full build over their folder."""
    root = tmp_path_factory.mktemp("feeds")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(RSS, corpus / RSS.name)
    shutil.copy(ATOM, corpus / "alpes")  # no extension: found by its root element
    (corpus / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    index = root / "index"
    settings = Settings(index_dir=str(index))
    report = indexing.build(corpus, index, encoder(), settings)
    assert report.errors == [] and report.articles == 7
    return index


def test_a_question_is_answered_from_a_feed_item_with_its_date_and_outlet(
    feed_index: Path,
) -> None:
    engine = QAEngine.load(Settings(index_dir=str(feed_index)), encoder())
    answer = engine.ask("Combien de bouquetins ont été comptés dans le massif de Belledonne ?")
    assert answer.answered, answer.message
    assert "412 bouquetins" in (answer.answer or "")
    top = answer.citations[0]
    assert top.title == "Belledonne : 412 bouquetins comptés ce printemps"
    assert (top.date, top.source) == ("2020-03-11", "Chroniques alpines")
    assert top.url == "https://chroniques-alpines.example/2020/03/belledonne-bouquetins"

    answer = engine.ask("Jusqu'à quand les pêcheurs devront-ils ranger leurs cannes ?")
    assert answer.answered and "avril" in (answer.answer or ""), answer
    top = answer.citations[0]
    assert (top.date, top.source) == ("2016-01-21", "Le Courrier du Jura")
    assert top.url == "https://www.courrier-jura.example/2016/01/21/vouglans-vidange"
    engine.reader.close()


def test_adding_a_feed_again_adds_nothing_and_a_changed_item_replaces_its_old_version(
    feed_index: Path, tmp_path: Path
) -> None:
    index = Path(shutil.copytree(feed_index, tmp_path / "index", symlinks=True))
    settings = Settings(index_dir=str(index))
    before = current_build_id(index)
    again = indexing.add([RSS], index, encoder(), settings)
    assert (again.added, again.removed, again.articles) == ([], [], 7)
    assert len(again.unchanged) == 3
    assert current_build_id(index) == before  # nothing new: no new build either

    # The next fetch of the feed: a new item on top, the Vouglans story updated.
    lac = by_title(read_file(RSS)[0])["Le lac de Vouglans vidé pour l'inspection du barrage"]
    later = tmp_path / "courrier-jura-2.rss"
    later.write_text(
        RSS.read_text(encoding="utf-8")
        .replace("durerait six semaines", "durerait sept semaines")
        .replace(
            "<item>",
            "<item><title>Saint-Claude : la fête des pipes annulée</title>"
            "<link>https://www.courrier-jura.example/2016/01/22/pipes</link>"
            '<guid isPermaLink="false">courrier-jura-48240</guid>'
            "<pubDate>Fri, 22 Jan 2016 09:00:00 +0100</pubDate>"
            "<description>La fête des pipes de Saint-Claude n'aura pas lieu cette année."
            "</description></item><item>",
            1,
        ),
        encoding="utf-8",
    )
    report = indexing.add([later], index, encoder(), settings)
    assert report.errors == []
    assert report.removed == [lac.id]  # the old version of the changed item
    assert len(report.added) == 2 and lac.id in report.added
    assert len(report.unchanged) == 2
    assert report.articles == 8
    reader = IndexReader(index)
    stored = reader.article(lac.id)
    assert stored is not None and "sept semaines" in stored.text
    reader.close()
