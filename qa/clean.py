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

HTML goes through trafilatura; its output loses lines without a letter and
the non-prose tail after the last paragraph, then goes through the same title,
credit and paragraph repairs as text (HTML_RULES; what each costs and drops on
the dev pages is in docs/cleaning.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum

from .metadata import dateline, html_metadata, site_name


@dataclass(frozen=True)
class Cleaned:
    """The result of cleaning one page."""

    title: str | None  # the article title, found once (None if none)
    text: str  # NFC, one paragraph or heading per line, blank line between
    credit: str | None  # "agences et rédaction" from "Source : agences et rédaction"
    date: str | None = None  # publication date, YYYY-MM-DD (qa.metadata)
    url: str | None = None
    source: str | None = None  # the outlet
    author: str | None = None


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
_TERMINAL = re.compile(r"[.!?…][\"'»”’)\]]*(?:\s*[(\[][^()\[\]]{1,40}[)\]])?$|[»”]$")
# Ends a paragraph for sure: full stop, ellipsis, colon or semicolon, maybe
# followed by closing quotes and a short parenthesis such as an agency tag.
_PROSE_END = re.compile(r"[.…:;][\"'»”’)\]]*(?:\s*[(\[][^()\[\]]{1,40}[)\]])?$|[»”]$")
# Two sentences inside one line: prose even if its end was cut off.
_INNER_SENTENCE = re.compile(r"[.!?…][\"'»”’)]*\s+[\"«“(]?[A-ZÀ-Ý]")
_TRAILING_CREDIT = re.compile(r"\s*©[^.!?©]{1,60}$")
# A list entry led by a time or a date: "18:30 Headline", "06/06/21 Headline".
_LISTING = re.compile(
    r"^(?:\d{1,2}[:h]\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?|\d{1,2}\.\d{1,2}\.\d{2,4})\s+\S"
)
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
    r"\b[a-z]+_[a-z_]+|\b[a-z]{2,}[A-ZÀ-Ý]{3,}|(?:[A-Z][a-z]+){3,}\b|[a-z][A-Z][a-z]+_",
)
# Script or markup that leaked into the text.
_CODE = re.compile(
    r"<\/?[a-z]+[ >]|[{}]\s*;?\s*$|\);$|\bfunction\s*\(|\b(?:var|let|const)\s+\w+\s*=|"
    r"\b(?:window|document)\.\w|=\s*[\"']?[\w-]+[\"']?;|^https?://\S+$|^\S+@\S+\.\w+$",
)

