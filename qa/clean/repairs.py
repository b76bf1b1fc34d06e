"""Repairs of the article's paragraphs, for text dumps and HTML alike: copies
of the title cut, paragraphs broken mid-sentence re-joined, a paragraph
printed twice kept once, the credit line moved to metadata."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from .lines import SHORT, STARTS_LOWER, ends_sentence
from .text import WORD, comparison_key

_SPLICED_MIN_WORDS = 4
# End-of-article credit lines: "Source : agences", "Sources: AFP", "Crédit : X",
# "Avec AFP", "(avec AFP)".
_CREDIT = re.compile(
    r"^\(?(?:(?:sources?|crédits?|credits?)\s*:\s*|avec\s+|with\s+)"
    r"(?P<credit>[^.!?]{2,80}?)\)?\.?$",
    re.IGNORECASE,
)
_CREDIT_AVEC = re.compile(r"^\(?(?:avec|with)\s", re.IGNORECASE)
_AGENCY = re.compile(
    r"\b(?:afp|reuters|ap|ats|belga|dpa|ansa|efe|agences?|rédaction|newsroom|staff)\b",
    re.IGNORECASE,
)


def _strip_injected_title(paragraphs: list[str], title: str | None) -> list[str]:
    """Drop copies of the title: whole lines, and copies spliced into a sentence."""
    if not title:
        return paragraphs
    key = comparison_key(title)
    out: list[str] = []
    for i, para in enumerate(paragraphs):
        if comparison_key(para) == key:
            continue
        prev = out[-1] if out else ""
        nxt = paragraphs[i + 1] if i + 1 < len(paragraphs) else ""
        out.append(_cut_spliced(para, title, prev, nxt))
    return out


def _cut_spliced(para: str, title: str, prev: str, nxt: str) -> str:
    """Remove the title where it interrupts a sentence.

    A copy comes after words that do not end a sentence (here or on the line
    before) and is followed by a lower-case continuation (here or on the next
    line): a scraping artefact, not a quotation, which would sit in quotes or
    start with a capital after a full stop.
    """
    if len(WORD.findall(title)) < _SPLICED_MIN_WORDS:
        return para  # a short title is too likely to be plain words of the text
    at = para.find(title)
    while at != -1:
        before = para[:at].rstrip()
        after = para[at + len(title) :].lstrip()
        interrupts = not ends_sentence(before) if before else bool(prev) and not ends_sentence(prev)
        continues = STARTS_LOWER.match(after or nxt)
        if interrupts and continues:
            para = f"{before} {after}".strip()
            at = para.find(title, len(before))
        else:
            at = para.find(title, at + 1)
    return para


def _rejoin(paragraphs: list[str]) -> list[str]:
    """Re-join a paragraph broken mid-sentence: no end punctuation, then lower case."""
    out: list[str] = []
    for para in paragraphs:
        if (
            out
            and not ends_sentence(out[-1])
            and STARTS_LOWER.match(para)
            and len(WORD.findall(out[-1])) >= 4  # a heading is not half a sentence
            and not out[-1].endswith(":")
        ):
            out[-1] = f"{out[-1]} {para}"
        else:
            out.append(para)
    return out


def _dedupe(paragraphs: list[str]) -> list[str]:
    """Keep one copy of a repeated paragraph, the last: teasers and captions come first."""
    folded = [comparison_key(p) for p in paragraphs]
    last = {key: i for i, key in enumerate(folded)}
    return [p for i, p in enumerate(paragraphs) if last[folded[i]] == i or len(p) < SHORT]


def _take_credit(paragraphs: list[str], after: Sequence[str]) -> tuple[list[str], str | None]:
    """Move a credit line at the end of the article (or just after it) to metadata."""
    for j in range(len(paragraphs) - 1, max(len(paragraphs) - 3, -1), -1):
        credit = _credit_of(paragraphs[j])
        if credit:
            return paragraphs[:j] + paragraphs[j + 1 :], credit
    for line in after[:2]:
        credit = _credit_of(line)
        if credit:
            return paragraphs, credit
    return paragraphs, None


def _credit_of(line: str) -> str | None:
    if len(line) > 100:
        return None
    match = _CREDIT.match(line)
    if not match:
        return None
    credit = match.group("credit").strip()
    # "Avec" opens many sentences; only "Avec AFP"-style lines are credits.
    if _CREDIT_AVEC.match(line) and not _AGENCY.search(credit):
        return None
    return credit or None


def finish(
    paragraphs: list[str],
    title: str | None,
    after: Sequence[str],
    rules: Collection[str] = ("title-copies", "rejoin", "dedupe", "credit"),
) -> tuple[str, str | None]:
    if "title-copies" in rules:
        paragraphs = _strip_injected_title(paragraphs, title)
    if "rejoin" in rules:
        paragraphs = _rejoin(paragraphs)
    if "dedupe" in rules:
        paragraphs = _dedupe(paragraphs)
    credit = None
    if "credit" in rules:
        paragraphs, credit = _take_credit(paragraphs, after)
    return "\n\n".join(paragraphs), credit
