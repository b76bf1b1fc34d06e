"""Publication date, outlet and author of an article: from HTML markup, JSON
record fields, or the dateline and chrome of a text dump.

A date is the publication date, to the day, or None: an update date, a
comment's date or a date inside the text is never taken for it. The layers,
strongest first: publication markup (`article:published_time`, JSON-LD
`datePublished`, `itemprop="datePublished"`, `<time pubdate>`), then a
dateline between the title and the body ("Publié le 12/03/2020 à 18h30",
"Par X le 7 mai 2020", "Published March 12, 2020"). htmldate's wider search is
not used: on a page with no date it returns a reader comment's.

The outlet is the page's declared site name (og:site_name), else the part of
<title> after its last separator ("Title | Le Devoir") when something else on
the page agrees (the domain, the copyright line, another line), else the
holder of the copyright line at the foot of the page, else None.
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
        key = fold(title)
        heading = next((i for i in range(lo, body_start) if fold(lines[i]) == key), None)
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


def html_metadata(
    html: str,
    title: str | None,
    body: Sequence[str],
    declared_site: str | None,
    url: str | None,
    author: str | None,
) -> tuple[str | None, str | None, str | None]:
    """(publication date, outlet, author) of an HTML page whose title and
    body paragraphs the extractor found; `author` is the extractor's guess."""
    import lxml.html  # comes with trafilatura

    try:
        tree = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None, declared_site, None
    date = markup_date(tree)
    head_title = tree.findtext(".//title")
    for element in tree.xpath("//script|//style|//noscript|//template|//head"):
        element.drop_tree()  # keeps its tail, which is the parent's text
    lines = [text for node in tree.itertext() if (text := " ".join(node.split()))]
    start = _line_of(lines, body[0]) if body else None
    end = _last_body_line(lines, body, start) if author else None
    if date is None and start is not None:
        date = dateline(lines, title, start)
    domain = re.sub(r"^https?://([^/:]+).*$", r"\1", url) if url else None
    return (
        date,
        site_name(lines, head_title, declared_site, domain),
        _printed_author(author, lines, end),
    )


def _line_of(lines: Sequence[str], paragraph: str, after: int = 0) -> int | None:
    """Where a paragraph starts among the page's text nodes (it may span several)."""
    key = fold(paragraph)
    for i in range(after, len(lines)):
        line = fold(lines[i])
        if len(line) >= min(15, len(key)) and key.startswith(line):
            return i
    return None


def _last_body_line(lines: Sequence[str], body: Sequence[str], start: int | None) -> int | None:
    """The last text node of the page that is part of the extracted body's
    last paragraphs: one whose first words occur together in them (a node
    may start anywhere in a paragraph, after a link or an emphasis; related
    headlines share fewer words)."""
    if start is None:
        return None
    words = fold(" ".join(body[-_LAST_PARAGRAPHS:])).split()
    n = _NODE_WORDS
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    for i in range(len(lines) - 1, start, -1):
        first = fold(lines[i][:200]).split()[:n]
        if len(first) == n and tuple(first) in grams:
            return i
    return start


_NODE_WORDS = 6
_LAST_PARAGRAPHS = 3
_BYLINE_AFTER = 15  # lines after the last paragraph where a signature may stand


def _printed_author(author: str | None, lines: Sequence[str], body_end: int | None) -> str | None:
    """The extractor's author if the page prints it by the article (not only in
    a meta tag, which often names the site, nor under a related article)."""
    author = clean_author(author)
    if not author or body_end is None:
        return None
    key = fold(author.split(";")[0].split(",")[0])
    if key and any(key in fold(line) for line in lines[: body_end + _BYLINE_AFTER]):
        return author
    return None


# --------------------------------------------------------------------------- outlet and author

