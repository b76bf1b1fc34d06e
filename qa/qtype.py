"""What kind of answer a question asks for, and where such answers sit in a
sentence: dates, times, numbers, people, places.

Patterns, not a model: they are cheap, predictable and cover the question
words of French and English news questions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence, Set
from dataclasses import dataclass

from .dates import relative_spans
from .lexical import fold, words

DATE, TIME, NUMBER, PERSON, PLACE = "date", "time", "number", "person", "place"

# Order matters: the more specific question words first.
_QUESTION_TYPES: list[tuple[str, re.Pattern[str]]] = [
    (TIME, re.compile(r"\b(à quelle heure|a quelle heure|what time|at what time)\b", re.I)),
    (
        DATE,
        re.compile(
            r"\b(quand|depuis quand|jusqu'à quand|en quelle année|en quel siècle|quelle année|"
            r"quelle date|à quelle date|à quelle époque|de quelle année|en quel mois|quel jour|"
            r"when|what year|which year|what date|what day|in what century|since when)\b",
            re.I,
        ),
    ),
    (
        NUMBER,
        re.compile(
            r"\b(combien|quel nombre|quelle quantité|quel pourcentage|quelle proportion|"
            r"quel montant|quel âge|quelle superficie|quelle distance|quelle taille|"
            r"how many|how much|how old|how long|what number|what percentage|what proportion|"
            # "Quel est le montant de l'amende ?", "What was the cost…": an
            # amount of money ("le prix Goncourt" is a prize, not a price)
            r"quel(?:le)?\s+(?:est|était|sera|fut)\s+(?:le|la|l['’])\s*"
            r"(?:montant|coût|salaire|budget|prix(?!\s+[A-ZÀ-Þ]))|"
            r"what\s+(?:is|was|will be)\s+the\s+(?:amount|cost|salary|budget|price))\b",
            re.I,
        ),
    ),
    (
        PERSON,
        # "qui" asks for a person at the start or after a preposition; in
        # "qu'est-ce qui" or "les empires qui" it is a relative pronoun.
        re.compile(
            r"^\W*(qui|who|whom|whose)\b|\b(par|à|a|avec|de|pour|contre|chez|to|by|with|for) "
            r"(qui|whom)\b",
            re.I,
        ),
    ),
    (
        PLACE,
        re.compile(
            r"(^|\s)(où|d'où|par où|where|in which (country|city|town|region)|"
            r"dans quel(le)? (pays|ville|région|lieu|département|continent)|"
            r"en quel lieu|quel pays|quelle ville|which country|which city)\b",
            re.I,
        ),
    ),
]

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


# "Qui est Maria Kirilenko ?", "Who was Ashton Carter?": a question that is
# only a name after "who is" asks what that person is (a role, a description),
# not for another person's name. "Qui était Premier ministre avant X ?" goes
# on after the capitalised words, so it still asks for a person.
_NAME_WORD = r"(?:[A-ZÀ-ÖØ-Þ][\w'’.\-]*|[IVX]+|\d+(?:er|e)?|de|d'|du|des|von|van|da|del|bin|ben|al)"
_WHO_IS_NAME = re.compile(
    rf"^\W*(?i:qui|who)\s+(?i:est|était|fut|sont|étaient|is|was|are|were)\s+"
    rf"[A-ZÀ-ÖØ-Þ][\w'’.\-]*(?:\s+{_NAME_WORD})*\s*\??\s*$"
)


# What a number must measure when the question names the measure: a price is
# money, "combien de temps" a duration. A number of another measure ("61 %"
# for "Combien coûte…") is then no answer, and the unit after a number that
# has it ("1,5 million d'euros", "quatre ans") is part of the answer.
MONEY, DURATION, SHARE, AGE, LENGTH, AREA = "money", "duration", "share", "age", "length", "area"
_MEASURE_QUESTIONS: list[tuple[str, re.Pattern[str]]] = [
    (
        MONEY,
        re.compile(
            r"\b(co[uû]t\w*|prix|montant|budget|salaire|how much money|cost\w*|price\w*)\b", re.I
        ),
    ),
    (
        DURATION,
        re.compile(
            r"\b(combien de temps|quelle durée|how long|how many (years|months|days))\b", re.I
        ),
    ),
    (
        SHARE,
        re.compile(
            r"\b(quel pourcentage|quelle proportion|quelle part|what percentage|what proportion|"
            r"what share)\b",
            re.I,
        ),
    ),
    (AGE, re.compile(r"\b(quel âge|how old)\b", re.I)),
    (LENGTH, re.compile(r"\b(quelle distance|quelle longueur|how far)\b", re.I)),
    (AREA, re.compile(r"\b(quelle superficie|quelle surface|what area)\b", re.I)),
]
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


# "Combien de matchs…", "How many countries…": the thing counted, in the
# two words after it. French puts the noun first ("combien de formes
# différentes"), English last ("how many city officials", "how many US
# presidents"), and "how many people live…" has no end a pattern can see:
# either word may be the noun.
_COUNTED = re.compile(
    r"\b(?:combien\s+(?:de|d['’])|how\s+many)\s*([^\W\d_][\w'’-]*)(?:\s+([^\W\d_][\w'’-]*))?",
    re.I,
)


def counted_words(question: str) -> tuple[str, ...]:
    """The words (lower-cased) that may name what a "how many" question
    counts, nearest first; none for other questions."""
    found = _COUNTED.search(question)
    return tuple(w.lower() for w in found.groups() if w) if found else ()


def question_measure(question: str) -> str | None:
    """What a number-asking question wants measured (MONEY, DURATION…), or None."""
    if question_type(question) != NUMBER:
        return None
    for measure, pattern in _MEASURE_QUESTIONS:
        if pattern.search(question):
            return measure
    return None


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


# Words of a name that say nothing of who it is: particles and titles.
_NOT_NAMES = frozenset(
    "de du des d la le les von van da del di y et and mme mlle m mr mrs ms dr madame monsieur "
    "mademoiselle docteur saint sainte st roi reine pape prince princesse duc duchesse comte "
    "comtesse general president sir lord lady king queen pope".split()
)


_CAPITALISED_RUN = re.compile(
    r"[A-ZÀ-ÖØ-Þ][\w-]*(?:\s+(?:(?:de|d['’]|du|von|van)\s*)?[A-ZÀ-ÖØ-Þ0-9][\w-]*)*"
)


def names_of(span: str) -> set[str]:
    """The folded capitalised words (and numbers) of `span`, but particles and titles."""
    return {fold(w) for w in re.findall(r"\b[A-ZÀ-ÖØ-Þ0-9][\w-]*", span)} - _NOT_NAMES


def question_names(question: str) -> list[set[str]]:
    """The names in `question` (runs of capitalised words after its first
    word), each as the set of its `names_of` words."""
    first = re.match(r"\W*\w+", question)
    rest = question[first.end() :] if first else question
    names = [names_of(m.group(0)) for m in _CAPITALISED_RUN.finditer(rest)]
    return [n for n in names if n]


def question_type(question: str) -> str | None:
    """The answer type a question asks for, or None when it is open: that of
    its first question word ("How many cases… when he was called back?" asks
    for a number), the more specific kind where two start at one word."""
    if _WHO_IS_NAME.match(question):
        return None
    q = question
    starts = [(m.start(), i) for i, (_, p) in enumerate(_QUESTION_TYPES) if (m := p.search(q))]
    return _QUESTION_TYPES[min(starts)[1]][0] if starts else None


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
