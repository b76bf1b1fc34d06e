"""What kind of answer a question asks for: a date, a time, a number (and
of what measure, counting what), a person, a place; and the names it holds.

Patterns, not a model: they are cheap, predictable and cover the question
words of French and English news questions. Where such answers sit in a
sentence: qa/spans.py.
"""

from __future__ import annotations

import re

from .lexical import fold

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
