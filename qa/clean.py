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

HTML goes through trafilatura, then through the same title, credit and
paragraph repair steps as text.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Cleaned:
    """The result of cleaning one page."""

    title: str | None  # the article title, found once (None if none)
    text: str  # NFC, one paragraph or heading per line, blank line between
    credit: str | None  # "agences et rédaction" from "Source : agences et rédaction"
    date: str | None = None
    url: str | None = None


# --------------------------------------------------------------------------- normalization

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


# --------------------------------------------------------------------------- line features

# Function words of French and English. Prose is dense in them (about 40 %);
# menus, tag lists and names are not. Elided forms are split off by _WORD.
_STOPWORDS = frozenset(
    """
    le la les l un une des du de d au aux à a et ou où mais donc or ni car que qu qui quoi
    dont ce cet cette ces c ça cela ceci celui celle ceux celles il ils elle elles on nous
    vous je j tu me m te t se s lui leur leurs y en ne n pas plus moins très trop peu bien
    aussi encore déjà toujours jamais son sa ses mon ma mes ton ta tes notre nos votre vos
    est sont été être était étaient sera seront serait seraient ont avait avaient avoir aura
    eu fait faire peut peuvent doit pour par sur sous dans avec sans entre vers chez depuis
    pendant avant après contre selon comme si alors ainsi tout tous toute toutes autre
    autres même mêmes quel quelle quels quelles lorsque quand comment pourquoi puis dès afin
    ici là cependant toutefois également notamment lors dont leur the an and or but of to in
    on at by for with from as is are was were be been being has have had do does did will
    would can could should may might must it its this that these those there their they them
    he she his her we our you your i not no so if than then also which who whom what when
    where while about into over after before under between through during up out more most
    such only own same very just
    """.split()
)

_WORD = re.compile(r"[^\W\d_]+")
_LETTER = re.compile(r"[^\W\d_]")
# A sentence ends with . ! ? or … possibly followed by closing quotes/brackets.
_TERMINAL = re.compile(r"[.!?…][\"'»”’)\]]*(?:\s*\([^()]{1,40}\))?$|[»”]$")
# Ends a paragraph for sure: full stop, ellipsis, colon or semicolon, maybe
# followed by closing quotes and a short parenthesis such as an agency tag.
_PROSE_END = re.compile(r"[.…:;][\"'»”’)\]]*(?:\s*\([^()]{1,40}\))?$|[»”]$")
_INNER_SENTENCE = re.compile(r"[.!?…]\s+[\"«“]?[A-ZÀ-Ý]")
_LISTING = re.compile(r"^\d{1,2}[/.:h]\d{1,2}(?:[/.]\d{2,4})?\s+\S")
_SECOND_PERSON = re.compile(r"\b(?:vous|votre|vos|you|your)\b", re.IGNORECASE)
# Form and privacy notices: they address the reader and name the form or the law.
_NOTICE = re.compile(
    r"formulaire|liste de diffusion|désabonn|désinscri|données (?:personnelles|à caractère)|"
    r"loi informatique|conformément à la loi|politique de confidentialité|privacy policy|"
    r"unsubscribe|opt[- ]out|\brgpd\b|\bgdpr\b|charte (?:des|de) commentaires|"
    r"(?:publier|modérer) (?:des |les |vos )?commentaires",
    re.IGNORECASE,
)
_STARTS_LOWER = re.compile(r"^[\"'«“(]?\s*[a-zà-öø-ÿœæ]")

# Words glued to an icon-font ligature name (material icons: "folder_open",
# "access_time") or a lowercase ligature glued to an UPPERCASE label
# ("starAJOUTER"), or several capitalised menu items glued together
# ("FacebookTwitterMail").
_UI_TOKEN = re.compile(
    r"\b[a-z]+_[a-z_]+|\b[a-z]{2,}[A-ZÀ-Ý]{2,}|(?:[A-Z][a-z]+){3,}\b|[a-z][A-Z][a-z]+_",
)
# Script or markup that leaked into the text.
_CODE = re.compile(
    r"<\/?[a-z]+[ >]|[{};]\s*$|\bfunction\s*\(|\b(?:var|let|const)\s+\w+\s*=|"
    r"\b(?:window|document)\.\w|=\s*[\"']?[\w-]+[\"']?;|https?://\S+$|^\S+@\S+\.\w+$",
)

