"""Bytes of an article file to text, in whatever encoding it was saved.

Evidence is weighed in this order:

1. A byte-order mark (UTF-8, UTF-16, UTF-32): written on purpose, never by accident.
2. Valid UTF-8 with non-ASCII bytes: random legacy-encoded text is almost
   never valid UTF-8, so this beats a declaration (pages copied or re-saved
   as UTF-8 often keep their old `charset=iso-8859-1`).
3. The encoding the document declares (XML declaration, `<meta charset>`,
   `<meta http-equiv="Content-Type">`), if its bytes decode under it. A page
   that declares UTF-8 but is not valid UTF-8 is mislabelled: step 4 decides.
4. Detection: windows-1252, the web's default legacy encoding, when it reads
   the bytes about as plausibly as charset-normalizer's best guess (French
   text with "œ" or "€" reads cleanly as cp1250 or mac_latin2 too, but means
   cp1252); else that guess.

As browsers do (WHATWG Encoding), a declared ISO-8859-1 or ASCII is read as
windows-1252: its 0x80-0x9F bytes are curly quotes, "€" and "œ", not controls.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes
from charset_normalizer.md import mess_ratio

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Declarations sit in the head; browsers look at the first 1,024 bytes, pages
# with long scripts before <meta> need more.
_PRESCAN = 8192
_DECLARED = (
    re.compile(rb"<\?xml[^>]*?\bencoding\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE),
    re.compile(rb"<meta[^>]*?\bcharset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE),
)
_WEB_DEFAULT = "cp1252"
# Labels that mean windows-1252 on the web (WHATWG), by their Python name.
_AS_WEB_DEFAULT = {"latin_1", "iso8859_1", "ascii", "cp1252"}
_MESS_MARGIN = 0.1


class Undecodable(ValueError):
    """No encoding reads these bytes as text."""


def has_bom(data: bytes) -> bool:
    """Whether `data` opens with a Unicode byte-order mark (UTF-16 text is full of NULs)."""
    return data.startswith(tuple(bom for bom, _ in _BOMS))


def decode(data: bytes) -> tuple[str, str]:
    """The text of `data` and the name of the encoding it was read with."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise Undecodable(
                    f"starts with a {encoding} byte-order mark but {exc.reason} "
                    f"at byte {exc.start + len(bom)}"
                ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = declared_encoding(data)
    if declared and declared != "utf_8":
        try:
            return data.decode(declared), declared
        except UnicodeDecodeError:
            pass  # mislabelled: detection decides
    return _detect(data)


def declared_encoding(data: bytes) -> str | None:
    """The encoding the document names for itself (Python's name), if any.

    A declared UTF-16 or UTF-32 is ignored: a page that can be scanned for
    ASCII markup is not in either (browsers read it as UTF-8 too).
    """
    head = data[:_PRESCAN]
    for pattern in _DECLARED:
        match = pattern.search(head)
        if not match:
            continue
        try:
            name = codecs.lookup(match.group(1).decode("ascii")).name.replace("-", "_")
        except (LookupError, UnicodeDecodeError):
            continue
        if name.startswith(("utf_16", "utf_32")):
            continue
        return _WEB_DEFAULT if name in _AS_WEB_DEFAULT else name
    return None


def _detect(data: bytes) -> tuple[str, str]:
    """charset-normalizer's best guess, unless windows-1252 reads the bytes about as cleanly.

    Its guesses among single-byte Latin encodings are near ties on French or
    English text (cp1250 or mac_latin2 for cp1252 bytes); "mess" (its measure
    of implausible character sequences) is about 0 for a right cp1252 reading
    and over 0.2 for Cyrillic, Greek or Central European bytes read as cp1252.
    """
    best = from_bytes(data).best()
    floor = best.chaos if best is not None else 0.0
    try:
        web = data.decode(_WEB_DEFAULT)
    except UnicodeDecodeError:
        web = None
    if web is not None and mess_ratio(web, _MESS_MARGIN + floor + 0.01) <= floor + _MESS_MARGIN:
        return web, _WEB_DEFAULT
    if best is None:
        raise Undecodable("not UTF-8, no usable declared encoding, and no encoding detected")
    return str(best), best.encoding