# Account, subscription, form and legal vocabulary, French and English. A
# short line that uses it is page furniture; prose that mentions it in passing
# is not affected because the rule only applies to short non-sentences.
_UI_WORDS = re.compile(
    r"\b(?:"
    r"newsletters?|infolettres?|abonn(?:ez|er|ement|é|ée)s?|s['’]abonner|désabonner|"
    r"je m['’]abonne|subscribe|unsubscribe|inscri(?:ption|vez|re)|s['’]inscrire|"
    r"(?:se\s)?(?:dé)?connect(?:er|ez|é|ée)(?:-vous)?|déconnexion|log\s?in|log\s?out|"
    r"sign\s?(?:in|up|out)|mot de passe|password|identifiant|mon compte|my account|"
    r"e-?mails?|courriels?|adresse (?:électronique|de messagerie)|envoyer (?:à|par)|"
    r"cookies?|rgpd|gdpr|confidentialité|privacy|mentions légales|cgu|cgv|"
    r"conditions (?:générales )?d['’]utilisation|terms of (?:use|service)|"
    r"plan du site|sitemap|nous contacter|contactez-nous|contact us|sponsoris[ée]e?|"
    r"faire un don|je (?:donne|signe|soutiens)|caractères restants|champs? obligatoires?|"
    r"votre (?:nom|adresse|email|e-mail|commentaire|message)|your (?:name|email|comment)"
    r")\b",
    re.IGNORECASE,
)
# Generic labels of buttons and links. They are words of prose too ("l'accueil
# des réfugiés"), so they condemn a line only when it is a label of a few words.
_NAV_LABELS = re.compile(
    r"\b(?:accueil|home|menu|rechercher|recherche|search|imprimer|print|partager|share|"
    r"réagir|commenter|répondre|reply|télécharger|download|signaler|connexion|contact|rss|"
    r"tweet|facebook|twitter|instagram|linkedin|youtube|whatsapp|pinterest|publicité|"
    r"advertisement|annonceurs?|obligatoire|required)\b",
    re.IGNORECASE,
)
_LABEL_WORDS = 3
# Footer and legal lines. A long paragraph may end with a photo credit "© X",
# so the copyright sign only condemns lines up to _LEGAL_MAX characters.
_LEGAL = re.compile(
    r"©|\(c\)\s*\d{4}|\bcopyright\b|tous droits réservés|all rights reserved",
    re.IGNORECASE,
)
_COOKIES = re.compile(r"\butilis(?:e|ons) des cookies\b|\buses cookies\b", re.IGNORECASE)
# Photo captions and credits inside the body: "X, photo: Y", "Crédits : Getty",
# "Name / Agency / AFP".
_CAPTION = re.compile(
    r"\b(?:photos?|crédits?(?: photo)?|credits?|images?|illustrations?|vidéo|video)\s*:"
    r"|^[^.!?]{0,80}\s/\s[^/]{1,40}\s/\s[^/]{1,40}$",
    re.IGNORECASE,
)
# Section headers that open what follows an article: related links, most-read
# lists, comment threads. A line that is only such a header (a count or a
# colon allowed) is a toll the article run rarely pays; below a comments header
# prose counts for less. Buttons ("Réagir", "Commenter") are not headers.
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
    r"réagissez(?: à cet article)?|ajouter un commentaire|laisser un commentaire|"
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
_LEGAL_MAX = 250
_HEADER_MAX = 60  # a section header is a few words


class _Kind(Enum):
    """Class of a line, as in jusText, plus SKIP for lines with no letters."""

    GOOD = "good"
    NEAR = "near"
    SHORT = "short"
    BAD = "bad"
    SKIP = "skip"  # numbers, times, punctuation: transparent to context, never kept


@dataclass(frozen=True)
class _Line:
    text: str
    kind: _Kind
    marker: str = ""  # "related" or "comments" for section headers


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
    """Ends like a paragraph (a trailing "© Author" photo credit aside)."""
    text = _TRAILING_CREDIT.sub("", text)
    if _PROSE_END.search(text):
        return True
    # A question or exclamation of this length is a sentence too (headlines
    # that end so are shorter, or carry no punctuation at all); so is a long
    # run of sentences whose end was cut off.
    return _ends_sentence(text) or (len(text) >= _LONG and len(_INNER_SENTENCE.findall(text)) >= 2)


def _is_sentence(text: str, words: Sequence[str]) -> bool:
    """A complete sentence however short: capital start, end punctuation, function words."""
    return (
        len(words) >= 4
        and _ends_sentence(text)
        and not _STARTS_LOWER.match(text)
        and _stop_share(words) >= _STOP_LOW
    )


def _is_furniture(text: str, words: Sequence[str]) -> bool:
    """Page furniture by its own look: legal, code, UI labels, forms, captions."""
    length = len(text)
    return (
        (length < _LEGAL_MAX and bool(_LEGAL.search(text)))
        or bool(_COOKIES.search(text))
        or bool(_CODE.search(text))
        or (length < _SHORT and bool(_UI_TOKEN.search(text)))
        or (length < _UI_SHORT and bool(_UI_WORDS.search(text)) and not _is_sentence(text, words))
        or (len(words) <= _LABEL_WORDS and bool(_NAV_LABELS.search(text)))
        or (bool(_NOTICE.search(text)) and bool(_SECOND_PERSON.search(text)))
        or (length < _CAPTION_MAX and not _ends_sentence(text) and bool(_CAPTION.search(text)))
        or (length < _SHORT and _is_all_caps(text))
    )