# UI, account, sharing, form and legal vocabulary, French and English. A short
# line that uses it is page furniture; prose that mentions it in passing is not
# affected because the rule only applies to short lines.
_UI_WORDS = re.compile(
    r"\b(?:"
    r"newsletters?|infolettres?|abonn(?:ez|er|ement|é|ée)s?|s['’]abonner|désabonner|"
    r"je m['’]abonne|subscribe|unsubscribe|inscri(?:ption|vez|re)|s['’]inscrire|"
    r"(?:se\s)?(?:dé)?connect(?:er|ez|é|ée)(?:-vous)?|(?:dé)?connexion|log\s?in|log\s?out|"
    r"sign\s?(?:in|up|out)|mot de passe|password|identifiant|mon compte|my account|"
    r"e-?mails?|courriels?|adresse (?:électronique|de messagerie)|"
    r"partager|partagez|share|tweet(?:er)?|facebook|twitter|instagram|linkedin|youtube|"
    r"whatsapp|pinterest|rss|imprimer|print|envoyer (?:à|par)|"
    r"cookies?|rgpd|gdpr|confidentialité|privacy|mentions légales|cgu|cgv|"
    r"conditions (?:générales )?d['’]utilisation|terms of (?:use|service)|"
    r"plan du site|sitemap|nous contacter|contactez-nous|contact us|"
    r"publicité|advertisement|sponsoris[ée]e?|annonceurs?|"
    r"rechercher|recherche|search|menu|accueil|home|"
    r"télécharger|download|signaler|faire un don|je (?:donne|signe|soutiens)|"
    r"caractères restants|champs? obligatoires?|obligatoire|required|"
    r"votre (?:nom|adresse|email|e-mail|commentaire|message)|your (?:name|email|comment)"
    r")\b",
    re.IGNORECASE,
)
# Never article text whatever its length.
_LEGAL = re.compile(
    r"©|\(c\)\s*\d{4}|\bcopyright\b|tous droits réservés|all rights reserved|"
    r"\butilis(?:e|ons) des cookies\b|\buses cookies\b",
    re.IGNORECASE,
)
# Photo captions and credits inside the body: "X, photo: Y", "Crédits : Getty",
# "Name / Agency / AFP".
_CAPTION = re.compile(
    r"\b(?:photos?|crédits?(?: photo)?|credits?|images?|illustrations?|vidéo|video)\s*:"
    r"|^[^.!?]{0,80}\s/\s[^/]{1,40}\s/\s[^/]{1,40}$",
    re.IGNORECASE,
)
# Section headers that open what follows an article: related links, most-read
# lists, comment threads. A line that is only such a header (a count or a
# colon allowed) closes the article run; comment headers close it for good.
_RELATED_HEADER = re.compile(
    r"^(?:[àa] (?:lire|voir|découvrir|écouter) (?:aussi|également|sur .{1,30})|"
    r"lire aussi|voir aussi|[àa] découvrir|découvrir aussi|sur le même (?:sujet|thème)|"
    r"dans la même rubrique|articles? (?:en relation|similaires?|liés?|correspondants?|"
    r"recommandés?)|(?:les )?(?:plus|derniers?|dernières) (?:lus|populaires|partagés|"
    r"consultés|commentés|articles|news|actualités|diffusions)(?: .{1,25})?|"
    r"(?:les )?articles? les plus .{1,20}|vous aimerez (?:aussi|également)|"
    r"nos (?:dernières )?(?:vidéos|articles)|plus en .{1,30}|plus de sujets|"
    r"related(?: articles| stories)?|read (?:more|next|also)|more (?:from|on) .{1,30}|"
    r"you may also like|recommended|most (?:read|popular|shared)|trending|"
    r"tags?|mots?[- ]clés?|thèmes?|sujets?|catégories?|en images|dossiers?"
    r")\s*[:.]?$",
    re.IGNORECASE,
)
_COMMENTS_HEADER = re.compile(
    r"^(?:[\d.,\s]+\s)?(?:commentaires?|comments?|réactions?|"
    r"réagi(?:r|ssez)(?: à cet article)?|ajouter un commentaire|laisser un commentaire|"
    r"publier un (?:nouveau )?commentaire|leave a (?:comment|reply)|"
    r"add a comment|\d+ comments?)(?:\s*\(\d+\))?\s*:?$",
    re.IGNORECASE,
)
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

