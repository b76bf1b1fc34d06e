"""Outlet and author of an article, and `html_metadata`: the publication
date (qa/publication_date.py), outlet and author of an HTML page.

The outlet is the page's declared site name (og:site_name), else the part of
<title> after its last separator ("Title | Le Devoir") when something else on
the page agrees (the domain, the copyright line, another line), else the
holder of the copyright line at the foot of the page, else None. The author
is the extractor's when the page prints it by the article.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .publication_date import accentless_key, dateline, markup_date


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
    key = accentless_key(paragraph)
    for i in range(after, len(lines)):
        line = accentless_key(lines[i])
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
    words = accentless_key(" ".join(body[-_LAST_PARAGRAPHS:])).split()
    n = _NODE_WORDS
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    for i in range(len(lines) - 1, start, -1):
        first = accentless_key(lines[i][:200]).split()[:n]
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
    key = accentless_key(author.split(";")[0].split(",")[0])
    if key and any(key in accentless_key(line) for line in lines[: body_end + _BYLINE_AFTER]):
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
_WORD = re.compile(r"[^\W\d_]+")  # as `accentless_key` reads words
_NAME_WORDS = 5
_FOOT_SHARE = 0.75  # a copyright line in the last quarter of the page is the site's
_BYLINE = re.compile(r"^(?:par|by|auteure?\(?s?\)?|author)\b\s*:?\s*", re.IGNORECASE)


def _letters(text: str) -> str:
    return accentless_key(text).replace(" ", "")


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
        key = accentless_key(suffix)
        others = sum(
            accentless_key(line) == key for line in lines if len(line) <= 3 * len(suffix) + 10
        ) - (accentless_key(head_title or "") == key)
        agrees = (
            (domain is not None and _letters(suffix) in _letters(_site_label(domain)))
            or (
                holder is not None
                and (key in accentless_key(holder) or accentless_key(holder) in key)
            )
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
