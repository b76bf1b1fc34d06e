"""The article's title: in a text dump from <title> and the headings above
the body, in HTML from the metadata title and the page's first line."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from .lines import STOPWORDS, Kind, classify
from .text import WORD, comparison_key, normalize

_TITLE_NEAR = 15  # heading-like lines above the body where the title is looked for
_TITLE_SIMILAR = 0.2  # Jaccard similarity of content words with <title>
_TITLE_COVER = 0.7  # a heading with fewer of <title>'s words is a fragment of it
# Separators between the title and the section or site name in <title>.
_SITE_SEP = re.compile(r"\s+[|–—•·-]\s+")


def _content_words(text: str) -> set[str]:
    return {w for w in comparison_key(text).split() if len(w) > 1 and w not in STOPWORDS}


def _title_like(text: str) -> bool:
    words = WORD.findall(text)
    return (
        2 <= len(words) <= 30
        and len(text) <= 250
        and not text.endswith((".", ";", ","))
        and classify(text).kind is not Kind.BAD
    )


def _title_from_head(first: str) -> str | None:
    """<title> without the site name: its longest part between separators."""
    parts = [part.strip() for part in _SITE_SEP.split(first) if part.strip()]
    candidate = max(parts, key=len) if parts else ""
    return candidate if _title_like(candidate) else None


def find_title(lines: Sequence[str], body_start: int) -> str | None:
    """The title, from <title> and the headings above the body.

    Dumps start with <title> ("Title - Section | Site"), then print the title
    as a heading above the text, sometimes in a fuller or shorter form. The
    heading wins when it shares most words with <title>; when it is only a
    fragment of it (a team, a section) <title> wins. With no <title>, a heading
    printed twice above the body is the title.
    """
    head = _title_from_head(lines[0]) if lines else None
    head_words = _content_words(head) if head else set()
    counts = Counter(comparison_key(line) for line in lines)
    best: tuple[float, str, set[str]] | None = None
    repeated: str | None = None
    seen = 0
    for i in range(body_start - 1, 0, -1):
        text = lines[i]
        if not _title_like(text):
            continue
        seen += 1
        if seen > _TITLE_NEAR:
            break
        words = _content_words(text)
        shared = words & head_words
        similarity = len(shared) / len(words | head_words) if words else 0.0
        if len(shared) >= 2 and similarity >= _TITLE_SIMILAR:
            if best is None or similarity > best[0]:
                best = (similarity, text, words)
        elif repeated is None and counts[comparison_key(text)] >= 2:
            repeated = text
    if best is not None:
        _, text, words = best
        if words < head_words and len(words) < _TITLE_COVER * len(head_words):
            return head
        return text
    return head or repeated


def html_title(meta: str | None, first: str | None) -> tuple[str | None, bool]:
    """The title, and whether the text's first line is it (then dropped from the text).

    Metadata titles often carry the site name ("Title | Site"); the page's own
    heading, when it is one of the parts, is the cleaner form.
    """
    if not meta:
        return None, False
    title = normalize(meta).strip()
    if first is None:
        return title or None, False
    key = comparison_key(first)
    if key == comparison_key(title):
        return title, True
    if key and key in {comparison_key(part) for part in _SITE_SEP.split(title)}:
        return first, True
    return title or None, False