def _classify(text: str) -> _Line:
    """Judge one line on its own."""
    words = _WORD.findall(text)
    if not words:
        return _Line(text, _Kind.SKIP)
    length = len(text)
    if length <= _HEADER_MAX and _COMMENTS_HEADER.match(text):
        return _Line(text, _Kind.BAD, "comments")
    if length <= _HEADER_MAX and _RELATED_HEADER.match(text):
        return _Line(text, _Kind.BAD, "related")
    if _is_furniture(text, words):
        return _Line(text, _Kind.BAD)
    if _LISTING.match(text) and length < 2 * _SHORT:
        return _Line(text, _Kind.SHORT)
    share = _stop_share(words)
    if length < _SHORT:
        kind = _Kind.NEAR if _is_sentence(text, words) else _Kind.SHORT
    elif share < _STOP_LOW:
        kind = _Kind.BAD
    elif not _is_prose_end(text):
        kind = _Kind.SHORT  # a headline, teaser title or label, however long
    elif share >= _STOP_HIGH and length >= _LONG:
        kind = _Kind.GOOD
    else:
        kind = _Kind.NEAR
    return _Line(text, kind)


def _neighbour(kinds: Sequence[_Kind], i: int, step: int) -> _Kind:
    """Class of the nearest line that is neither short nor skipped; BAD past the ends."""
    j = i + step
    while 0 <= j < len(kinds):
        if kinds[j] in (_Kind.GOOD, _Kind.BAD):
            return kinds[j]
        j += step
    return _Kind.BAD


def _revise(kinds: Sequence[_Kind]) -> list[_Kind]:
    """Context pass (after jusText) inside the article run.

    A short line is kept between kept lines and dropped next to chrome or at
    the edges of the run. The run was chosen for its prose, so near-good lines
    in it count as good.
    """
    base = [_Kind.GOOD if k is _Kind.NEAR else k for k in kinds]
    out: list[_Kind] = list(base)
    for i, kind in enumerate(base):
        if kind is _Kind.SHORT:
            both_good = (
                _neighbour(base, i, -1) is _Kind.GOOD and _neighbour(base, i, 1) is _Kind.GOOD
            )
            out[i] = _Kind.GOOD if both_good else _Kind.BAD
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
# Below a comments header, prose weighs less: a long thread must not win over
# the article above it. Only a header after some prose counts, since a header
# in the top menu links to comments rather than opening them.
_COMMENTS_WEIGHT = 0.25
_COMMENTS_AFTER = 500
_TITLE_NEAR = 15  # heading-like lines above the body where the title is looked for
_TITLE_SIMILAR = 0.2  # Jaccard similarity of content words with <title>
_TITLE_COVER = 0.7  # a heading with fewer of <title>'s words is a fragment of it
_COPY_KEY = 60  # folded characters that identify a paragraph printed twice
_SPLICED_MIN_WORDS = 4


def _line_score(line: _Line, weight: float) -> float:
    length = len(line.text)
    if line.marker:
        return -float(_RELATED_TOLL)
    if line.kind is _Kind.GOOD:
        return weight * length
    if line.kind is _Kind.NEAR:
        return weight * _NEAR_WEIGHT * length
    if line.kind is _Kind.SHORT:
        return -(_SHORT_TOLL + _SHORT_WEIGHT * length)
    if line.kind is _Kind.SKIP:
        return -float(_SKIP_TOLL)
    return -float(_BAD_TOLL + length)


def _main_run(lines: Sequence[_Line]) -> tuple[int, int]:
    """Indices [start, end) of the contiguous run of lines with the most prose."""
    best, best_span = 0.0, (0, 0)
    total, start = 0.0, 0
    weight, prose = 1.0, 0.0
    for i, line in enumerate(lines):
        if line.marker == "comments" and prose >= _COMMENTS_AFTER:
            weight = _COMMENTS_WEIGHT
        score = _line_score(line, weight)
        prose += max(score, 0.0)
        if total <= 0:
            total, start = 0.0, i
        total += score
        if total > best:
            best, best_span = total, (start, i + 1)
    return best_span


