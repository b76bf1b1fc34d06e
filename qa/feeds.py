"""Reading RSS 2.0, RSS 1.0 (RDF) and Atom feed files into Articles.

Each item becomes one article: its title, link (`url`), publication date,
outlet (`source`: the item's own <source>, else the feed's title), author, and
its text: the full content when the feed carries it (RSS content:encoded, Atom
<content>), else its summary (RSS <description>, Atom <summary>). An article
made from a summary says so in its title, "(résumé)" or "(summary)" by its
language: a reader of a citation then knows the outlet's full article may say
more, and the mark is stored, listed and cited wherever the title is, with no
change to the index format.

An item's id comes from its guid (else its link, else its title and date), not
from its text, so adding the same feed again adds nothing, and an item whose
content changed replaces its old version (same id, other text: see
`qa.indexing.add`). Its `origin` is the feed file and that key, so that one
feed file's items never replace each other.

Feed content is HTML the outlet's CMS wrote for the article alone, without
page chrome: it is turned into paragraphs (block elements and <br> end one;
scripts, styles, forms and embeds are dropped) and normalised, not put through
the page cleaner (trafilatura drops short fragments whole, and costs ~10x the
encoder's time per item).
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import re
from pathlib import Path
from typing import Any

from .clean import normalize
from .errors import (
    ArticleEmpty,
    ArticleTooLarge,
    InputError,
    InvalidRecord,
    UnknownFormat,
    Unreadable,
)
from .lang import detect_language
from .records import Article

FEED_SUFFIXES = (".rss", ".atom", ".xml")
SUMMARY_MARKS = {"fr": "(résumé)", "en": "(summary)"}

# After an optional BOM, XML declaration, comments, processing instructions and
# doctype: the root element, maybe prefixed (rdf:RDF).
_PROLOG = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.S | re.I)
_ROOT = re.compile(r"\s*<(?:[\w.-]+:)?(rss|feed|RDF)[\s>/]")
_HEAD_BYTES = 4096

# Block elements end a paragraph; the others are inline.
_BLOCKS = frozenset(
    "p div li ul ol h1 h2 h3 h4 h5 h6 blockquote pre table tr td th dd dt dl "
    "section article header footer aside figcaption hr br".split()
)
# Not the article's prose: code, widgets, and figures (an image and its caption).
_SKIP = frozenset("script style noscript iframe object embed form button select svg figure".split())


def looks_like_feed(path: Path) -> bool:
    """Whether the file's root element is <rss>, <feed> or <rdf:RDF>, whatever its name."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError:
        return False  # the reader says why
    return _root_is_feed(head)


