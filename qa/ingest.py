"""Reading article files (.txt, .html, .json, .jsonl, RSS and Atom feeds) into Articles.

Each reader returns articles or raises a named InputError; a build reports the
error for that file and carries on with the others.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .clean import Cleaned, clean_html, clean_text, normalize
from .decode import Undecodable, decode, has_bom
from .errors import (
    ArticleEmpty,
    ArticleTooLarge,
    CorpusMissing,
    InputError,
    InvalidRecord,
    UnknownFormat,
    Unreadable,
)
from .feeds import FEED_SUFFIXES, looks_like_feed, read_feed
from .lang import detect_language
from .metadata import clean_author, record_field
from .publication_date import normalize_date
from .records import Article
from .settings import Settings

TEXT_SUFFIXES = (".txt", ".text")
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + JSON_SUFFIXES + FEED_SUFFIXES
RECORD_FIELDS = ("id", "title", "text", "url", "date", "lang")
# Other systems' names for the outlet and the author, first found wins.
SOURCE_FIELDS = ("source", "outlet", "site_name", "sitename", "publisher")
AUTHOR_FIELDS = ("author", "authors", "byline")


def content_id(text: str) -> str:
    """A stable id from the cleaned text: same content, same id."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if not data.strip():
        raise ArticleEmpty(f"{path}: the file is empty.")
    if b"\x00" in data[:8192] and not has_bom(data):
        raise UnknownFormat(f"{path}: binary file, not text, HTML or JSON.")
    try:
        text, _ = decode(data)
    except Undecodable as exc:
        raise UnknownFormat(
            f"{path}: cannot be read as text ({exc}); save it as UTF-8 to index it."
        ) from exc
    return text


def _article(cleaned: Cleaned, source: str, given: dict[str, Any] | None = None) -> Article:
    given = given or {}
    text = cleaned.text
    if not text.strip():
        raise ArticleEmpty(f"{source}: no article text is left after cleaning.")
    title = _str(given.get("title")) or cleaned.title or _first_words(text)
    return Article(
        id=_str(given.get("id")) or content_id(text),
        title=normalize(title).strip(),
        text=text,
        lang=_str(given.get("lang")) or detect_language(text),
        url=_str(given.get("url")) or cleaned.url,
        date=normalize_date(given.get("date")) or cleaned.date,
        origin=source,
        credit=cleaned.credit,
        source=_str(record_field(given, *SOURCE_FIELDS)) or cleaned.source,
        author=clean_author(_str(record_field(given, *AUTHOR_FIELDS))) or cleaned.author,
    )


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return _utf8(str(value)).strip() or None