def _drop_early_copies(lines: list[_Line]) -> list[_Line]:
    """A paragraph printed twice is a teaser or caption the first time: judge it bad there.

    The first copy is often cut short ("…"), so copies are matched on their opening words.
    """

    def key(text: str) -> str:
        return _fold(text)[:_COPY_KEY]

    last = {key(line.text): i for i, line in enumerate(lines) if len(line.text) >= _SHORT}
    return [
        _Line(line.text, _Kind.BAD)
        if len(line.text) >= _SHORT and last[key(line.text)] != i
        else line
        for i, line in enumerate(lines)
    ]


# --------------------------------------------------------------------------- title

# Separators between the title and the section or site name in <title>.
_SITE_SEP = re.compile(r"\s+[|–—•·-]\s+")


def _fold(text: str) -> str:
    """Comparison key: case, punctuation and spacing ignored."""
    return " ".join(w.lower() for w in _WORD.findall(unicodedata.normalize("NFKC", text)))


def _content_words(text: str) -> set[str]:
    return {w for w in _fold(text).split() if len(w) > 1 and w not in _STOPWORDS}


def _title_like(text: str) -> bool:
    words = _WORD.findall(text)
    return (
        2 <= len(words) <= 30
        and len(text) <= 250
        and not text.endswith((".", ";", ","))
        and _classify(text).kind is not _Kind.BAD
    )


def _title_from_head(first: str) -> str | None:
    """<title> without the site name: its longest part between separators."""
    parts = [part.strip() for part in _SITE_SEP.split(first) if part.strip()]
    candidate = max(parts, key=len) if parts else ""
    return candidate if _title_like(candidate) else None


def _find_title(lines: Sequence[str], body_start: int) -> str | None:
    """The title, from <title> and the headings above the body.

    Dumps start with <title> ("Title - Section | Site"), then print the title
    as a heading above the text, sometimes in a fuller or shorter form. The
    heading wins when it shares most words with <title>; when it is only a
    fragment of it (a team, a section) <title> wins. With no <title>, a heading
    printed twice above the body is the title.
    """
    head = _title_from_head(lines[0]) if lines else None
    head_words = _content_words(head) if head else set()
    counts = Counter(_fold(line) for line in lines)
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
        elif repeated is None and counts[_fold(text)] >= 2:
            repeated = text
    if best is not None:
        _, text, words = best
        if words < head_words and len(words) < _TITLE_COVER * len(head_words):
            return head
        return text
    return head or repeated


# --------------------------------------------------------------------------- repairs


def _strip_injected_title(paragraphs: list[str], title: str | None) -> list[str]:
    """Drop copies of the title: whole lines, and copies spliced into a sentence."""
    if not title:
        return paragraphs
    key = _fold(title)
    out: list[str] = []
    for i, para in enumerate(paragraphs):
        if _fold(para) == key:
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
    if len(_WORD.findall(title)) < _SPLICED_MIN_WORDS:
        return para  # a short title is too likely to be plain words of the text
    at = para.find(title)
    while at != -1:
        before = para[:at].rstrip()
        after = para[at + len(title) :].lstrip()
        interrupts = (
            not _ends_sentence(before) if before else bool(prev) and not _ends_sentence(prev)
        )
        continues = _STARTS_LOWER.match(after or nxt)
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


# --------------------------------------------------------------------------- entry points


def _lines(text: str) -> list[str]:
    return [line.strip() for line in normalize(text).split("\n") if line.strip()]


def clean_text(raw: str) -> Cleaned:
    """Clean a scraped text page: chrome dropped, title and credit to metadata."""
    lines = _lines(raw)
    if not lines:
        return Cleaned(title=None, text="", credit=None)
    judged = _drop_early_copies([_classify(line) for line in lines])
    start, end = _main_run(judged)
    if start == end:
        return Cleaned(title=_find_title(lines, len(lines)), text="", credit=None)
    title = _find_title(lines, start)
    kinds = _revise([line.kind for line in judged[start:end]])
    kept = [lines[start + i] for i, kind in enumerate(kinds) if kind is _Kind.GOOD]
    text, credit = _finish(kept, title, lines[end:])
    return Cleaned(
        title=title,
        text=text,
        credit=credit,
        date=dateline(lines, title, start),
        source=site_name(lines, lines[0]),
    )


