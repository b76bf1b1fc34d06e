"""Reading article files (qa.ingest): formats, ids, language, and named errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import (
    DATA,
    ENGLISH_ARTICLE,
    FRENCH_ARTICLE,
    SEED,
    SEED_TITLE,
    assert_sentence_invariants,
    piaf_contexts,
)

from qa.errors import (
    ArticleEmpty,
    ArticleTooLarge,
    CorpusMissing,
    InputError,
    InvalidRecord,
    QAError,
    UnknownFormat,
)
from qa.ingest import content_id, corpus_files, read_file, read_files
from qa.records import Article
from qa.segment import split_sentences
from qa.settings import Settings

PAGE = """<html><head><title>Le maire inaugure le pont</title></head><body>
<nav><a href="/">Accueil</a> <a href="/sport">Sport</a></nav>
<article><h1>Le maire inaugure le pont</h1>
<p>Le maire de Besançon a inauguré samedi le nouveau pont sur le Doubs, après deux ans de
travaux.</p>
<p>Les habitants pourront le traverser à pied ou à vélo dès lundi matin.</p></article>
<footer>Mentions légales</footer></body></html>"""

RECORD = {
    "id": "bees-2024",
    "title": "Honey harvest",
    "text": "The beekeepers of Lincolnshire collected a record honey harvest this autumn.",
    "url": "https://example.org/bees",
    "date": "2024-10-01",
    "lang": "en",
}


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def only(path: Path) -> Article:
    articles, errors = read_file(path)
    assert errors == []
    assert len(articles) == 1
    return articles[0]


# ---------------------------------------------------------------- formats


def test_txt_seed() -> None:
    article = only(SEED)
    assert article.title == SEED_TITLE
    assert article.lang == "fr"
    assert article.id == content_id(article.text)
    assert article.origin == str(SEED)
    assert "de la campagne militaire, selon la même source." in article.text
    for chrome in ("noscript", "Please Wait", "folder_open", "AJOUTER AUX FAVORIS", "Comments"):
        assert chrome not in article.text


def test_txt_small(tmp_path: Path) -> None:
    article = only(write(tmp_path / "fr.txt", FRENCH_ARTICLE))
    assert article.title == "Le festival des lanternes de Montbéliard"
    assert article.lang == "fr"
    assert "trois cents lanternes" in article.text
    assert article.url is None


def test_html_page(tmp_path: Path) -> None:
    article = only(write(tmp_path / "pont.html", PAGE))
    assert article.title == "Le maire inaugure le pont"
    assert article.text.startswith("Le maire de Besançon a inauguré samedi")
    assert "vélo dès lundi matin." in article.text
    assert "Accueil" not in article.text and "Mentions légales" not in article.text
    assert article.lang == "fr"


@pytest.mark.skipif(not (DATA / "html").is_dir(), reason="no dev pages")
def test_html_dev_pages() -> None:
    pages = sorted((DATA / "html").glob("*.html"))
    assert len(pages) == 10
    articles, errors = read_files(pages)
    assert errors == []
    assert len(articles) == 10
    assert len({a.id for a in articles}) == 10
    assert all(a.title and a.text.strip() and a.lang == "fr" for a in articles)
    by_name = {Path(a.origin or "").name: a for a in articles}
    ledevoir = by_name["ledevoir.com.trottinettes.html"]
    assert ledevoir.title == "La fin des trottinettes en libre-service à Montréal"
    assert ledevoir.url and ledevoir.url.startswith("https://www.ledevoir.com/")


def test_json_object_keeps_every_field(tmp_path: Path) -> None:
    article = only(write(tmp_path / "bees.json", json.dumps(RECORD)))
    assert (article.id, article.title, article.url, article.date, article.lang) == (
        "bees-2024",
        "Honey harvest",
        "https://example.org/bees",
        "2024-10-01",
        "en",
    )
    assert article.text == RECORD["text"]
    assert article.origin == str(tmp_path / "bees.json")


def test_json_list(tmp_path: Path) -> None:
    records = [RECORD, {"text": FRENCH_ARTICLE}]
    path = write(tmp_path / "two.json", json.dumps(records, ensure_ascii=False))
    articles, errors = read_file(path)
    assert errors == []
    assert [a.id for a in articles] == ["bees-2024", content_id(FRENCH_ARTICLE.strip())]
    assert [a.origin for a in articles] == [f"{path}[0]", f"{path}[1]"]
    assert articles[1].lang == "fr"


def test_jsonl_only_text_required(tmp_path: Path) -> None:
    lines = [json.dumps({"text": ENGLISH_ARTICLE}), "", json.dumps(RECORD)]
    path = write(tmp_path / "a.jsonl", "\n".join(lines) + "\n")
    articles, errors = read_file(path)
    assert errors == []
    first, second = articles
    assert first.id == content_id(ENGLISH_ARTICLE.strip())
    assert first.lang == "en"
    assert first.title.startswith("Beekeepers of Lincolnshire")
    assert (first.url, first.date) == (None, None)
    assert first.origin == f"{path}:1"
    assert second.id == "bees-2024" and second.origin == f"{path}:3"


def test_jsonl_bad_line_reported_others_read(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "one", "text": "Le premier article parle du budget de la ville."}),
        '{"id": "two", "text": "unterminated',
        json.dumps({"id": "three", "title": "no text here"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "five", "text": "The fifth article is about the city budget."}),
    ]
    path = write(tmp_path / "mixed.jsonl", "\n".join(lines))
    articles, errors = read_file(path)
    assert [a.id for a in articles] == ["one", "five"]
    assert [type(e) for e in errors] == [InvalidRecord] * 3
    messages = [str(e) for e in errors]
    assert messages[0].startswith(f"{path}:2: invalid JSON")
    assert messages[1].startswith(f"{path}:3:") and "'text'" in messages[1]
    assert messages[2].startswith(f"{path}:4:") and "JSON object" in messages[2]


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    raw = "\ufeff" + FRENCH_ARTICLE.replace("\n", "\r\n")
    article = only(write(tmp_path / "bom.txt", raw.encode("utf-8")))
    assert article.title == "Le festival des lanternes de Montbéliard"
    assert "\r" not in article.text and "\ufeff" not in article.text


# ---------------------------------------------------------------- ids and language


def test_ids_are_stable_content_hashes(tmp_path: Path) -> None:
    a = only(write(tmp_path / "a.txt", FRENCH_ARTICLE))
    b = only(write(tmp_path / "copy-of-a.txt", FRENCH_ARTICLE))
    again = only(tmp_path / "a.txt")
    changed = only(write(tmp_path / "c.txt", FRENCH_ARTICLE.replace("douze", "treize")))
    assert a.id == b.id == again.id == content_id(a.text)
    assert len(a.id) == 16 and int(a.id, 16) >= 0
    assert changed.id != a.id


def test_given_id_is_kept_whatever_the_content(tmp_path: Path) -> None:
    one = only(write(tmp_path / "1.json", json.dumps({"id": "x-1", "text": "Un texte."})))
    two = only(write(tmp_path / "2.json", json.dumps({"id": "x-1", "text": "Un autre texte."})))
    assert one.id == two.id == "x-1"


def test_same_text_in_txt_and_json_gets_the_same_id(tmp_path: Path) -> None:
    text = "Le conseil municipal a voté le budget. Il entre en vigueur en janvier."
    txt = only(write(tmp_path / "a.txt", text))
    rec = only(write(tmp_path / "a.json", json.dumps({"text": text}, ensure_ascii=False)))
    assert txt.text == rec.text == text
    assert txt.id == rec.id


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        (FRENCH_ARTICLE, "fr"),
        (ENGLISH_ARTICLE, "en"),
        ("Le gouvernement a annoncé une réforme des retraites pour l'an prochain.", "fr"),
        ("The government announced a pension reform for next year.", "en"),
    ],
)
def test_language_detection(tmp_path: Path, text: str, lang: str) -> None:
    assert only(write(tmp_path / "a.txt", text)).lang == lang
    record = only(write(tmp_path / "a.jsonl", json.dumps({"text": text})))
    assert record.lang == lang


def test_given_language_wins(tmp_path: Path) -> None:
    record = {"text": "The government announced a reform.", "lang": "fr"}
    assert only(write(tmp_path / "a.json", json.dumps(record))).lang == "fr"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "content", "error", "words"),
    [
        ("empty.txt", b"", ArticleEmpty, ["empty"]),
        ("blank.html", b"  \n\t\n", ArticleEmpty, ["empty"]),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", UnknownFormat, ["binary"]),
        # No encoding reads it (Latin-1 and cp1252 pages are read: test_encodings.py).
        ("noise.txt", bytes(range(1, 256)) * 2, UnknownFormat, ["encoding", "UTF-8"]),
        ("report.pdf", b"%PDF-1.4 whatever", UnknownFormat, [".pdf", ".txt", ".jsonl"]),
        ("README2", b"no extension", UnknownFormat, ["no extension"]),
        ("bad.json", b'{"text": "oops",}', InvalidRecord, ["invalid JSON", "line 1"]),
        ("notext.json", b'{"title": "A title only"}', InvalidRecord, ["'text'"]),
        ("number.json", b'{"text": 42}', InvalidRecord, ["'text'"]),
        ("scalar.json", b"42", InvalidRecord, ["JSON object", "int"]),
        ("blank-text.json", b'{"text": "  \\n "}', ArticleEmpty, ["no article text"]),
        ("chrome.html", b"<html><body><nav>Menu</nav></body></html>", ArticleEmpty, ["cleaning"]),
        ("allbad.jsonl", b'{"a": 1}\n{"b": 2}\n', InvalidRecord, ["none of its 2 records"]),
    ],
)
def test_bad_input_raises_a_named_error(
    tmp_path: Path, name: str, content: bytes, error: type[InputError], words: list[str]
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(error) as info:
        read_file(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, message
    assert "\n" not in message
    assert isinstance(info.value, QAError) and info.value.exit_code == 2


def test_empty_json_list_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ArticleEmpty, match=r"empty\.json"):
        read_file(write(tmp_path / "empty.json", "[]"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusMissing, match="no such file"):
        read_file(tmp_path / "nope.txt")


def test_read_files_keeps_going(tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", FRENCH_ARTICLE)
    empty = write(tmp_path / "empty.txt", "")
    binary = write(tmp_path / "bin.html", b"\x00\x01\x02binary")
    bad = write(tmp_path / "bad.json", "{")
    mixed = write(tmp_path / "m.jsonl", '{"text": "The mayor spoke on Monday."}\n[1]\n')
    articles, errors = read_files([good, empty, binary, bad, mixed])
    assert [a.origin for a in articles] == [str(good), f"{mixed}:1"]
    assert [type(e) for e in errors] == [ArticleEmpty, UnknownFormat, InvalidRecord, InvalidRecord]
    assert [str(e).split(":")[0] for e in errors] == [str(empty), str(binary), str(bad), str(mixed)]


def test_corpus_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.txt", "a.html", "sub/c.jsonl", "notes.pdf", ".hidden.txt", "README.md"):
        write(tmp_path / name, "x")
    assert [p.relative_to(tmp_path).as_posix() for p in corpus_files(tmp_path)] == [
        "a.html",
        "b.txt",
        "notes.pdf",  # reported by the build as an unknown format, not silently dropped
        "sub/c.jsonl",
    ]
    with pytest.raises(CorpusMissing, match="no such folder"):
        corpus_files(tmp_path / "missing")


# ---------------------------------------------------------------- large articles


def test_article_over_the_size_limit_is_skipped(tmp_path: Path) -> None:
    """A .txt or .html file is measured before it is read; a record by its text."""
    text = write(tmp_path / "long.txt", FRENCH_ARTICLE)
    page = write(tmp_path / "long.html", PAGE)
    limit = len(PAGE.encode("utf-8")) - 1
    for path in (text, page):
        size = path.stat().st_size
        with pytest.raises(ArticleTooLarge) as info:
            read_file(path, max_bytes=min(size - 1, limit))
        message = str(info.value)
        assert message.startswith(f"{path}: {size:,} bytes"), message
        assert "--max-article-bytes" in message and "QA_MAX_ARTICLE_BYTES" in message
        assert info.value.exit_code == 2
        assert read_file(path, max_bytes=size)[0]  # at the limit it is read
    records = write(
        tmp_path / "r.jsonl",
        json.dumps({"text": "Court."}) + "\n" + json.dumps({"text": "Long. " * 100}) + "\n",
    )
    articles, errors = read_file(records, max_bytes=100)
    assert [a.text for a in articles] == ["Court."]
    assert [type(e) for e in errors] == [ArticleTooLarge]
    assert str(errors[0]).startswith(f"{records}:2: 600 bytes"), errors[0]


def test_read_files_reports_progress_in_bytes(tmp_path: Path) -> None:
    first = write(tmp_path / "a.txt", FRENCH_ARTICLE)
    second = write(tmp_path / "b.txt", ENGLISH_ARTICLE)
    calls: list[tuple[int, int, str]] = []
    read_files([first, second], progress=lambda *call: calls.append(call))
    total = first.stat().st_size + second.stat().st_size
    assert calls == [
        (0, total, "a.txt"),
        (first.stat().st_size, total, "b.txt"),
        (total, total, ""),
    ]


def _two_megabytes() -> str:
    """~2 MB of distinct real paragraphs, as scripts/bench_segment.py writes them."""
    contexts = piaf_contexts()
    lines, size, i = ["Un très long article"], 0, 0
    while size < 2_000_000:
        # Named in letters: the cleaner takes paragraphs that open alike for copies.
        name = "".join("abcdefghijklmnopqrstuvwxyz"[i // 26**k % 26] for k in range(3))
        lines.append(f"Partie {name}. {contexts[i % len(contexts)]}")
        size += len(lines[-1].encode("utf-8")) + 1
        i += 1
    return "\n".join(lines)


@pytest.mark.slow
def test_two_megabyte_article_is_read_and_split_whole(tmp_path: Path) -> None:
    """Under the default limit, and split in linear time (it never finished before)."""
    path = write(tmp_path / "long.txt", _two_megabytes())
    assert 2_000_000 <= path.stat().st_size < Settings().max_article_bytes
    article = only(path)
    sentences = split_sentences(article.text)
    assert len(sentences) > 10_000
    assert_sentence_invariants(article.text, sentences)
