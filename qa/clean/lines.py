"""Judging one line of a page on its own, as jusText does (see `qa.clean`):
prose (GOOD or NEAR), SHORT, page furniture (BAD), or no letters (SKIP), with
a marker on the section headers that open related links or comments."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from .text import WORD

# Function words of French and English. Prose is dense in them (about 40 %);
# menus, tag lists and names are not. Elided forms are split off by WORD.
STOPWORDS = frozenset(
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
STARTS_LOWER = re.compile(r"^[\"'«“(]?\s*[a-zà-öø-ÿœæ]")

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
# Thresholds. Line lengths are in characters: jusText's 70 separates menu
# entries and headings from sentences; 200 is a paragraph that can stand on
# its own. Stop-word shares are for the function-word list above.
SHORT = 70
_LONG = 200
_STOP_LOW = 0.22
_STOP_HIGH = 0.30
_UI_SHORT = 120  # UI vocabulary condemns a line only up to this length
_CAPTION_MAX = 120
_LEGAL_MAX = 250
_HEADER_MAX = 60  # a section header is a few words


class Kind(Enum):
    """Class of a line, as in jusText, plus SKIP for lines with no letters."""

    GOOD = "good"
    NEAR = "near"
    SHORT = "short"
    BAD = "bad"
    SKIP = "skip"  # numbers, times, punctuation: transparent to context, never kept


@dataclass(frozen=True)
class Line:
    text: str
    kind: Kind
    marker: str = ""  # "related" or "comments" for section headers


def _stop_share(words: Sequence[str]) -> float:
    if not words:
        return 0.0
    return sum(w.lower() in STOPWORDS for w in words) / len(words)


def ends_sentence(text: str) -> bool:
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
    return ends_sentence(text) or (len(text) >= _LONG and len(_INNER_SENTENCE.findall(text)) >= 2)


def _is_sentence(text: str, words: Sequence[str]) -> bool:
    """A complete sentence however short: capital start, end punctuation, function words."""
    return (
        len(words) >= 4
        and ends_sentence(text)
        and not STARTS_LOWER.match(text)
        and _stop_share(words) >= _STOP_LOW
    )


def _is_furniture(text: str, words: Sequence[str]) -> bool:
    """Page furniture by its own look: legal, code, UI labels, forms, captions."""
    length = len(text)
    return (
        (length < _LEGAL_MAX and bool(_LEGAL.search(text)))
        or bool(_COOKIES.search(text))
        or bool(_CODE.search(text))
        or (length < SHORT and bool(_UI_TOKEN.search(text)))
        or (length < _UI_SHORT and bool(_UI_WORDS.search(text)) and not _is_sentence(text, words))
        or (len(words) <= _LABEL_WORDS and bool(_NAV_LABELS.search(text)))
        or (bool(_NOTICE.search(text)) and bool(_SECOND_PERSON.search(text)))
        or (length < _CAPTION_MAX and not ends_sentence(text) and bool(_CAPTION.search(text)))
        or (length < SHORT and _is_all_caps(text))
    )


def classify(text: str) -> Line:
    """Judge one line on its own."""
    words = WORD.findall(text)
    if not words:
        return Line(text, Kind.SKIP)
    length = len(text)
    if length <= _HEADER_MAX and _COMMENTS_HEADER.match(text):
        return Line(text, Kind.BAD, "comments")
    if length <= _HEADER_MAX and _RELATED_HEADER.match(text):
        return Line(text, Kind.BAD, "related")
    if _is_furniture(text, words):
        return Line(text, Kind.BAD)
    if _LISTING.match(text) and length < 2 * SHORT:
        return Line(text, Kind.SHORT)
    share = _stop_share(words)
    if length < SHORT:
        kind = Kind.NEAR if _is_sentence(text, words) else Kind.SHORT
    elif share < _STOP_LOW:
        kind = Kind.BAD
    elif not _is_prose_end(text):
        kind = Kind.SHORT  # a headline, teaser title or label, however long
    elif share >= _STOP_HIGH and length >= _LONG:
        kind = Kind.GOOD
    else:
        kind = Kind.NEAR
    return Line(text, kind)
