"""Tests of the article cleaner: the seed article, the dev pages, and properties."""

from __future__ import annotations

import importlib.util
import json
import sys
import unicodedata
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.clean import Cleaned, clean_html, clean_text, normalize

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SEED = ROOT / "corpus" / "seed-article.txt"
TITLE = "Réunion à Paris de la coalition internationale"

needs_data = pytest.mark.skipif(not (DATA / "text").is_dir(), reason="no dev data in ../shared")


def _load_eval() -> ModuleType:
    """The evaluation script, so the tests measure exactly what it reports."""
    spec = importlib.util.spec_from_file_location(
        "eval_cleaning", ROOT / "scripts" / "eval_cleaning.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def seed() -> Cleaned:
    return clean_text(SEED.read_text(encoding="utf-8"))


def _paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


# --------------------------------------------------------------------------- seed article


@pytest.mark.parametrize(
    "chrome",
    ["noscript", "Please Wait", "soleimani2025", "folder_open", "access_time", "FAVORIS"],
)
def test_seed_header_chrome_is_gone(seed: Cleaned, chrome: str) -> None:
    assert chrome not in seed.text


def test_seed_footer_chrome_is_gone(seed: Cleaned) -> None:
    assert "Comments" not in seed.text
    assert "//" not in seed.text
    assert _paragraphs(seed.text)[-1].startswith("Les chefs des diplomaties américaine et russe")


def test_seed_text_starts_with_the_first_paragraph(seed: Cleaned) -> None:
    assert seed.text.startswith("La coalition conduite par Washington qui mène la guerre")


def test_seed_title_found_once_and_kept_out_of_text(seed: Cleaned) -> None:
    assert seed.title == TITLE
    assert TITLE not in seed.text


def test_seed_injected_title_removed_and_sentence_rejoined(seed: Cleaned) -> None:
    assert "de la campagne militaire, selon la même source." in seed.text
    sentence = (
        "«Ils vont voir ce qui peut être nécessaire pour accélérer le tempo» "
        "de la campagne militaire, selon la même source."
    )
    paragraph = next(p for p in _paragraphs(seed.text) if "accélérer le tempo" in p)
    assert paragraph.endswith(sentence)
    assert "militaire, selon la même source." not in _paragraphs(seed.text)


def test_seed_heading_stays_on_its_own_line(seed: Cleaned) -> None:
    paragraphs = _paragraphs(seed.text)
    assert "Stratégie militaire faible" in paragraphs
    after = paragraphs[paragraphs.index("Stratégie militaire faible") + 1]
    assert after.startswith("Pour les Américains")


def test_seed_credit_goes_to_metadata(seed: Cleaned) -> None:
    assert seed.credit == "agences et rédaction"
    assert "Source" not in seed.text
    assert "agences et rédaction" not in seed.text


def test_seed_text_layout(seed: Cleaned) -> None:
    assert unicodedata.is_normalized("NFC", seed.text)
    assert "\n\n\n" not in seed.text
    for paragraph in _paragraphs(seed.text):
        assert paragraph and paragraph == paragraph.strip() and "\n" not in paragraph
    assert len(_paragraphs(seed.text)) == 17  # 16 paragraphs and one heading


# --------------------------------------------------------------------------- unicode


def test_normalize_is_nfc_and_unix_newlines() -> None:
    decomposed = "Re\u0301union\r\nà Paris\rfin"
    assert normalize(decomposed) == "Réunion\nà Paris\nfin"


def test_normalize_strips_zero_width_characters() -> None:
    assert normalize("Da\u200bech\ufeff\u200c\u200d\u2060") == "Daech"


def test_normalize_keeps_french_typography() -> None:
    text = "« Bonjour » : c’est l’heure\u00a0; vraiment\u202f? oui\u00a0! Titre\u00a0:"
    assert normalize(text) == text


PROSE = (
    "Le ministre a annoncé mercredi que la réforme serait présentée au Parlement "
    "avant la fin de l’année, selon un communiqué publié dans la matinée."
)


def _page(*body: str) -> str:
    menu = ["Accueil", "Politique", "Économie", "Sport", "Culture", "Se connecter", "Menu"]
    footer = ["Mentions légales", "Contact", "© Le Journal 2024", "Newsletter"]
    return "\n\n".join([*menu, "Le titre de l’article", *body, *footer])


def test_clean_text_keeps_no_break_spaces_and_quotes() -> None:
    quoted = (
        "« C’est une étape importante\u00a0», a-t-il déclaré devant la presse\u00a0: "
        "le texte sera-t-il voté avant l’été\u202f? Nul ne le sait encore, disent-ils\u00a0!"
    )
    cleaned = clean_text(_page(PROSE, quoted, PROSE.replace("mercredi", "jeudi")))
    assert quoted in cleaned.text
    assert "\u00a0:" in cleaned.text and "\u202f?" in cleaned.text and "\u00a0!" in cleaned.text


def test_clean_text_output_is_nfc_even_for_decomposed_input() -> None:
    decomposed = unicodedata.normalize("NFD", _page(PROSE, PROSE.replace("mercredi", "jeudi")))
    cleaned = clean_text(decomposed)
    assert cleaned.text and unicodedata.is_normalized("NFC", cleaned.text)
    assert "annoncé" in cleaned.text


# --------------------------------------------------------------------------- general rules


def test_empty_and_chrome_only_inputs_give_empty_text() -> None:
    assert clean_text("").text == ""
    assert clean_text("\n\n  \n").text == ""
    assert clean_text("Accueil\n\nMenu\n\nSe connecter\n\n© 2024").text == ""
    assert clean_html("").text == ""
    assert clean_html("<html><body><nav>Menu</nav></body></html>").text == ""


_ARTICLE_HTML = """<html><head><title>Berne interdit un fongicide</title></head><body>
<article><h1>Berne interdit un fongicide</h1>
<h3><span class="keyword">Agriculture</span>L'Office fédéral retire ce fongicide du marché.</h3>
<p><span class="drop">L</span>e produit sera interdit dès 2020 en Suisse, selon un communiqué publié
jeudi par l'administration fédérale, qui le juge probablement cancérigène pour l'homme.</p>
<p>Les agriculteurs devront trouver d'autres moyens de protéger leurs céréales et leurs vignes
contre les champignons, ont expliqué les services de l'Office fédéral de l'agriculture.</p>
</article></body></html>"""


def test_html_label_glued_to_the_next_word_gets_its_own_line() -> None:
    text = clean_html(_ARTICLE_HTML).text
    assert "AgricultureL'Office" not in text
    assert "L'Office fédéral retire ce fongicide du marché." in text
    # a drop cap ends in a capital: it stays part of its word
    assert "Le produit sera interdit dès 2020 en Suisse" in text


@pytest.mark.parametrize(
    ("line", "credit"),
    [
        ("Source : agences et rédaction", "agences et rédaction"),
        ("Sources: AFP, Reuters", "AFP, Reuters"),
        ("Avec AFP", "AFP"),
        ("(avec AFP)", "AFP"),
        ("Crédit : Jean Dupont", "Jean Dupont"),
    ],
)
def test_credit_line_at_the_end_goes_to_metadata(line: str, credit: str) -> None:
    cleaned = clean_text(_page(PROSE, PROSE.replace("mercredi", "jeudi"), line))
    assert cleaned.credit == credit
    assert line not in cleaned.text


def test_sentence_opening_with_avec_is_not_a_credit() -> None:
    last = "Avec cette réforme, le gouvernement espère réduire le déficit de moitié."
    cleaned = clean_text(_page(PROSE, PROSE.replace("mercredi", "jeudi"), last))
    assert cleaned.credit is None
    assert cleaned.text.endswith(last)


def test_paragraph_broken_mid_sentence_is_rejoined_but_heading_is_not() -> None:
    cleaned = clean_text(
        _page(
            PROSE,
            "Le texte prévoit aussi une hausse du budget de la défense et une",
            "baisse des impôts locaux pour les ménages les plus modestes.",
            "Un calendrier serré",
            PROSE.replace("mercredi", "jeudi"),
        )
    )
    paragraphs = _paragraphs(cleaned.text)
    assert (
        "Le texte prévoit aussi une hausse du budget de la défense et une "
        "baisse des impôts locaux pour les ménages les plus modestes."
    ) in paragraphs
    assert "Un calendrier serré" in paragraphs


def _titled(*body: str) -> str:
    return "\n\n".join(["Menu", "Accueil", TITLE, TITLE, *body, "Mentions légales"])


def test_title_spliced_mid_line_is_cut_and_a_quoted_title_is_kept() -> None:
    spliced = (
        f"Les ministres veulent accélérer la campagne {TITLE} militaire, selon la même source."
    )
    quoted = f"Le communiqué « {TITLE} » a été publié mercredi par le ministère des Armées."
    cleaned = clean_text(_titled(PROSE, spliced, quoted, PROSE.replace("mercredi", "jeudi")))
    assert cleaned.title == TITLE
    assert "Les ministres veulent accélérer la campagne militaire, selon la même source." in (
        _paragraphs(cleaned.text)
    )
    assert quoted in _paragraphs(cleaned.text)


def test_comment_thread_after_the_article_is_dropped() -> None:
    comment = "Je ne suis pas du tout d’accord avec cet article, qui oublie l’essentiel du sujet."
    cleaned = clean_text(
        _page(PROSE * 3, PROSE.replace("mercredi", "jeudi") * 3, "Commentaires", comment)
    )
    assert PROSE in cleaned.text
    assert comment not in cleaned.text


# --------------------------------------------------------------------------- dev pages


@needs_data
def test_text_dumps_meet_keep_and_drop_targets() -> None:
    ev = _load_eval()
    results = ev.evaluate(DATA / "text", {"clean_text": ev.text_cleaner})["clean_text"]
    total = sum(results.values(), ev.ZERO)
    assert total.keep_total >= 25 and total.drop_total >= 20
    assert total.keep_rate >= 0.95, results
    assert total.drop_rate >= 0.80, results


@needs_data
def test_html_at_least_as_good_as_trafilatura_defaults() -> None:
    ev = _load_eval()
    results = ev.evaluate(
        DATA / "html", {"ours": ev.html_cleaner, "default": ev.trafilatura_with()}
    )
    ours = sum(results["ours"].values(), ev.ZERO)
    default = sum(results["default"].values(), ev.ZERO)
    assert ours.keep_rate >= default.keep_rate, results
    assert ours.drop_rate >= default.drop_rate, results


@needs_data
def test_html_metadata_and_layout() -> None:
    page = "dalloz-actualite.fr.raoult.html"
    expect = json.loads((DATA / "html" / "expectations.json").read_text(encoding="utf-8"))
    meta = expect["pages"][page]
    cleaned = clean_html((DATA / "html" / page).read_text(encoding="utf-8"), meta["url"])
    assert cleaned.title == meta["metadata_annotations"]["title"]
    assert cleaned.date == meta["metadata_annotations"]["date"]
    assert cleaned.url == meta["url"]
    assert not cleaned.text.startswith(cleaned.title)
    assert "\n\n" in cleaned.text and "\n\n\n" not in cleaned.text
    assert "Le confinement chauffe les esprits" not in cleaned.text  # a reader's comment


@needs_data
def test_text_dump_titles_and_dates_match_the_page_metadata() -> None:
    expect = json.loads((DATA / "html" / "expectations.json").read_text(encoding="utf-8"))
    checked = 0
    for page, meta in expect["pages"].items():
        annotations = meta.get("metadata_annotations", {})
        dump = DATA / "text" / page.replace(".html", ".txt")
        cleaned = clean_text(dump.read_text(encoding="utf-8"))
        if annotations.get("title") and not page.startswith("sports"):
            # sports: the annotation is a widget label, not the page's <title>
            assert cleaned.title is not None
            assert _fold(cleaned.title) == _fold(annotations["title"]), page
            checked += 1
        if annotations.get("date"):
            assert cleaned.date == annotations["date"], page
    assert checked == 7


def _fold(text: str) -> str:
    return " ".join(normalize(text).replace("’", "'").split())


@needs_data
def test_clean_prose_passes_through() -> None:
    """On text that is already clean (PIAF's Wikipedia paragraphs) nearly nothing is lost."""
    articles = json.loads((DATA / "piaf" / "piaf-dev.json").read_text(encoding="utf-8"))["data"]
    total = kept = 0
    for article in articles:
        paragraphs = [p["context"].strip() for p in article["paragraphs"]]
        cleaned = clean_text("\n\n".join([article["title"], *paragraphs]))
        total += len(paragraphs)
        kept += sum(p in cleaned.text for p in paragraphs)
    assert kept / total >= 0.97


# --------------------------------------------------------------------------- properties


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(token in it for token in small)


WORDS = [
    "le", "la", "de", "des", "et", "à", "un", "une", "pour", "dans", "qui", "est",
    "ministre", "coalition", "Paris", "guerre", "réunion", "campagne", "militaire",
    "Accueil", "Menu", "Connexion", "Partager", "©", "»", "«", "’", "\u00a0!", "\u00a0:",
]  # fmt: skip
# Arbitrary text, menu-like word salads, sentence-like lines that the
# classifier keeps, and lower-case continuations, so the repairs run too.
_words = st.lists(st.sampled_from(WORDS), min_size=4, max_size=60).map(" ".join)
_line = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
    st.builds(
        lambda words, end: words.capitalize() + end,
        _words,
        st.sampled_from(["", ".", " ?", ",", "…", "."]),
    ),
    st.builds(lambda words: words.lower() + ".", _words),
)
_page_text = st.builds(
    lambda lines, seps: "".join(line + sep for line, sep in zip(lines, seps, strict=False)),
    st.lists(_line, max_size=30),
    st.lists(st.sampled_from(["\n", "\n\n", "\r\n", "\n\n\n"]), min_size=30, max_size=30),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_page_text)
