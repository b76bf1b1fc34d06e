"""Sentence segmentation for French and English with exact offsets.

A sentence ends at `.`, `!`, `?` or `…` (plus any closing quotes or brackets)
when the next word starts a new sentence, and always at a line break: the
cleaner puts each paragraph and heading on its own line.
"""

from __future__ import annotations

import re

from .records import Sentence

# Tokens that end with a dot but do not end a sentence. Lower-cased, no dot.
ABBREVIATIONS = frozenset(
    """
    m mm mme mmes mlle mlles dr drs pr prof me mgr st ste sts stes gén gal col cdt lt sgt
    cie ets av bd boul fig vol chap art al cf ex env éd p pp n no nº vs approx max min mr
    mrs ms jr sr inc ltd co corp dept est univ gov sen rep rev hon e.g i.e jan fév févr janv
    avr juil sept oct nov déc feb mar apr jun jul aug sep dec
    """.split()
)

# A candidate end: terminal punctuation, closing quotes/brackets, then spaces.
# French puts a (no-break) space before a closing guillemet: "gagnerons. » Puis".
# It starts only where a run of punctuation starts: a match can only start
# there anyway, and trying every dot of a long run of dots would be quadratic.
_END = re.compile(r"(?<![.!?…])([.!?…]+)((?:\s?[\"'»”’)\]])*)(\s+)")
# What may open a sentence: a capital, a digit, an opening quote or a dash.
_OPENER = re.compile(r"[\"«“‘(\[\-–—¿¡]*\s*[A-ZÀ-ÖØ-Þ0-9ŒÆ]")
_LINE = re.compile(r"[^\n]+")
_HEADING_MAX_WORDS = 14


def _token_before(text: str, dot_at: int) -> str:
    """The run of non-space characters that ends at `dot_at` (or at the line
    break just before it), found by walking back from the dot: searching for it
    from the start of the text made splitting quadratic in the text's length.
    Each walk stops at the space before the dot's word, so all walks together
    read the text about once."""
    end = dot_at - 1 if dot_at > 0 and text[dot_at - 1] == "\n" else dot_at
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end]


def _is_abbreviation(text: str, dot_at: int) -> bool:
    """True when the dot at `dot_at` closes an abbreviation or an initial."""
    raw = _token_before(text, dot_at).lstrip("\"'«“(‘[")
    token = raw.lower()
    if not token:
        return False
    if len(raw) == 1:  # an initial ("J. Kerry") is a capital; "Il y en a." ends a sentence
        return raw.isupper()
    # "n°." style tokens and dotted abbreviations like "e.g" or "U.S"
    if token in ABBREVIATIONS or token.rstrip(".") in ABBREVIATIONS:
        return True
    return bool(re.fullmatch(r"(?:[^\W\d_]\.)+[^\W\d_]", token))


def _split_line(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    begin = start
    for m in _END.finditer(text, start, end):
        punct = m.group(1)
        next_at = m.end()
        if next_at >= end:
            break
        if not _OPENER.match(text, next_at):
            continue
        if punct == "." and _is_abbreviation(text, m.start(1)):
            continue
        spans.append((begin, m.start(3)))
        begin = next_at
    spans.append((begin, end))
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _looks_like_heading(line: str) -> bool:
    stripped = line.rstrip()
    return (
        bool(stripped)
        and stripped[-1] not in '.!?…:;,»"”)'
        and len(stripped.split()) <= _HEADING_MAX_WORDS
    )


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of `text` in order; `text[s.start:s.end] == s.text` for each.

    A line with no terminal punctuation and few words is kept whole and marked
    as a heading, so it is never glued to the sentence that follows.
    """
    sentences: list[Sentence] = []
    for line in _LINE.finditer(text):
        line_start, line_end = _strip(text, line.start(), line.end())
        if line_start == line_end:
            continue
        heading = _looks_like_heading(text[line_start:line_end])
        for a, b in _split_line(text, line_start, line_end):
            a, b = _strip(text, a, b)
            if a < b:
                sentences.append(Sentence(a, b, text[a:b], heading=heading))
    return sentences
