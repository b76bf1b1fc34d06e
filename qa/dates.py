"""Relative dates in answers ("mercredi", "hier", "la semaine dernière",
"last Tuesday", "in two weeks") resolved against the article's publication
date: a day ("2016-01-20") or, for a week, a month or a year, a range
("2016-01-11/2016-01-17", ISO 8601's interval).

The conventions, those of news writing:
- A bare weekday ("mercredi", "on Tuesday") is the latest such day on or
  before publication: news reports what has happened, and "mercredi" in a
  Wednesday paper is that day.
- "mercredi dernier", "last Wednesday": the latest such day before the
  publication day; "mercredi prochain", "next Wednesday": the first after it;
  "ce mercredi", "this Wednesday": that day in the publication's week.
- Weeks run Monday to Sunday; "la semaine dernière" is the week before the
  publication's, "le week-end dernier" the Saturday and Sunday before its week.
- Counted back or forth ("il y a deux semaines", "in three days"), days and
  weeks give a day; months and years give that whole month or year.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta

Range = tuple[date, date]

_WEEKDAYS = {
    name: i
    for i, names in enumerate(
        [
            ("lundi", "monday"),
            ("mardi", "tuesday"),
            ("mercredi", "wednesday"),
            ("jeudi", "thursday"),
            ("vendredi", "friday"),
            ("samedi", "saturday"),
            ("dimanche", "sunday"),
        ]
    )
    for name in names
}
_COUNTS = {
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
    "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "quinze": 15, "vingt": 20,
    "trente": 30, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
_UNITS = {
    "jour": "day", "jours": "day", "day": "day", "days": "day",
    "semaine": "week", "semaines": "week", "week": "week", "weeks": "week",
    "mois": "month", "month": "month", "months": "month",
    "an": "year", "ans": "year", "annee": "year", "annees": "year", "year": "year",
    "years": "year",
}  # fmt: skip
_BEFORE = {"dernier", "derniere", "passe", "passee", "last"}
_AFTER = {"prochain", "prochaine", "next", "coming"}
_THIS = {"ce", "cet", "cette", "this"}

_DAY = "|".join(_WEEKDAYS)
_COUNT = r"\d{1,3}|" + "|".join(sorted(_COUNTS, key=len, reverse=True))
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
_MOD = "|".join(sorted(_BEFORE | _AFTER, key=len, reverse=True))


def _today(shift: int) -> Callable[[re.Match[str], date], Range]:
    return lambda m, d: (d + timedelta(shift), d + timedelta(shift))


def _weekday(m: re.Match[str], d: date) -> Range:
    mod = (m.group("pre") or m.group("post") or "").strip()
    wanted = _WEEKDAYS[m.group("day")]
    if mod in _THIS:
        day = d + timedelta(wanted - d.weekday())
    elif mod in _AFTER:
        day = d + timedelta((wanted - d.weekday() - 1) % 7 + 1)
    elif mod in _BEFORE:
        day = d - timedelta((d.weekday() - wanted - 1) % 7 + 1)
    else:  # bare, or "on Tuesday": on or before publication
        day = d - timedelta((d.weekday() - wanted) % 7)
    return day, day


def _direction(word: str) -> int:
    return -1 if word in _BEFORE else 1 if word in _AFTER else 0


def _period(m: re.Match[str], d: date) -> Range:
    unit = m.group("unit")
    unit = {"semaine": "week", "mois": "month", "an": "year", "annee": "year"}.get(unit, unit)
    return _shifted_period(unit.replace("-", ""), d, _direction(m.group("mod") or "this"))


def _shifted_period(unit: str, d: date, n: int) -> Range:
    """The week, weekend, month or year `n` of them from the one holding `d`."""
    if unit in ("week", "weekend"):
        monday = d - timedelta(d.weekday()) + timedelta(7 * n)
        if unit == "weekend":
            return monday + timedelta(5), monday + timedelta(6)
        return monday, monday + timedelta(6)
    if unit == "month":
        month = d.year * 12 + d.month - 1 + n
        year, month = divmod(month, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return date(year, month + 1, 1), date(year, month + 1, last)
    return date(d.year + n, 1, 1), date(d.year + n, 12, 31)


def _counted(sign: int) -> Callable[[re.Match[str], date], Range]:
    def resolve(m: re.Match[str], d: date) -> Range:
        raw = m.group("n")
        n = int(raw) if raw.isdigit() else _COUNTS[raw]
        unit = _UNITS[m.group("unit")]
        if unit in ("day", "week"):
            day = d + timedelta(sign * n * (7 if unit == "week" else 1))
            return day, day
        return _shifted_period(unit, d, sign * n)

    return resolve


# On folded text (lower case, no accents, straight apostrophes). A weekday
# followed by a day number ("mardi 12 janvier") is a full date, not relative.
_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str], date], Range]]] = [
    (re.compile(r"\b(?:aujourd'hui|today|ce matin|ce soir|cet apres-midi|this morning|"
                r"this afternoon|this evening|tonight)\b"), _today(0)),
    (re.compile(r"\b(?:hier|yesterday)\b"), _today(-1)),
    (re.compile(r"\b(?:avant-hier|the day before yesterday)\b"), _today(-2)),
    (re.compile(r"\b(?:demain|tomorrow)\b"), _today(1)),
    (re.compile(r"\b(?:apres-demain|the day after tomorrow)\b"), _today(2)),
    (re.compile(rf"\b(?:(?P<pre>ce|this|last|next|coming|on) )?(?P<day>{_DAY})"
                rf"(?P<post> (?:{_MOD}))?\b(?!\s*\d)"), _weekday),
    (re.compile(r"\b(?:(?:la |le |l')(?P<unit>semaine|week-end|mois|an|annee) "
                rf"(?P<mod>{_MOD})|(?:cette |ce |cet )(?P<this>semaine|week-end|mois|annee)"
                r"(?:-ci)?)\b"), lambda m, d: _this_or_period(m, d)),
    (re.compile(r"\b(?P<mod>last|next|this) (?P<unit>week|weekend|month|year)\b"), _period),
    (re.compile(rf"\b(?:il y a|voici) (?P<n>{_COUNT}) (?P<unit>{_UNIT})\b"), _counted(-1)),
    (re.compile(rf"\b(?P<n>{_COUNT}) (?P<unit>{_UNIT}) ago\b"), _counted(-1)),
    (re.compile(rf"\b(?:dans|in) (?P<n>{_COUNT}) (?P<unit>{_UNIT})\b"), _counted(1)),
]  # fmt: skip


def _this_or_period(m: re.Match[str], d: date) -> Range:
    this = m.group("this")
    if this:
        unit = {"semaine": "week", "week-end": "weekend", "mois": "month"}.get(this, "year")
        return _shifted_period(unit, d, 0)
    return _period(m, d)


class _FoldTable(dict[int, str]):
    """str.translate's table for `_fold`, filled as characters are met."""

    def __missing__(self, code: int) -> str:
        c = chr(code)
        base = unicodedata.normalize("NFD", c)[0].lower()
        if c in "’ʼ‘":
            base = "'"
        elif c.isspace():
            base = " "
        self[code] = folded = base if len(base) == 1 else c
        return folded


