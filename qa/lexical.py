"""Terms for lexical matching: lower-cased, stop words out, Snowball-stemmed,
accents folded. French and English text go through the same function so that
a question and a sentence meet on the same terms."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

from .lang import ENGLISH_STOPWORDS, FRENCH_STOPWORDS

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STEMMERS = {"fr": "french", "en": "english"}
_STOPWORDS = {"fr": FRENCH_STOPWORDS, "en": ENGLISH_STOPWORDS}


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower-case and strip accents: 'Défense' -> 'defense'. Cached: words repeat."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=4)
def _stemmer(lang: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMERS.get(lang, "french"))


@lru_cache(maxsize=8)
def _folded_stopwords(lang: str) -> frozenset[str]:
    words = _STOPWORDS.get(lang, FRENCH_STOPWORDS)
    return frozenset(fold(w) for w in words)


def words(text: str) -> list[str]:
    """Raw word tokens (letters and digits), lower-cased, accents kept."""
    return [w.lower() for w in _TOKEN.findall(text.replace("_", " "))]


def terms(text: str, lang: str) -> list[str]:
    """Content terms of `text`, in order, repeated as they occur."""
    stopwords = _folded_stopwords(lang)
    kept = [w for w in words(text) if fold(w) not in stopwords]
    return [fold(s) for s in _stemmer(lang).stemWords(kept)]


def content_words(text: str, lang: str) -> list[str]:
    """Distinct content words of `text`, lower-cased, accents kept, in order.

    These are what soft matching compares through word vectors; words with a
    digit are left out, since an encoder finds 1559 and 1599 alike.
    """
    stopwords = _folded_stopwords(lang)
    out = [
        w
        for w in words(text)
        if len(w) > 1 and not any(c.isdigit() for c in w) and fold(w) not in stopwords
    ]
    return list(dict.fromkeys(out))


_CAPITALISED_WORD = re.compile(r"\b[A-ZÀ-ÖØ-Þ][^\W\d_]+")


def name_stems(text: str) -> dict[str, dict[str, str]]:
    """The names of `text` (capitalised words past the first) with their term
    in each language: a name is written alike in French and English, but each
    stemmer cuts it its own way ("Aurélie": "aurel" in French, "aureli" in
    English), so a question and an article in two languages miss each other."""
    first = text.split(maxsplit=1)[0] if text.split() else ""
    stopwords = _folded_stopwords("fr") | _folded_stopwords("en")
    return {
        word: {lang: fold(_stemmer(lang).stemWord(word.lower())) for lang in _STEMMERS}
        for word in _CAPITALISED_WORD.findall(text)
        if word != first and fold(word) not in stopwords
    }
