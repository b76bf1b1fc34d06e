"""Article cleaning: scraped text dumps and HTML pages to one clean body text.

Output text is NFC, one paragraph or heading per line, paragraphs separated by
a blank line, with the title and the credit line moved to metadata.

Text dumps (every text node of a page, menus included) go through a line-level
boilerplate classifier in the spirit of jusText (Pomikálek, 2011): each line is
first judged on its own (length, share of function words, sentence punctuation,
UI and form vocabulary), then short lines are judged by their neighbours, and
the article is the contiguous run of lines with the most prose in it (a maximum
sub-array over line scores, after Finn et al., 2001). Every rule is general:
nothing here names a site or a page.

HTML goes through trafilatura; its output loses lines without a letter and
the non-prose tail after the last paragraph, then goes through the same title,
credit and paragraph repairs as text (HTML_RULES; what each costs and drops on
the dev pages is in docs/cleaning.md).

Modules: `text` (normalisation, the comparison key), `lines` (judging a line
on its own), `body` (the article run, the context pass, the HTML tail),
`title` (finding the title), `repairs` (title copies, broken and repeated
paragraphs, the credit line); the entry points `clean_text` and `clean_html`
and their `Cleaned` record are here.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from ..metadata import html_metadata, site_name
from ..publication_date import dateline
from .body import drop_early_copies, main_run, revise, trim_tail
from .lines import Kind, classify
from .repairs import finish
from .text import WORD, normalize
from .title import find_title, html_title

__all__ = ["HTML_RULES", "Cleaned", "clean_html", "clean_text", "normalize"]


@dataclass(frozen=True)
class Cleaned:
    """The result of cleaning one page."""

    title: str | None  # the article title, found once (None if none)
    text: str  # NFC, one paragraph or heading per line, blank line between
    credit: str | None  # "agences et rédaction" from "Source : agences et rédaction"
    date: str | None = None  # publication date, YYYY-MM-DD (qa.publication_date)
    url: str | None = None
    source: str | None = None  # the outlet
    author: str | None = None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in normalize(text).split("\n") if line.strip()]


def clean_text(raw: str) -> Cleaned:
    """Clean a scraped text page: chrome dropped, title and credit to metadata."""
    lines = _lines(raw)
    if not lines:
        return Cleaned(title=None, text="", credit=None)
    judged = drop_early_copies([classify(line) for line in lines])
    start, end = main_run(judged)
    if start == end:
        return Cleaned(title=find_title(lines, len(lines)), text="", credit=None)
    title = find_title(lines, start)
    kinds = revise([line.kind for line in judged[start:end]])
    kept = [lines[start + i] for i, kind in enumerate(kinds) if kind is Kind.GOOD]
    text, credit = finish(kept, title, lines[end:])
    return Cleaned(
        title=title,
        text=text,
        credit=credit,
        date=dateline(lines, title, start),
        source=site_name(lines, lines[0]),
    )


# "<h3><span class="keyword">Agriculture</span>L'Office fédéral…": a label
# that CSS lays out apart (a kicker, a category) is glued to the next word in
# the markup. A lower-case letter closing an inline element right before a
# capital never joins one word to the next in prose, so the label gets its
# own line (a drop cap, "<b>L</b>e", is upper-case then lower-case: untouched).
_GLUED_LABEL = re.compile(
    r"(?<=[a-zà-öø-ÿ])(</(?:span|a|b|strong|em|i|small|time|label)>)(?=[A-ZÀ-ÖØ-Þ])"
)


# What clean_html does to trafilatura's output, by name, so that
# scripts/eval_cleaning.py can measure each one's cost in article text on the
# dev pages (docs/cleaning.md). A rule stays only if it dropped chrome on
# several pages and article text on none; the furniture classifier of text
# dumps is not among them: it cost headings and short paragraphs.
HTML_RULES = (
    "glued-labels",  # a CSS-separated label gets its own line (drops nothing)
    "letterless",  # lines without a letter: scores, separators
    "title-line",  # the title heading moves to metadata
    "tail",  # the non-prose run after the last paragraph (forms, footers, datelines)
    "title-copies",  # copies of the title, whole or spliced into a sentence
    "rejoin",  # a paragraph broken mid-sentence is joined (drops nothing)
    "dedupe",  # the earlier copy of a paragraph printed twice
    "credit",  # a "Source : AFP" line moves to metadata
)


def clean_html(html: str, url: str | None = None, rules: Collection[str] = HTML_RULES) -> Cleaned:
    """Clean an HTML page with trafilatura (main text and metadata), then repair it."""
    import trafilatura  # heavy import, only needed for HTML

    doc = trafilatura.bare_extraction(
        _GLUED_LABEL.sub(r"\1<br>", html) if "glued-labels" in rules else html,
        url=url,
        include_comments=False,
        include_tables=True,
        with_metadata=True,
    )
    if doc is None:
        return Cleaned(title=None, text="", credit=None, url=url)
    lines = _lines(getattr(doc, "text", None) or "")
    if "letterless" in rules:
        lines = [line for line in lines if WORD.search(line)]
    title, first_is_title = html_title(getattr(doc, "title", None), lines[0] if lines else None)
    if first_is_title and "title-line" in rules:
        lines = lines[1:]
    tail: list[str] = []
    if "tail" in rules:
        lines, tail = trim_tail(lines)
    text, credit = finish(lines, title, tail, rules)
    page_url = getattr(doc, "url", None) or url
    date, source, author = html_metadata(
        html,
        title,
        lines,
        getattr(doc, "sitename", None),
        page_url,
        getattr(doc, "author", None),
    )
    return Cleaned(
        title=title,
        text=text,
        credit=credit,
        date=date,
        url=page_url,
        source=source,
        author=author,
    )
