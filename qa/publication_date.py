"""The publication date of an article: from HTML markup, a JSON record's
field, or the dateline of a text dump (qa/metadata.py puts it with the
outlet and the author).

A date is the publication date, to the day, or None: an update date, a
comment's date or a date inside the text is never taken for it. The layers,
strongest first: publication markup (`article:published_time`, JSON-LD
`datePublished`, `itemprop="datePublished"`, `<time pubdate>`), then a
dateline between the title and the body ("Publié le 12/03/2020 à 18h30",
"Par X le 7 mai 2020", "Published March 12, 2020"). htmldate's wider search is
not used: on a page with no date it returns a reader comment's.

`accentless_key`, the comparison key of a page's lines, is here because the dateline's
search needs it; qa/metadata.py compares names with it too.
"""

from __future__ import annotations

import datetime
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "janvier january jan janv",
            "février fevrier february feb févr fev",
            "mars march mar",
            "avril april apr avr",
            "mai may",
            "juin june jun",
            "juillet july jul juil",
            "août aout august aug",
            "septembre september sep sept",
            "octobre october oct",
            "novembre november nov",
            "décembre decembre december dec déc",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
# Day-first for numeric dates: the French (and European) order. An ISO date
# (or year first with slashes) is unambiguous.
_DATE_PATTERNS = (
    (re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)"), "ymd"),
    (re.compile(r"\b(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})(?!\d)"), "dmy"),
    (
        re.compile(rf"\b(\d{{1,2}})(?:er|st|nd|rd|th)?\.?\s+({_MONTH})\.?,?\s+(\d{{4}})\b", re.I),
        "dMy",
    ),
    (re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I), "Mdy"),
)
# Words that say what a date in a dateline is. An update date is not the
# publication date: a line that gives only that gives no date.
_PUBLISHED = re.compile(
    r"\b(?:publi[ée]e?|paru|posted|published|créée?|created|first published|"
    r"mis en ligne|diffusée?|date)\b",
    re.IGNORECASE,
)
_UPDATED = re.compile(
    r"\b(?:mis à jour|mise à jour|actualisée?|modifiée?|updated|last modified|modified|"
    r"révisée?|edited)\b",
    re.IGNORECASE,
)
_DATELINE_MAX = 120  # a dateline is short; a date inside a paragraph is about something else
_DATE_REGION = 40  # lines above the body searched when the title heading is not found
_TITLE_REGION = 8
_WORD = re.compile(r"[^\W\d_]+")
_COMBINING = re.compile("[\u0300-\u036f]")  # accents, once NFKD splits them off


# --------------------------------------------------------------------------- dates


def _dates(text: str) -> Iterator[tuple[int, str]]:
    """(offset, YYYY-MM-DD) of each calendar date in `text`, in text order."""
    found: list[tuple[int, int, str]] = []
    for pattern, order in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            if any(s <= match.start() < e for s, e, _ in found):
                continue  # part of a date already read by a stronger pattern
            a, b, c = match.groups()
            if order == "ymd":
                y, m, d = int(a), int(b), int(c)
            elif order == "dmy":
                d, m, y = int(a), int(b), int(c)
                y += 2000 if y < 100 else 0
            elif order == "dMy":
                d, m, y = int(a), _MONTHS[b.lower()], int(c)
            else:
                m, d, y = _MONTHS[a.lower()], int(b), int(c)
            try:
                when = datetime.date(y, m, d)
            except ValueError:
                continue
            if 1900 <= y <= 2100:
                found.append((match.start(), match.end(), when.isoformat()))
    for start, _, iso in sorted(found):
        yield start, iso


def parse_date(text: str) -> str | None:
    """The first calendar date in `text` as YYYY-MM-DD ("12/03/2020", "12 mars
    2020", "March 12, 2020", "2020-03-12T18:30:00Z"), or None."""
    return next((day for _, day in _dates(text)), None)


def normalize_date(value: Any) -> str | None:
    """A record's date field as YYYY-MM-DD; None when it holds no date.

    Accepts ISO dates and datetimes, RFC 2822 ("Thu, 12 Mar 2020 18:30:00
    +0000"), written dates in French or English, and Unix timestamps.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.datetime.fromtimestamp(value, datetime.UTC).date().isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    return parse_date(str(value))


def dateline(lines: Sequence[str], title: str | None, body_start: int) -> str | None:
    """The publication date printed between the title heading and the body.

    A labelled line ("Publié le …", "Published …", "Créé: …") wins over an
    unlabelled one; dates after an update label ("mis à jour le …") are skipped.
    """
    lo = max(0, body_start - _DATE_REGION)
    if title:
        key = accentless_key(title)
        heading = next((i for i in range(lo, body_start) if accentless_key(lines[i]) == key), None)
        lo = heading if heading is not None else max(0, body_start - _TITLE_REGION)
    plain: str | None = None
    for line in lines[lo:body_start]:
        if len(line) > _DATELINE_MAX:
            continue
        for day, label in _labelled_dates(line):
            if label == "published":
                return day
            if label is None and plain is None:
                plain = day
    return plain


def _labelled_dates(line: str) -> Iterator[tuple[str, str | None]]:
    """Each date of a line with the label that governs it: the nearest one before it."""
    labels = sorted(
        [(m.start(), "published") for m in _PUBLISHED.finditer(line)]
        + [(m.start(), "updated") for m in _UPDATED.finditer(line)]
    )
    for at, day in _dates(line):
        before = [label for start, label in labels if start < at]
        yield day, (before[-1] if before else None)


# --------------------------------------------------------------------------- HTML markup

_META_PUBLISHED = {
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "published_time",
    "datepublished",
    "date.published",
    "article.published",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "publication_date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date.created",
    "dcterms.created",
    "sailthru.date",
    "parsely-pub-date",
}
_ARTICLE_TYPES = {"newsarticle", "article", "blogposting", "reportagenewsarticle", "report"}


def markup_date(tree: Any) -> str | None:
    """The publication date the page's markup declares (meta tags, JSON-LD, microdata)."""
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in _META_PUBLISHED:
            day = parse_date(meta.get("content") or "")
            if day:
                return day
    day = _json_ld_date(tree)
    if day:
        return day
    for element in tree.xpath('//*[@itemprop="datePublished"]|//time[@pubdate]'):
        day = parse_date(element.get("datetime") or element.get("content") or "")
        if day:
            return day
    return None


def _json_ld_date(tree: Any) -> str | None:
    """datePublished of the page's article object (else of any object) in JSON-LD."""
    found: list[tuple[bool, str]] = []
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "")
        except (json.JSONDecodeError, RecursionError):
            continue
        for item in _json_objects(data):
            day = parse_date(str(item.get("datePublished") or ""))
            if day:
                kinds = item.get("@type")
                kinds = kinds if isinstance(kinds, list) else [kinds]
                found.append((any(str(k).lower() in _ARTICLE_TYPES for k in kinds), day))
    found.sort(key=lambda pair: not pair[0])  # stable: article objects first
    return found[0][1] if found else None


def _json_objects(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 6:
        return
    if isinstance(data, dict):
        yield data
        for value in data.values():
            if isinstance(value, dict | list):
                yield from _json_objects(value, depth + 1)
    elif isinstance(data, list):
        for value in data:
            yield from _json_objects(value, depth + 1)


def accentless_key(text: str) -> str:
    """Comparison key: case, accents, punctuation and spacing ignored."""
    text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return " ".join(_WORD.findall(text.lower()))
