"""Files in any encoding are read (qa.decode through qa.ingest): declared,
detected, mislabelled; only a file no encoding reads is skipped, by name."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from helpers import encoder
from hypothesis import given, settings
from hypothesis import strategies as st

from qa import indexing
from qa.decode import Undecodable, declared_encoding, decode
from qa.errors import UnknownFormat
from qa.ingest import read_file, read_files
from qa.settings import Settings
from qa.store import IndexReader

# Characters that differ between Latin-1, Windows-1252 and UTF-8: accents,
# the ligature and the euro of cp1252's 0x80-0x9F range, curly quotes, a dash.
TEXT = (
    "Le député a présenté l’œuvre du Conseil : « un budget de 5 millions d’euros (5 M€) "
    "pour l’été », a-t-il déclaré mercredi devant les élus de la région.\n\n"
    "Les associations de riverains ont salué une décision attendue depuis des années, "
    "tout en regrettant le manque de concertation — et l’absence de calendrier précis."
)
LATIN1_TEXT = TEXT.replace("’", "'").replace("œ", "oe").replace("€", "EUR").replace("—", "-")
NOISE = bytes(range(1, 256)) * 2  # every byte but NUL: no encoding makes text of it


def page(charset: str | None, body: str = TEXT, http_equiv: bool = False) -> str:
    meta = ""
    if charset and http_equiv:
        meta = f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">'
    elif charset:
        meta = f'<meta charset="{charset}">'
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    return (
        f"<html><head>{meta}<title>Le budget de la région</title></head><body>"
        f"<article><h1>Le budget de la région</h1>{paragraphs}</article></body></html>"
    )


def read_one(path: Path) -> str:
    articles, errors = read_file(path)
    assert errors == [] and len(articles) == 1
    return articles[0].text


def first_paragraph(text: str) -> str:
    return text.split("\n\n")[0]


# ---------------------------------------------------------------- decode() itself


POLISH = "Zażółć gęślą jaźń: minister powiedział w środę, że budżet wzrósł o pięć procent."
RUSSIAN = "Привет, как дела? Министр заявил в среду, что бюджет вырос на пять процентов."
FIRST = TEXT.split("\n\n")[0]
LATIN1_FIRST = LATIN1_TEXT.split("\n\n")[0]


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8", FIRST),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le", FIRST),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be", FIRST),
        (codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), "utf-32-le", FIRST),
        (TEXT.encode("utf-8"), "utf-8", FIRST),
        (TEXT.encode("cp1252"), "cp1252", FIRST),  # charset-normalizer alone: mac_latin2
        (LATIN1_TEXT.encode("latin-1"), "cp1252", LATIN1_FIRST),  # alone: cp1250
        ("Le député a parlé.".encode("latin-1"), "cp1252", "Le député a parlé."),  # short
        (RUSSIAN.encode("cp1251"), "cp1251", RUSSIAN),
        (POLISH.encode("cp1250"), "cp1250", POLISH),
        (page("ISO-8859-15", LATIN1_TEXT).encode("iso-8859-15"), "iso8859_15", LATIN1_FIRST),
        (f'<meta charset="koi8-r"><p>{RUSSIAN}</p>'.encode("koi8-r"), "koi8_r", RUSSIAN),
    ],
)
def test_decode_by_bom_declaration_or_detection(data: bytes, encoding: str, expected: str) -> None:
    text, used = decode(data)
    assert used == encoding
    assert expected in text and "\ufeff" not in text


@pytest.mark.parametrize(
    ("head", "declared"),
    [
        ('<meta charset="utf-8">', "utf_8"),
        ("<meta charset=ISO-8859-1>", "cp1252"),  # read as browsers do
        ('<meta http-equiv="content-type" content="text/html; charset=latin1">', "cp1252"),
        ("<?xml version='1.0' encoding='windows-1252'?>", "cp1252"),
        ('<META CHARSET="koi8-r">', "koi8_r"),
        ('<meta charset="utf-16">', None),  # impossible in a page scanned as ASCII
        ('<meta charset="no-such-thing">', None),
        ("<p>charset=latin1 in prose is not a declaration</p>", None),
    ],
)
def test_declared_encoding(head: str, declared: str | None) -> None:
    assert declared_encoding(f"<html><head>{head}</head></html>".encode("ascii")) == declared


def test_noise_is_undecodable() -> None:
    with pytest.raises(Undecodable):
        decode(NOISE)


# ---------------------------------------------------------------- through read_file


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_legacy_text_files(tmp_path: Path, encoding: str) -> None:
    body = LATIN1_TEXT if encoding == "latin-1" else TEXT
    path = tmp_path / f"{encoding}.txt"
    path.write_bytes(body.encode(encoding))
    assert first_paragraph(body) in read_one(path)


@pytest.mark.parametrize(
    ("declared", "encoding", "http_equiv"),
    [
        ("iso-8859-1", "latin-1", False),
        ("iso-8859-1", "cp1252", False),  # the usual lie: cp1252 bytes declared Latin-1
        ("windows-1252", "cp1252", True),
        (None, "cp1252", False),  # no declaration: detected
        ("utf-8", "cp1252", False),  # mislabelled: declared UTF-8, bytes are cp1252
        ("iso-8859-1", "utf-8", True),  # mislabelled: declared Latin-1, bytes are UTF-8
    ],
)
def test_legacy_and_mislabelled_html(
    tmp_path: Path, declared: str | None, encoding: str, http_equiv: bool
) -> None:
    body = LATIN1_TEXT if encoding == "latin-1" else TEXT
    path = tmp_path / "page.html"
    path.write_bytes(page(declared, body, http_equiv).encode(encoding))
    text = read_one(path)
    assert first_paragraph(body) in text
    assert "Ã" not in text and "\x80" not in text  # no mojibake, no C1 control


@pytest.mark.parametrize("suffix", [".txt", ".html", ".json"])
def test_utf16_with_bom(tmp_path: Path, suffix: str) -> None:
    content = {".txt": TEXT, ".html": page("utf-16"), ".json": json.dumps({"text": TEXT})}
    path = tmp_path / f"page{suffix}"
    path.write_bytes(codecs.BOM_UTF16_LE + content[suffix].encode("utf-16-le"))
    assert first_paragraph(TEXT) in read_one(path)


def test_undecodable_file_is_reported_by_name_and_others_read(tmp_path: Path) -> None:
    good = tmp_path / "good.html"
    good.write_bytes(page("iso-8859-1").encode("cp1252"))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(NOISE)
    articles, errors = read_files([bad, good])
    assert len(articles) == 1 and articles[0].origin == str(good)
    [error] = errors
    assert isinstance(error, UnknownFormat)
    assert str(error).startswith(f"{bad}: cannot be read as text")


# ---------------------------------------------------------------- through a real build


def test_build_indexes_every_encoding(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "latin1.html").write_bytes(page("iso-8859-1", LATIN1_TEXT).encode("latin-1"))
    (corpus / "cp1252.txt").write_bytes(TEXT.replace("région", "commune").encode("cp1252"))
    (corpus / "utf16.txt").write_bytes(
        codecs.BOM_UTF16_LE + TEXT.replace("région", "métropole").encode("utf-16-le")
    )
    (corpus / "noise.txt").write_bytes(NOISE)
    index = tmp_path / "index"
    report = indexing.build(corpus, index, encoder(), Settings(index_dir=str(index)))
    assert [str(e).split(":")[0] for e in report.errors] == [str(corpus / "noise.txt")]
    reader = IndexReader(index)
    texts = [a.text for a in reader.articles(reader.article_ids()).values()]
    assert len(texts) == 3
    for place in ("région", "commune", "métropole"):
        assert any(f"les élus de la {place}" in t for t in texts)
    assert sum("5 M€" in t and "l’œuvre" in t for t in texts) == 2  # the two cp1252/UTF-16 ones


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_decode_or_raise_undecodable(data: bytes) -> None:
    try:
        text, encoding = decode(data)
    except Undecodable:
        return
    assert isinstance(text, str) and encoding