_FOLD = _FoldTable()


def _fold(text: str) -> str:
    """Lower case, no accents, straight apostrophes and plain spaces, one
    character for one: offsets in the result are offsets in `text`."""
    return text.translate(_FOLD)


# A word every rule needs: most sentences have none, and skip the rules.
_ANY = re.compile(
    rf"hier|demain|aujourd|today|tonight|yesterday|tomorrow|matin|soir|apres-midi|morning|"
    rf"afternoon|evening|{_DAY}|semaine|week|mois|month|\ban|annee|year|jour|day"
)


def relative_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each relative date in `text`, longest first where two overlap."""
    folded = _fold(text)
    if not _ANY.search(folded):
        return []
    found = [(m.start(), m.end()) for pattern, _ in _RULES for m in pattern.finditer(folded)]
    kept: list[tuple[int, int]] = []
    for start, end in sorted(found, key=lambda s: (s[0] - s[1], s[0])):
        if all(end <= a or b <= start for a, b in kept):
            kept.append((start, end))
    return sorted(kept)


def resolve(text: str, published: str | None) -> str | None:
    """The day or range the relative date in `text` means in an article
    published on `published` (YYYY-MM-DD): "2016-01-20" or
    "2016-01-11/2016-01-17"; None when either is missing."""
    if not published:
        return None
    try:
        day = date.fromisoformat(published)
    except ValueError:
        return None
    folded = _fold(text)
    best: tuple[int, Range] | None = None
    for pattern, rule in _RULES:
        for m in pattern.finditer(folded):
            if best is None or m.end() - m.start() > best[0]:
                try:
                    best = (m.end() - m.start(), rule(m, day))
                except (ValueError, OverflowError):  # before year 1 or after 9999
                    continue
    if best is None:
        return None
    first, last = best[1]
    return first.isoformat() if first == last else f"{first.isoformat()}/{last.isoformat()}"