def _utf8(text: str) -> str:
    """JSON escapes can smuggle in lone surrogates, which no UTF-8 store accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRecord(
            f"text holds a character that is not valid Unicode: {exc.reason}"
        ) from exc
    return text


def _first_words(text: str, n: int = 10) -> str:
    words = text.split()
    return " ".join(words[:n]) + (" …" if len(words) > n else "")


def _check_size(source: str, size: int, max_bytes: int) -> None:
    """Cleaning and splitting are linear, but a multi-megabyte "article" is
    nearly always a dump or a mistake: it is skipped with the way to admit it."""
    if size > max_bytes:
        raise ArticleTooLarge(
            f"{source}: {size:,} bytes, over the {max_bytes:,} an article may have; skipped. "
            "Split it, or raise the limit (--max-article-bytes, QA_MAX_ARTICLE_BYTES)."
        )


def article_from_record(
    record: Any, source: str, max_bytes: int = Settings.max_article_bytes
) -> Article:
    """A JSON record `{"id", "title", "text", "url", "date", "lang", "source", "author"}`;
    only text is required. A date is stored as YYYY-MM-DD (None if it holds no
    date); the outlet may also be called outlet, site_name or publisher."""
    if not isinstance(record, dict):
        raise InvalidRecord(
            f"{source}: a record must be a JSON object, not {type(record).__name__}."
        )
    text = record.get("text")
    if not isinstance(text, str):
        raise InvalidRecord(f"{source}: the record has no string field 'text'.")
    # Characters first: a cheap bound before encoding (a character is 1-4 bytes).
    if len(text) > max_bytes // 4:
        _check_size(source, len(text.encode("utf-8", "surrogatepass")), max_bytes)
    try:
        _utf8(text)
        for key in RECORD_FIELDS + SOURCE_FIELDS + AUTHOR_FIELDS:
            _str(record_field(record, key))
    except InvalidRecord as exc:
        raise InvalidRecord(f"{source}: {exc}") from exc
    # A record's text is the article as another system stored it: trusted as
    # clean (the chrome cleaner could drop short real paragraphs), only normalised.
    return _article(Cleaned(title=None, text=normalize(text).strip(), credit=None), source, record)


def read_file(
    path: Path, max_bytes: int = Settings.max_article_bytes
) -> tuple[list[Article], list[InputError]]:
    """The articles in one file, and the errors of records that were skipped.

    Raises an InputError naming the file when nothing in it can be read. An
    article over `max_bytes` (a .txt or .html file, a record's text) is skipped.
    """
    if not path.exists():
        raise CorpusMissing(f"{path}: no such file.")
    # One spelling per file, so that adding it again by another path replaces it.
    path = path.resolve()
    suffix = path.suffix.lower()
    # A feed by its name or, whatever its name, by its root element (qa.feeds).
    if suffix in FEED_SUFFIXES or looks_like_feed(path):
        return read_feed(path, max_bytes)
    if suffix not in SUFFIXES:
        raise UnknownFormat(
            f"{path}: unknown format {suffix or '(no extension)'}; "
            f"expected one of {', '.join(SUFFIXES)}."
        )
    if suffix not in JSON_SUFFIXES:
        _check_size(str(path), path.stat().st_size, max_bytes)
    raw = _decode(path)
    if suffix in TEXT_SUFFIXES:
        return [_article(clean_text(raw), str(path))], []
    if suffix in HTML_SUFFIXES:
        return [_article(clean_html(raw), str(path))], []
    articles: list[Article] = []
    errors: list[InputError] = []
    for item in _read_records(raw, path, max_bytes):
        (articles if isinstance(item, Article) else errors).append(item)  # type: ignore[arg-type]
    if not articles and not errors:
        raise ArticleEmpty(f"{path}: no records.")
    if not articles and errors:
        raise (
            errors[0]
            if len(errors) == 1
            else InvalidRecord(
                f"{path}: none of its {len(errors)} records could be read; first: {errors[0]}"
            )
        )
    return articles, errors


def _read_records(raw: str, path: Path, max_bytes: int) -> Iterator[Article | InputError]:
    """Articles of a .json (object or list) or .jsonl file; a bad record is
    yielded as its error so the good ones are still indexed."""
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidRecord(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno}).") from exc
        except RecursionError as exc:
            raise InvalidRecord(f"{path}: JSON nested too deeply.") from exc
        many = isinstance(data, list)
        for i, record in enumerate(data if many else [data]):
            yield _try_record(record, f"{path}[{i}]" if many else str(path), max_bytes)
        return
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield InvalidRecord(f"{path}:{lineno}: invalid JSON ({exc.msg}).")
            continue
        except RecursionError:
            yield InvalidRecord(f"{path}:{lineno}: JSON nested too deeply.")
            continue
        yield _try_record(record, f"{path}:{lineno}", max_bytes)


def _try_record(record: Any, source: str, max_bytes: int) -> Article | InputError:
    try:
        return article_from_record(record, source, max_bytes)
    except InputError as exc:
        return exc


def corpus_files(folder: Path) -> list[Path]:
    """Every file under `folder` (recursively, sorted), whatever its suffix.

    Unknown formats are returned too, so that the build reports them.
    """
    if not folder.is_dir():
        raise CorpusMissing(f"{folder}: no such folder.")
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "README"))
    )


# (bytes read, bytes to read in all, name of the file being read or "" at the end)
ReadProgress = Callable[[int, int, str], None]


def read_files(
    paths: list[Path],
    max_bytes: int = Settings.max_article_bytes,
    progress: ReadProgress | None = None,
) -> tuple[list[Article], list[InputError]]:
    """All articles that could be read, and one error per file that could not.

    `progress` is told before each file and at the end, so that a build of
    large inputs shows how far reading and cleaning have gone, and on what.
    """
    articles: list[Article] = []
    errors: list[InputError] = []
    sizes = [_size(p) for p in paths] if progress else [0] * len(paths)
    total, done = sum(sizes), 0
    for path, size in zip(paths, sizes, strict=True):
        if progress:
            progress(done, total, path.name)
        try:
            found, skipped = read_file(path, max_bytes)
        except InputError as exc:
            errors.append(exc)
        else:
            articles.extend(found)
            errors.extend(skipped)
        done += size
    if progress:
        progress(done, total, "")
    return articles, errors


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