def _trim_tail(lines: list[str]) -> tuple[list[str], list[str]]:
    """Split off the run of non-prose lines after the last paragraph (dates, tags, names).

    A run introduced by a line ending in ":" is a list the article announced:
    kept. With no paragraph at all, everything is tail: trafilatura found no
    article (a "Menu" or a share button left on a page without one).
    """
    end = len(lines)
    while end > 0 and _classify(lines[end - 1]).kind not in (_Kind.GOOD, _Kind.NEAR):
        end -= 1
    if end > 0 and lines[end - 1].endswith(":"):
        return lines, []
    return lines[:end], lines[end:]


def _html_title(meta: str | None, first: str | None) -> tuple[str | None, bool]:
    """The title, and whether the text's first line is it (then dropped from the text).

    Metadata titles often carry the site name ("Title | Site"); the page's own
    heading, when it is one of the parts, is the cleaner form.
    """
    if not meta:
        return None, False
    title = normalize(meta).strip()
    if first is None:
        return title or None, False
    key = _fold(first)
    if key == _fold(title):
        return title, True
    if key and key in {_fold(part) for part in _SITE_SEP.split(title)}:
        return first, True
    return title or None, False


# "<h3><span class="keyword">Agriculture</span>L'Office fédéral…": a label
# that CSS lays out apart (a kicker, a category) is glued to the next word in
# the markup. A lower-case letter closing an inline element right before a
# capital never joins one word to the next in prose, so the label gets its
# own line (a drop cap, "<b>L</b>e", is upper-case then lower-case: untouched).
_GLUED_LABEL = re.compile(
    r"(?<=[a-zà-öø-ÿ])(</(?:span|a|b|strong|em|i|small|time|label)>)(?=[A-ZÀ-ÖØ-Þ])"
)


# What clean_html does to trafilatura's output, by name, so that
# scripts/eval_cleaning.py can measure each one's cost in article text on the
# dev pages (docs/cleaning.md). A rule stays only if it dropped chrome on
# several pages and article text on none; the furniture classifier of text
# dumps is not among them: it cost headings and short paragraphs.
HTML_RULES = (
    "glued-labels",  # a CSS-separated label gets its own line (drops nothing)
    "letterless",  # lines without a letter: scores, separators
    "title-line",  # the title heading moves to metadata
    "tail",  # the non-prose run after the last paragraph (forms, footers, datelines)
    "title-copies",  # copies of the title, whole or spliced into a sentence
    "rejoin",  # a paragraph broken mid-sentence is joined (drops nothing)
    "dedupe",  # the earlier copy of a paragraph printed twice
    "credit",  # a "Source : AFP" line moves to metadata
)


def clean_html(html: str, url: str | None = None, rules: Collection[str] = HTML_RULES) -> Cleaned:
    """Clean an HTML page with trafilatura (main text and metadata), then repair it."""
    import trafilatura  # heavy import, only needed for HTML

    doc = trafilatura.bare_extraction(
        _GLUED_LABEL.sub(r"\1<br>", html) if "glued-labels" in rules else html,
        url=url,
        include_comments=False,
        include_tables=True,
        with_metadata=True,
    )
    if doc is None:
        return Cleaned(title=None, text="", credit=None, url=url)
    lines = _lines(getattr(doc, "text", None) or "")
    if "letterless" in rules:
        lines = [line for line in lines if _WORD.search(line)]
    title, first_is_title = _html_title(getattr(doc, "title", None), lines[0] if lines else None)
    if first_is_title and "title-line" in rules:
        lines = lines[1:]
    tail: list[str] = []
    if "tail" in rules:
        lines, tail = _trim_tail(lines)
    text, credit = _finish(lines, title, tail, rules)
    page_url = getattr(doc, "url", None) or url
    date, source, author = html_metadata(
        html,
        title,
        lines,
        getattr(doc, "sitename", None),
        page_url,
        getattr(doc, "author", None),
    )
    return Cleaned(
        title=title,
        text=text,
        credit=credit,
        date=date,
        url=page_url,
        source=source,
        author=author,
    )