# Thresholds. Line lengths are in characters: jusText's 70 separates menu
# entries and headings from sentences; 200 is a paragraph that can stand on
# its own. Stop-word shares are for the function-word list above.
_SHORT = 70
_LONG = 200
_STOP_LOW = 0.22
_STOP_HIGH = 0.30
_UI_SHORT = 120  # UI vocabulary condemns a line only up to this length
_CAPTION_MAX = 120


class Kind(Enum):
    """Class of a line, as in jusText, plus SKIP for lines with no letters."""

    GOOD = "good"
    NEAR = "near"
    SHORT = "short"
    BAD = "bad"
    SKIP = "skip"  # numbers, times, punctuation: transparent to context, never kept


@dataclass(frozen=True)
class _Line:
    text: str
    kind: Kind
    hard: bool  # bad for a reason of its own, not to be revised by context
    marker: str  # "related", "comments" or ""


def _stop_share(words: Sequence[str]) -> float:
    if not words:
        return 0.0
    return sum(w.lower() in _STOPWORDS for w in words) / len(words)


def _ends_sentence(text: str) -> bool:
    return bool(_TERMINAL.search(text))


def _is_all_caps(text: str) -> bool:
    letters = _LETTER.findall(text)
    return len(letters) >= 3 and all(c.isupper() for c in letters)


def _is_prose_end(text: str) -> bool:
    """Ends like a paragraph: a full stop, or a question that is not a lone headline."""
    if _PROSE_END.search(text):
        return True
    if _ends_sentence(text):  # ? or ! : headlines end so too, unless there is more
        return len(text) >= 120 or bool(_INNER_SENTENCE.search(text))
    return False


def _is_sentence(text: str, words: Sequence[str]) -> bool:
    """A complete sentence however short: capital start, end punctuation, function words."""
    return (
        len(words) >= 4
        and _ends_sentence(text)
        and not _STARTS_LOWER.match(text)
        and _stop_share(words) >= _STOP_LOW
    )


def _classify(text: str) -> _Line:
    """Judge one line on its own."""
    words = _WORD.findall(text)
    if not words:
        return _Line(text, Kind.SKIP, True, "")
    length = len(text)
    if length <= 60 and _COMMENTS_HEADER.match(text):
        return _Line(text, Kind.BAD, True, "comments")
    if length <= 60 and _RELATED_HEADER.match(text):
        return _Line(text, Kind.BAD, True, "related")
    bad = (
        bool(_LEGAL.search(text))
        or bool(_CODE.search(text))
        or (length < _SHORT and bool(_UI_TOKEN.search(text)))
        or (length < _UI_SHORT and bool(_UI_WORDS.search(text)) and not _is_sentence(text, words))
        or (bool(_NOTICE.search(text)) and bool(_SECOND_PERSON.search(text)))
        or (length < _CAPTION_MAX and not _ends_sentence(text) and bool(_CAPTION.search(text)))
        or (length < _SHORT and _is_all_caps(text))
    )
    if bad:
        return _Line(text, Kind.BAD, True, "")
    if _LISTING.match(text):  # "18:30 Headline", "06/06/21 Headline": a list entry
        return _Line(text, Kind.SHORT, False, "")
    share = _stop_share(words)
    if length < _SHORT:
        kind = Kind.NEAR if _is_sentence(text, words) else Kind.SHORT
    elif share < _STOP_LOW:
        kind = Kind.BAD
    elif not _is_prose_end(text):
        kind = Kind.SHORT  # a headline, teaser title or label, however long
    elif share >= _STOP_HIGH and length >= _LONG:
        kind = Kind.GOOD
    else:
        kind = Kind.NEAR
    return _Line(text, kind, False, "")


def _neighbour(kinds: Sequence[Kind], i: int, step: int) -> Kind:
    """Class of the nearest line that is neither short nor skipped; BAD past the ends."""
    j = i + step
    while 0 <= j < len(kinds):
        if kinds[j] in (Kind.GOOD, Kind.BAD):
            return kinds[j]
        j += step
    return Kind.BAD


