"""HTML pages: the chat (`/`), the list of indexed articles (`/articles` when a
browser asks for HTML; web/api.py routes it) and an article view with a cited
span highlighted (`/view/<article_id>?start=..&end=..`). Jinja autoescapes
every value."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, render_template, request

from qa.store import SentenceRow

from . import engine_of

bp = Blueprint("pages", __name__)

LABELS = {
    "fr": {
        "back": "← Retour aux questions",
        "original": "Article original",
        "missing": "Article introuvable",
        "missing_text": "Aucun article ne porte cet identifiant dans l'index actuel.",
        "cited": "Passage cité",
        "articles": "Articles indexés",
        "filter": "Filtrer par titre, source ou date",
        "title": "Titre",
        "source": "Source",
        "date": "Date",
        "none": "Aucun article ne correspond.",
        "all": "Tous les articles",
    },
    "en": {
        "back": "← Back to questions",
        "original": "Original article",
        "missing": "Article not found",
        "missing_text": "No article has this id in the current index.",
        "cited": "Cited passage",
        "articles": "Indexed articles",
        "filter": "Filter by title, outlet or date",
        "title": "Title",
        "source": "Outlet",
        "date": "Date",
        "none": "No article matches.",
        "all": "All articles",
    },
}


@dataclass(frozen=True)
class Segment:
    """A run of article text with one rendering: plain, heading, cited, or both."""

    text: str
    heading: bool
    cited: bool
    first_cited: bool  # gets the anchor the page scrolls to


MONTHS = {
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre "
    "décembre".split(),
    "en": "January February March April May June July August September October November "
    "December".split(),
}


def counted(n: int, lang: str, one: str, many: str) -> str:
    """`n` with its noun: "1 article indexé", "12 articles indexés", "0 article
    indexé" (French takes the singular for 0 and 1, English for 1 only)."""
    single = n <= 1 if lang == "fr" else n == 1
    number = f"{n:,}".replace(",", "\u202f" if lang == "fr" else ",")
    return f"{number} {one if single else many}"


def long_date(iso: str | None, lang: str) -> str:
    """A YYYY-MM-DD date as "22 janvier 2016" or "22 January 2016"; other text as it is."""
    try:
        year, month, day = (int(p) for p in (iso or "").split("-"))
        return f"{day} {MONTHS[lang][month - 1]} {year}"
    except (ValueError, IndexError):
        return iso or ""


def _page_lang() -> str:
    return "fr" if request.accept_languages.best_match(["fr", "en"]) == "fr" else "en"


@bp.get("/")
def chat() -> str:
    engine = engine_of(current_app)
    engine.reload_if_changed()
    n = engine.reader.counts["articles"]
    return render_template(
        "chat.html",
        counts=engine.reader.counts,
        indexed_fr=counted(n, "fr", "article indexé", "articles indexés"),
        indexed_en=counted(n, "en", "indexed article", "indexed articles"),
        max_chars=current_app.config["SETTINGS"].max_question_chars,
    )


def articles_page(items: list[dict[str, Any]]) -> str:
    """The indexed articles, newest first (undated last), with a filter box."""
    lang = _page_lang()
    newest = sorted(items, key=lambda a: a["date"] or "", reverse=True)
    rows = [{**a, "long_date": long_date(a["date"], lang)} for a in newest]
    many = (
        ("article indexé", "articles indexés")
        if lang == "fr"
        else ("indexed article", "indexed articles")
    )
    return render_template(
        "articles.html",
        lang=lang,
        labels=LABELS[lang],
        articles=rows,
        count=counted(len(rows), lang, *many),
    )


@bp.get("/view/<path:article_id>")
def view(article_id: str) -> tuple[str, int]:
    engine = engine_of(current_app)
    engine.reload_if_changed()
    reader = engine.reader
    article = reader.article(article_id)
    if article is None:
        labels = LABELS["fr" if request.accept_languages.best_match(["fr", "en"]) == "fr" else "en"]
        return render_template("missing.html", labels=labels, article_id=article_id), 404
    span = _span(request.args.get("start"), request.args.get("end"), len(article.text))
    segments = segment(article.text, reader.article_sentences(article_id), span)
    labels = LABELS.get(article.lang, LABELS["en"])
    return (
        render_template(
            "view.html",
            article=article,
            segments=segments,
            labels=labels,
            url=article.url if _is_web_url(article.url) else None,
            cited=span is not None,
            published=long_date(article.date, article.lang if article.lang in MONTHS else "en"),
        ),
        200,
    )


def _span(start: str | None, end: str | None, length: int) -> tuple[int, int] | None:
    """The [start, end) to highlight, or None when absent or out of the text."""
    try:
        s, e = int(start or ""), int(end or "")
    except ValueError:
        return None
    return (s, e) if 0 <= s < e <= length else None


def _is_web_url(url: str | None) -> bool:
    # An article's url is data: never link a javascript: or data: URL.
    return bool(url) and str(url).lower().startswith(("http://", "https://"))


def segment(text: str, sentences: list[SentenceRow], span: tuple[int, int] | None) -> list[Segment]:
    """Cut the text at heading and highlight boundaries so each piece renders with one style."""
    cuts = {0, len(text)}
    headings = [(s.start, s.end) for s in sentences if s.heading]
    for start, end in headings:
        cuts.update((start, end))
    if span:
        cuts.update(span)
    points = sorted(c for c in cuts if 0 <= c <= len(text))
    out: list[Segment] = []
    anchored = False
    for a, b in itertools.pairwise(points):
        if a == b:
            continue
        heading = any(s <= a and b <= e for s, e in headings)
        cited = span is not None and span[0] <= a and b <= span[1]
        out.append(Segment(text[a:b], heading, cited, cited and not anchored))
        anchored = anchored or cited
    return out