def _root_is_feed(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    else:
        # Tag names are ASCII in every encoding an XML file may declare but UTF-16.
        text = head.decode("latin-1").removeprefix("ï»¿")
    at = 0
    while match := _PROLOG.match(text, at):
        at = match.end()
    return _ROOT.match(text, at) is not None


def read_feed(path: Path, max_bytes: int) -> tuple[list[Article], list[InputError]]:
    """The articles of a feed file, and the errors of items that were skipped.

    Raises an InputError naming the file when it is not a feed or has no item
    that can be read.
    """
    import feedparser  # only needed for feeds

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    # The HTML is ours to read (below), URLs are kept as written: both off, they
    # would cost more than the rest of the reading.
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.version and not parsed.entries:
        why = f" ({parsed.bozo_exception})" if parsed.get("bozo") else ""
        raise UnknownFormat(f"{path}: not an RSS or Atom feed{why}.")
    outlet = _clean_line(_plain(parsed.feed.get("title_detail"))) or None
    articles: list[Article] = []
    errors: list[InputError] = []
    for i, entry in enumerate(parsed.entries):
        try:
            articles.append(_item(entry, outlet, path, i, max_bytes))
        except InputError as exc:
            errors.append(exc)
    if not articles:
        if errors:
            raise (
                errors[0]
                if len(errors) == 1
                else InvalidRecord(
                    f"{path}: none of its {len(errors)} items could be read; first: {errors[0]}"
                )
            )
        raise ArticleEmpty(f"{path}: a feed with no items.")
    return articles, errors


def _item(entry: Any, outlet: str | None, path: Path, i: int, max_bytes: int) -> Article:
    key = entry.get("id") or entry.get("link") or None
    where = f"{path}#{key}" if key else f"{path}[{i}]"
    content = [c for c in entry.get("content") or [] if (c.get("value") or "").strip()]
    detail = content[0] if content else entry.get("summary_detail")
    raw = (detail or {}).get("value") or ""
    if len(raw) > max_bytes // 4 and len(raw.encode("utf-8")) > max_bytes:
        raise ArticleTooLarge(
            f"{where}: {len(raw.encode('utf-8')):,} bytes, over the {max_bytes:,} an article "
            "may have; skipped. Raise the limit (--max-article-bytes, QA_MAX_ARTICLE_BYTES)."
        )
    text = _plain(detail)
    if not text:
        raise ArticleEmpty(f"{where}: the item has no content and no summary.")
    lang = detect_language(text)
    date = _date(entry)
    title = _clean_line(_plain(entry.get("title_detail"))) or _first_words(text)
    if not content:
        title = f"{title} {SUMMARY_MARKS.get(lang, SUMMARY_MARKS['en'])}"
    source = entry.get("source") or {}
    link = entry.get("link") or ""
    return Article(
        id=_item_id(key or f"{title}\n{date}\n{text}"),
        title=title,
        text=text,
        lang=lang,
        url=link if link.startswith(("http://", "https://")) else None,
        date=date,
        origin=where,
        source=_clean_line(source.get("title") or "") or outlet,
        author=_author(entry),
    )


def _item_id(key: str) -> str:
    """Stable across re-reads of the feed: from the item's guid or link, not its text."""
    return hashlib.sha256(f"feed item\n{key}".encode()).hexdigest()[:16]


def _author(entry: Any) -> str | None:
    detail = entry.get("author_detail") or {}
    return _clean_line(detail.get("name") or entry.get("author") or "") or None


def _date(entry: Any) -> str | None:
    """The publication date (else the last update) as the outlet wrote it.

    The day is read in the time zone the date was written in: feedparser's
    parsed dates are in UTC, which moves an item published at 00:30 in Paris
    to the day before.
    """
    for name in ("published", "updated"):
        written = (entry.get(name) or "").strip()
        if not written:
            continue
        day = _written_day(written)
        if day is None and entry.get(f"{name}_parsed"):
            day = datetime.date(*entry[f"{name}_parsed"][:3])
        if day is not None:
            return day.isoformat()
    return None


def _written_day(written: str) -> datetime.date | None:
    try:
        return email.utils.parsedate_to_datetime(written).date()  # RSS: RFC 822
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return datetime.datetime.fromisoformat(written.replace("Z", "+00:00")).date()  # Atom
    except ValueError:
        return None


def _plain(detail: Any) -> str:
    """The text of a feed field: HTML made paragraphs, plain text normalised."""
    if not detail:
        return ""
    value = detail.get("value") or ""
    if "html" in (detail.get("type") or "") and "<" in value:
        value = html_text(value)
    lines = (_clean_line(line) for line in normalize(value).split("\n"))
    return "\n\n".join(line for line in lines if line)


def _clean_line(text: str) -> str:
    return " ".join(normalize(text).split())


def html_text(fragment: str) -> str:
    """An HTML fragment as text, one line per block (paragraph, heading, item)."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return re.sub(r"<[^>]*>", " ", fragment)
    out: list[str] = []
    try:
        _walk(root, out)
    except RecursionError as exc:
        raise InvalidRecord("HTML nested too deeply.") from exc
    return "".join(out)


def _walk(element: Any, out: list[str]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""  # comments: no tag
    if tag and tag not in _SKIP:
        block = tag in _BLOCKS
        if block:
            out.append("\n")
        if element.text:
            out.append(element.text)
        for child in element:
            _walk(child, out)
        if block:
            out.append("\n")
    if element.tail:
        out.append(element.tail)


def _first_words(text: str, n: int = 10) -> str:
    words = text.split()
    return " ".join(words[:n]) + (" …" if len(words) > n else "")
