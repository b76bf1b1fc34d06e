"""Where answers of a kind sit in a sentence: the spans that look like
dates, times, numbers (with the unit of a measure), people and places.

Patterns, not a model, as the question's kind (qa/qtype.py) they answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence, Set
from dataclasses import dataclass

from .dates import relative_spans
from .lexical import fold, words
from .qtype import (
    AGE,
    AREA,
    DATE,
    DURATION,
    LENGTH,
    MONEY,
    NUMBER,
    PERSON,
    PLACE,
    SHARE,
    TIME,
    names_of,
)

_MONTHS = (
    r"janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|"
    r"décembre|decembre|january|february|march|april|may|june|july|august|september|october|"
    r"november|december"
)
_DAYS = (
    r"lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
)
_NUMBER_WORDS = (
    r"un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|"
    r"seize|vingt|trente|quarante|cinquante|soixante|cent|cents|mille|millier|milliers|million|millions|milliard|"
    r"milliards|dizaine|dizaines|centaine|centaines|one|two|three|four|five|six|seven|eight|nine|"
    r"ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|hundreds|thousand|thousands|million|"
    r"millions|billion|billions|dozen|dozens"
)

# Number words that count in bulk, which "des", "plusieurs" or another such
# word may come before or after: "des dizaines de milliers".
_LARGE = r"(?:dizaines|centaines|milliers|millions|milliards|dozens|hundreds|thousands|billions)\b"

_TIME_SPAN = re.compile(
    r"\b\d{1,2}\s?[hH:]\s?\d{0,2}(?:\s?(?:GMT|UTC|heure locale))?(?![\w])"
    r"|\b\d{1,2}\s?(?:a\.m\.|p\.m\.|am|pm)(?![\w])"
    # "à 16 heures", "16 heures 30", "at 4 o'clock", "à midi"
    r"|\b\d{1,2}\s(?:heures?(?:\s\d{1,2}(?![\w]))?|o'clock)(?:\s(?:GMT|UTC))?(?![\w])"
    r"|\b(?:à|at)\s(?:midi|minuit|noon|midnight)\b",
    re.I,
)
_DATE_SPAN = re.compile(
    rf"\b(?:(?:le |the )?(?:{_DAYS})\s)?(?:\d{{1,2}}(?:er)?\s(?:{_MONTHS})(?:\s\d{{3,4}})?|"
    rf"(?:{_MONTHS})\s\d{{1,2}}(?:,\s\d{{4}})?|(?:en |in )?(?:{_MONTHS})\s\d{{4}}|"
    rf"(?:l'été|l'hiver|le printemps|l'automne|summer|winter|spring|autumn)\s\d{{4}}|"
    # decades: "dans les années 1820", "les années 30", "in the 1960s"
    rf"(?:(?:dans |depuis |durant |pendant )?les années (?:1[0-9]{{3}}|20[0-9]{{2}}|[1-9]0)|"
    rf"(?:in |during )?the (?:1[0-9]{{3}}|20[0-9]{{2}})s)|"
    # a year, with what it bounds: "jusqu'en 1985", "à partir de 1990"
    rf"(?:en |in |depuis |since |dès |vers |jusqu'en |jusqu’en |à partir de |avant |après |"
    rf"from |until |around )?(?:1[0-9]{{3}}|20[0-9]{{2}})|"
    rf"(?:au |dès le |depuis le |à partir du |au début du |à la fin du |au milieu du )?"
    rf"(?:[IVXL]+|\d+)e\ssiècle|"
    rf"(?:{_DAYS})|fin (?:{_MONTHS})|(?:{_MONTHS}))\b",
    re.I,
)
_NUMBER_SPAN = re.compile(
    rf"\b(?:\d[\d\s.,]*\d|\d)(?:\s?(?:%|(?:km|m|kg|ans|années|mois|jours|heures|euros|dollars|millions?|milliards?)(?![\w-])))?|"
    # "une dizaine", "un million", "des dizaines de milliers", "plusieurs millions"
    rf"\b(?:(?:des|plusieurs|quelques|several|a few|many)\s(?={_LARGE}))?(?:une?\s)?"
    rf"(?:{_NUMBER_WORDS})(?:(?:\s|-|\set\s|-et-)(?:{_NUMBER_WORDS})(?![\w-]))*"
    rf"(?:\s(?:de|of)\s(?:{_LARGE})\b)?\b",
    re.I,
)
_CAPITALISED = r"[A-ZÀ-ÖØ-Þ][\w'’\-]+"
_PERSON_SPAN = re.compile(
    rf"\b{_CAPITALISED}(?:\s(?:de\s|d'|van\s|von\s|da\s|du\s)?{_CAPITALISED})+"
)
_PLACE_SPAN = re.compile(
    rf"\b(?:à|au|aux|en|dans|vers|at|in)\s(?:(?:le|la|les|l'|the)\s?)?{_CAPITALISED}(?:\s(?:de\s|du\s|des\s)?{_CAPITALISED})*"
)
_SENTENCE_OPENERS = frozenset(
    "le la les l un une des ce cette ces il elle ils elles en au aux dans pour par sur the a an "
    "this that these those he she it they in on at for by "
    # conjunctions and adverbs that open sentences: "Si Mme de Montespan…"
    "si mais et ou donc or puis alors ainsi selon après avant depuis lors quand comme dès "
    "if but and or so then when after before as since".split()
)
_ARTICLE_BEFORE = re.compile(r"(?:\b(?:la|le|les|du|des|the)\s|\bl['’])$", re.I)
_SPAN_PATTERNS = {
    TIME: _TIME_SPAN,
    DATE: _DATE_SPAN,
    NUMBER: _NUMBER_SPAN,
    PERSON: _PERSON_SPAN,
    PLACE: _PLACE_SPAN,
}


# The units that say a number is of a measure the question asks for
# (qa.qtype.question_measure): "30 euros" is money, "quatre ans" a duration.
_UNITS = {
    MONEY: r"€|\$|£|¥|euros?|dollars?|francs?|livres?|pounds?|yuans?|yens?|roubles?|EUR|USD|CHF",
    DURATION: r"secondes?|minutes?|heures?|jours?|semaines?|mois|ans|années?|siècles?|décennies|"
    r"seconds?|hours?|days?|weeks?|months?|years?|decades?|centuries|century",
    SHARE: r"%|pour ?cent|percent|per cent",
    AGE: r"ans|years?(?: old)?|year-old",
    LENGTH: r"km|m|cm|mm|mètres?|kilomètres?|miles?|années-lumière|light-years?|feet|foot|pieds",
    AREA: r"km²|km2|m²|m2|hectares?|ha|acres?|square (?:kilo)?met(?:er|re)s|square miles",
}
# The unit right after the number ("30 euros", "deux millions de dollars",
# "six années"), or a currency sign right before it ("$30", "€ 5").
_UNIT_AFTER = {
    m: re.compile(rf"\s?(?:(?:de|d'|d’|of)\s?)?(?:{u})(?![\w])", re.I) for m, u in _UNITS.items()
}
# ...or that ends the number's span already ("30 euros", "80 %").
_UNIT_END = {m: re.compile(rf"(?<![\w])(?:{u})$", re.I) for m, u in _UNITS.items()}
_SIGN_BEFORE = re.compile(r"[€$£¥]\s?$")
_RATIO_IN = re.compile(r"\s(?:sur|out of)\s", re.I)


@dataclass(frozen=True)
class Span:
    start: int  # offsets in the sentence
    end: int
    text: str


def typed_spans(sentence: str, kind: str) -> list[Span]:
    """Spans of `sentence` that look like answers of `kind`."""
    return list(_typed_spans(sentence, kind))


# The same sentences are candidates to many questions (~0.05 ms each a kind).
@functools.lru_cache(maxsize=16384)
def _typed_spans(sentence: str, kind: str) -> tuple[Span, ...]:
    pattern = _SPAN_PATTERNS[kind]
    spans = []
    for m in pattern.finditer(sentence):
        start = m.start()
        text = m.group(0).rstrip(" ,.")
        if kind == PERSON and start == 0 and text.split()[0].lower() in _SENTENCE_OPENERS:
            # A capitalised article or pronoun opening the sentence is no name.
            text = text.split(maxsplit=1)[1] if len(text.split()) > 2 else ""
            start = m.end() - len(m.group(0)) + m.group(0).find(text) if text else start
        words = text.split()
        if (
            kind == PERSON
            and len(words) == 3
            and all(w[0].isupper() for w in words)
            and _ARTICLE_BEFORE.search(sentence[:start])
        ):
            # "à la Défense Ashton Carter", "le Père Manuel Álvares": after an
            # article, a capitalised word then a two-word name is a title or a
            # thing (a ministry) before the person. Longer runs are left whole.
            start, text = start + len(words[0]) + 1, text[len(words[0]) + 1 :]
        if text:
            spans.append(Span(start, start + len(text), text))
    if kind == NUMBER:
        # "une université", "un fils": in French these are articles far more
        # often than counts ("une dizaine" is one span, kept).
        spans = [s for s in spans if s.text.lower() not in ("un", "une")]
        # A number word with a capital inside a sentence is part of a name:
        # "la guerre de Cent Ans", "les Trois Glorieuses".
        spans = [s for s in spans if s.start == 0 or not s.text[0].isupper()]
    if kind == DATE:
        # "hier", "mardi prochain", "il y a deux semaines": dates once the
        # article's date is known (qa.dates), each one span, whole.
        relative = [Span(a, b, sentence[a:b]) for a, b in relative_spans(sentence)]
        spans = [s for s in spans if not any(_overlap(s, r) for r in relative)]
        spans = sorted(spans + relative, key=lambda s: s.start)
    if kind in (PERSON, PLACE):
        return tuple(_join(sentence, spans, _LIST_GLUE))
    return tuple(_join(sentence, spans, _RATIO_GLUE, _YEAR) if kind == NUMBER else spans)


# "John Kerry et Sergueï Lavrov" is one answer, not two.
_LIST_GLUE = re.compile(r"\s*(?:,|et|and|&|ou|or)\s*")
# "huit véhicules sur dix", "9 out of 10": one proportion, not two numbers...
_RATIO_GLUE = re.compile(r"(?:\s+[^\W\d_]+){0,2}\s+(?:sur|out of)\s+", re.I)
# ...but "en 2013 sur 52 matchs": a year is no numerator.
_YEAR = re.compile(r"1\d{3}|20\d{2}")


def _join(
    sentence: str,
    spans: list[Span],
    glue: re.Pattern[str],
    never_first: re.Pattern[str] | None = None,
) -> list[Span]:
    """`spans` with each run that `glue` links made one span; a span that
    `never_first` matches whole starts no run."""
    joined: list[Span] = []
    for span in spans:
        last = joined[-1] if joined else None
        if (
            last
            and not (never_first and never_first.fullmatch(last.text))
            and glue.fullmatch(sentence[last.end : span.start])
        ):
            joined[-1] = Span(last.start, span.end, sentence[last.start : span.end])
        else:
            joined.append(span)
    return joined


def answer_spans(
    sentence: str,
    kind: str,
    question_words: set[str],
    measure: str | None = None,
    named: Sequence[Set[str]] | None = None,
) -> list[Span]:
    """Spans of the asked-for kind (and `measure`, for numbers) that the
    question does not already contain; for people, none holding one of the
    `named` in the question (see `question_names`)."""
    spans = typed_spans(sentence, kind)
    if kind != TIME:
        # A number inside a time ("11" of "11H00") is not a count; a duration
        # ("16 heures") may be both and stays.
        times = typed_spans(sentence, TIME)
        spans = [s for s in spans if not any(part_of(s, t) for t in times)]
    if kind == NUMBER and any(c.isdigit() for s in spans for c in s.text):
        # Nor is one inside a date: "2020" of "en 2020", "12" of "le 12 mai"
        # (dates hold digits; the date pattern is the slowest, so only then).
        dates = typed_spans(sentence, DATE)
        spans = [s for s in spans if not any(part_of(s, d) for d in dates)]
    if kind == NUMBER and measure:
        spans = measured_spans(sentence, spans, measure)
    spans = [s for s in spans if not {fold(w) for w in words(s.text)} <= question_words]
    if kind == PERSON and named:
        # Someone the question already names is not who it asks about:
        # "Holly Goodhead" for "Pour qui travaille Holly ?" (but "Maria
        # Kirilenko" does answer "Qui est la fille de Yuri Kirilenko ?").
        spans = [s for s in spans if not any(n <= names_of(s.text) for n in named)]
    return spans


def _overlap(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def part_of(span: Span, whole: Span) -> bool:
    return whole.start <= span.start and span.end <= whole.end and span != whole


def measured_spans(sentence: str, spans: list[Span], measure: str) -> list[Span]:
    """The number `spans` that carry `measure`'s unit, each widened to take in
    the unit that follows it; a proportion ("huit sur dix") is a SHARE too."""
    out = []
    for span in spans:
        sign = _SIGN_BEFORE.search(sentence[: span.start]) if measure == MONEY else None
        after = _UNIT_AFTER[measure].match(sentence, span.end)
        if _UNIT_END[measure].search(span.text) or (
            measure == SHARE and _RATIO_IN.search(span.text)
        ):
            out.append(span)
        elif sign:
            out.append(Span(sign.start(), span.end, sentence[sign.start() : span.end]))
        elif after:
            out.append(Span(span.start, after.end(), sentence[span.start : after.end()]))
    return out