def _revise(kinds: Sequence[Kind]) -> list[Kind]:
    """Context pass (after jusText) inside the article run: a short line is kept
    between kept lines, dropped next to chrome or at the edges of the run.

    The run was chosen for its prose, so near-good lines in it count as good.
    """
    base = [Kind.GOOD if k is Kind.NEAR else k for k in kinds]
    out = list(base)
    for i, kind in enumerate(base):
        if kind is Kind.SHORT:
            both_good = _neighbour(base, i, -1) is Kind.GOOD and _neighbour(base, i, 1) is Kind.GOOD
            out[i] = Kind.GOOD if both_good else Kind.BAD
    return out


# Run scoring. Prose counts by its length (near-good prose at half weight);
# a dropped line costs a toll plus its length and a short line a smaller toll,
# so a long run of menu entries is a wall the article run does not cross, while
# a heading, caption or timestamp inside the article is not.
_NEAR_WEIGHT = 0.5
_BAD_TOLL = 12
_SHORT_TOLL = 4
_SHORT_WEIGHT = 0.25
_SKIP_TOLL = 1
_RELATED_TOLL = 400
_COMMENTS_WEIGHT = 0.25  # prose under a comments header rarely is the article


def _line_score(line: _Line, weight: float) -> float:
    length = len(line.text)
    if line.marker:
        return -float(_RELATED_TOLL)
    if line.kind is Kind.GOOD:
        return weight * length
    if line.kind is Kind.NEAR:
        return weight * _NEAR_WEIGHT * length
    if line.kind is Kind.SHORT:
        return -(_SHORT_TOLL + _SHORT_WEIGHT * length)
    if line.kind is Kind.SKIP:
        return -float(_SKIP_TOLL)
    return -float(_BAD_TOLL + length)


def _main_run(lines: Sequence[_Line]) -> tuple[int, int]:
    """Indices [start, end) of the contiguous run of lines with the most prose."""
    best, best_span = 0.0, (0, 0)
    total, start = 0.0, 0
    weight = 1.0
    for i, line in enumerate(lines):
        if line.marker == "comments":
            weight = _COMMENTS_WEIGHT
        if total <= 0:
            total, start = 0.0, i
        total += _line_score(line, weight)
        if total > best:
            best, best_span = total, (start, i + 1)
    return best_span


# --------------------------------------------------------------------------- title

_TITLE_SPLIT = re.compile(r"\s+[|–—-]\s+|\s+[|•·:]{1,2}\s+(?=[^|]*$)")


def _fold(text: str) -> str:
    """Comparison key: case, punctuation and spacing ignored."""
    return " ".join(w.lower() for w in _WORD.findall(unicodedata.normalize("NFKC", text)))


def _title_like(text: str) -> bool:
    words = _WORD.findall(text)
    return (
        2 <= len(words) <= 30
        and len(text) <= 250
        and not text.endswith((".", ";", ","))
        and _classify(text).kind is not Kind.BAD
    )


def _find_title(lines: Sequence[str], body_start: int) -> str | None:
    """The title: a heading-like line before the body that repeats or matches the first line.

    Pages print their title in <title> (usually the first text node, often with
    the site name after a separator), again as a heading, and sometimes more.
    """
    if not lines:
        return None
    counts = Counter(_fold(line) for line in lines)
    head = _fold(lines[0])
    head_parts = {_fold(p) for p in _TITLE_SPLIT.split(lines[0])} | {head}
    best: tuple[float, int] | None = None
    best_text: str | None = None
    for i in range(body_start - 1, -1, -1):
        text = lines[i]
        if not _title_like(text):
            continue
        key = _fold(text)
        if not key:
            continue
        score = 0.0
        if counts[key] >= 2:
            score += 2.0
        if i > 0 and (key in head_parts or (len(key) >= 15 and key in head)):
            score += 2.0
        if score == 0:
            continue
        # Nearer the body wins ties: the heading right above the text.
        rank = (score, i)
        if best is None or rank > best:
            best, best_text = rank, text
    if best_text is None:
        first = _TITLE_SPLIT.split(lines[0])
        candidate = max(first, key=len).strip() if first else ""
        if _title_like(candidate) and len(_WORD.findall(candidate)) >= 3:
            return candidate
        return None
    return best_text