# Separators between the title and the section or site name in <title>.
_SITE_SEP = re.compile(r"\s+[|–—•·-]\s+")
_COPYRIGHT = re.compile(
    r"^(?:©|\(c\)|copyright)\s*(?:copyright\s*)?(?:\d{4}(?:\s*[-–]\s*\d{4})?\s*)?(?P<holder>.+?)"
    r"(?:\s*\d{4}(?:\s*[-–]\s*\d{4})?)?(?:\s+[-–|]\s.*|[,.]\s.*|\.)?$",
    re.IGNORECASE,
)
_NAME_WORDS = 5
_FOOT_SHARE = 0.75  # a copyright line in the last quarter of the page is the site's
_BYLINE = re.compile(r"^(?:par|by|auteure?\(?s?\)?|author)\b\s*:?\s*", re.IGNORECASE)


def fold(text: str) -> str:
    """Comparison key: case, accents, punctuation and spacing ignored."""
    text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return " ".join(_WORD.findall(text.lower()))


def _letters(text: str) -> str:
    return fold(text).replace(" ", "")


def _is_name(text: str) -> bool:
    words = _WORD.findall(text)
    return 1 <= len(words) <= _NAME_WORDS and len(text) <= 60


def site_name(
    lines: Sequence[str],
    head_title: str | None,
    declared: str | None = None,
    domain: str | None = None,
) -> str | None:
    """The outlet's name, from the declared site name, <title> or the copyright line.

    `lines` is the page as text (chrome included); `head_title` its <title>;
    `declared` og:site_name or the like; `domain` the host it was fetched from.
    """
    if declared and _is_name(declared) and not _looks_like_url(declared):
        return declared.strip()
    holder = _copyright_holder(lines)
    suffix = _title_suffix(head_title)
    if suffix:
        key = fold(suffix)
        others = sum(fold(line) == key for line in lines if len(line) <= 3 * len(suffix) + 10) - (
            fold(head_title or "") == key
        )
        agrees = (
            (domain is not None and _letters(suffix) in _letters(_site_label(domain)))
            or (holder is not None and (key in fold(holder) or fold(holder) in key))
            or others >= 1
        )
        if agrees:
            return suffix
    if holder:
        return holder
    if declared and _is_name(declared):
        return _bare_domain(declared)
    if domain:
        return _bare_domain(domain)
    return None


def _bare_domain(text: str) -> str:
    """ "psl.eu" of "https://www.psl.eu/"."""
    text = re.sub(r"^https?://", "", text.strip()).removeprefix("www.")
    return text.split("/")[0]


def _site_label(domain: str) -> str:
    """ "dalloz-actualite" of "www.dalloz-actualite.fr"."""
    parts = domain.lower().removeprefix("www.").split(".")
    return parts[-2] if len(parts) >= 2 else parts[0]


def _looks_like_url(text: str) -> bool:
    return bool(re.match(r"^(?:https?://|www\.)|^[\w-]+(?:\.[\w-]+)+/?$", text.strip()))


def _title_suffix(head_title: str | None) -> str | None:
    if not head_title:
        return None
    parts = [p.strip() for p in _SITE_SEP.split(head_title) if p.strip()]
    if len(parts) < 2:
        return None
    last = parts[-1]
    return last if _is_name(last) and len(last) < len(head_title) / 2 + 10 else None


def _copyright_holder(lines: Sequence[str]) -> str | None:
    """The holder of the last copyright line in the last quarter of the page."""
    start = int(len(lines) * _FOOT_SHARE)
    for line in reversed(lines[start:]):
        if len(line) > 200:
            continue
        match = _COPYRIGHT.match(line.strip())
        if match:
            holder = match.group("holder").strip(" .,-–|")
            holder = re.sub(r"^copyright\s+", "", holder, flags=re.IGNORECASE)
            if _is_name(holder):
                return holder
    return None


def clean_author(author: str | None) -> str | None:
    """An author as printed, without "Par", "By" or "Auteur :"."""
    if not author:
        return None
    author = _BYLINE.sub("", " ".join(author.split())).strip(" .,;:")
    return author or None


def record_field(record: dict[str, Any], *names: str) -> str | None:
    """The first of `names` that the record fills with a string (or a {"name": …} object)."""
    for name in names:
        value = record.get(name)
        if isinstance(value, dict):
            value = value.get("name")
        if isinstance(value, list):
            value = ", ".join(str(v.get("name") if isinstance(v, dict) else v) for v in value)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = " ".join(str(value).split())
            if text:
                return text
    return None