def test_clean_text_never_crashes_and_never_invents_words(raw: str) -> None:
    cleaned = clean_text(raw)
    assert isinstance(cleaned, Cleaned)
    text = cleaned.text
    assert unicodedata.is_normalized("NFC", text)
    assert "\n\n\n" not in text
    if text:
        for paragraph in _paragraphs(text):
            assert paragraph and paragraph == paragraph.strip() and "\n" not in paragraph
    # Lines are dropped, a spliced-in title cut out, broken lines joined with
    # a space; nothing is reordered, rewritten or added.
    assert _is_subsequence(text.split(), normalize(raw).split())
    if cleaned.title is not None:
        assert cleaned.title.split() and " ".join(cleaned.title.split()) in " ".join(
            normalize(raw).split()
        )


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_normalize_is_idempotent_and_nfc(raw: str) -> None:
    once = normalize(raw)
    assert normalize(once) == once
    assert unicodedata.is_normalized("NFC", once)
    assert "\r" not in once and "\u200b" not in once


# Lines of article text that the text-dump furniture rules condemn on sight
# (all capitals, account or contact words, a "©" credit, a caption label,
# a URL): on HTML, trafilatura has already chosen the article, and these
# rules cost real paragraphs and headings (docs/cleaning.md).
_HTML_BODY_LINES = [
    "LES CHIFFRES CLÉS",
    "Le maire a répondu par courriel aux questions des élus du conseil municipal",
    "Le chantier sera financé par la région et par l'État, a précisé le préfet. © AFP",
    "Contact presse",
    "Photo : les travaux ont commencé en mars",
    "https://www.example.org/rapport-2024",
]


def test_html_keeps_body_lines_the_text_rules_would_drop() -> None:
    prose = (
        "<p>Le conseil municipal de Besançon a voté mardi soir le budget du nouveau pont sur "
        "le Doubs, un projet attendu depuis plus de dix ans par les habitants du quartier.</p>"
    )
    body = "".join(
        f"<h2>{line}</h2>" if line.isupper() else f"<p>{line}</p>" for line in _HTML_BODY_LINES
    )
    html = (
        "<html><head><title>Le pont du Doubs</title></head><body><article><h1>Le pont du "
        f"Doubs</h1>{prose}{body}{prose.replace('mardi', 'jeudi')}</article></body></html>"
    )
    text = clean_html(html).text
    for line in _HTML_BODY_LINES:
        assert line in text, (line, text)
