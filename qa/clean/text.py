"""Text normalisation for cleaning: a page's text to NFC with plain newlines
and no invisible characters (`normalize`), and the comparison key of a line
or paragraph (`comparison_key`)."""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that break matching and carry no meaning in news text.
# U+00A0 and U+202F are not here: before « : ; ? ! » they are French typography.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
# C0/C1 controls other than tab and newline: debris from bad decoding.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f]")
_LINE_BREAKS = re.compile("\r\n?|[\u2028\u2029\x85]")


def normalize(text: str) -> str:
    """NFC, newlines as \\n, invisible characters removed; typography left alone."""
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub("", text)
    return unicodedata.normalize("NFC", text)


WORD = re.compile(r"[^\W\d_]+")


def comparison_key(text: str) -> str:
    """Comparison key: case, punctuation and spacing ignored."""
    return " ".join(w.lower() for w in WORD.findall(unicodedata.normalize("NFKC", text)))