# --------------------------------------------------------------------------- repairs


def _strip_injected_title(paragraphs: list[str], title: str | None) -> list[str]:
    """Drop copies of the title: whole lines, and a copy glued to the end or start of prose.

    A title glued onto a line that does not end a sentence, with the next line
    going on in lower case, is a scraping artefact, not a quotation.
    """
    if not title:
        return paragraphs
    key = _fold(title)
    out: list[str] = []
    for i, para in enumerate(paragraphs):
        if _fold(para) == key:
            continue
        nxt = paragraphs[i + 1] if i + 1 < len(paragraphs) else ""
        if para.endswith(title) and len(para) > len(title):
            rest = para[: -len(title)].rstrip()
            if rest and not _ends_sentence(rest) and _STARTS_LOWER.match(nxt):
                para = rest
        if para.startswith(title) and len(para) > len(title) and out:
            rest = para[len(title) :].lstrip()
            if _STARTS_LOWER.match(rest) and not _ends_sentence(out[-1]):
                para = rest
        out.append(para)
    return out


def _rejoin(paragraphs: list[str]) -> list[str]:
    """Re-join a paragraph broken mid-sentence: no end punctuation, then lower case."""
    out: list[str] = []
    for para in paragraphs:
        if (
            out
            and not _ends_sentence(out[-1])
            and _STARTS_LOWER.match(para)
            and len(_WORD.findall(out[-1])) >= 4  # a heading is not half a sentence
            and not out[-1].endswith(":")
        ):
            out[-1] = f"{out[-1]} {para}"
        else:
            out.append(para)
    return out


def _dedupe(paragraphs: list[str]) -> list[str]:
    """Keep one copy of a repeated paragraph, the last: teasers and captions come first."""
    folded = [_fold(p) for p in paragraphs]
    last = {key: i for i, key in enumerate(folded)}
    return [p for i, p in enumerate(paragraphs) if last[folded[i]] == i or len(p) < _SHORT]


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


def _finish(
    paragraphs: list[str], title: str | None, after: Sequence[str]
) -> tuple[str, str | None]:
    paragraphs = _strip_injected_title(paragraphs, title)
    paragraphs = _rejoin(paragraphs)
    paragraphs = _dedupe(paragraphs)
    paragraphs, credit = _take_credit(paragraphs, after)
    return "\n\n".join(paragraphs), credit


# --------------------------------------------------------------------------- entry points


def _lines(text: str) -> list[str]:
    return [line.strip() for line in normalize(text).split("\n") if line.strip()]


def clean_text(raw: str) -> Cleaned:
    """Clean a scraped text page: chrome dropped, title and credit to metadata."""
    lines = _lines(raw)
    if not lines:
        return Cleaned(title=None, text="", credit=None)
    judged = [_classify(line) for line in lines]
    start, end = _main_run(judged)
    if start == end:
        return Cleaned(title=_find_title(lines, len(lines)), text="", credit=None)
    title = _find_title(lines, start)
    kinds = _revise([line.kind for line in judged[start:end]])
    kept = [lines[start + i] for i, kind in enumerate(kinds) if kind is Kind.GOOD]
    text, credit = _finish(kept, title, lines[end:])
    return Cleaned(title=title, text=text, credit=credit)


def clean_html(html: str, url: str | None = None) -> Cleaned:
    """Clean an HTML page with trafilatura (main text and metadata), then repair it."""
    import trafilatura  # heavy import, only needed for HTML

    doc = trafilatura.bare_extraction(
        html,
        url=url,
        include_comments=False,
        include_tables=True,
        with_metadata=True,
    )
    if doc is None:
        return Cleaned(title=None, text="", credit=None, url=url)
    raw = getattr(doc, "text", None) or ""
    title = getattr(doc, "title", None) or None
    title = normalize(title).strip() if title else None
    lines = _lines(raw)
    if lines and title and _fold(lines[0]) == _fold(title):
        lines = lines[1:]
    text, credit = _finish(lines, title, [])
    return Cleaned(
        title=title,
        text=text,
        credit=credit,
        date=getattr(doc, "date", None) or None,
        url=getattr(doc, "url", None) or url,
    )
