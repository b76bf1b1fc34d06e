"""The command-line scripts end to end, in subprocesses: build_index.py (exit codes,
summary, progress), clean_article.py and ask.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import (
    ENGLISH_ARTICLE,
    FRENCH_ARTICLE,
    GLACIER_ARTICLE,
    PYTHON,
    ROOT,
    SCRIPTS,
    SEED,
    SEED_TITLE,
    run_script,
    run_with_tty_stderr,
    script_env,
)

from qa.indexing import counted
from qa.ingest import read_file
from qa.store import IndexReader, current_build_id

SUMMARY = re.compile(
    r"^(?P<articles>\d+) articles?, (?P<chunks>\d+) chunks?, (?P<sentences>\d+) sentences?"
    r" \| \+(?P<added>\d+) -(?P<removed>\d+) =(?P<unchanged>\d+)"
    r" \| (?P<skipped>\d+) skipped"
    r" \| [\d.]+s \([\d.]+s encoding\) -> (?P<path>\S+)"
)


def summary(stdout: str) -> dict[str, str]:
    """The one-line summary: the last (and only) line on stdout."""
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    match = SUMMARY.match(lines[-1])
    assert match, lines[-1]
    return match.groupdict()


@dataclass(frozen=True)
class Built:
    corpus: Path
    index: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A French and an English article indexed by the script, with its own chunking."""
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "lanternes.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    (corpus / "bees.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    index = root / "index"
    args = ("--corpus", corpus, "--index", index, "--chunk-size", "300", "--chunk-overlap", "60")
    out = run_script("build_index.py", *args, "--quiet")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # --quiet: nothing on stderr when all goes well
    got = summary(out.stdout)
    assert (got["articles"], got["added"], got["skipped"]) == ("2", "2", "0")
    assert Path(got["path"]) == (index / "current").resolve()
    return Built(corpus, index)


def copy_of(built: Built, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built.index, tmp_path / "index", symlinks=True))


# ---------------------------------------------------------------- build_index.py


def test_build_writes_a_loadable_index(built: Built) -> None:
    reader = IndexReader(built.index)
    assert reader.meta["counts"]["articles"] == 2
    assert reader.meta["chunking"]["size"] == 300
    assert reader.meta["chunking"]["overlap"] == 60
    assert reader.meta["encoder"]["name"] == "use-multilingual-v3"
    reader.close()


@pytest.fixture(scope="module")
def with_tty(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str | Path], str]:
    """A build with stderr on a terminal: (its arguments, what it wrote on stderr)."""
    root = tmp_path_factory.mktemp("tty")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "bees.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    args: list[str | Path] = [SCRIPTS / "build_index.py", "--corpus", corpus, "--index", root / "i"]
    code, out, err = run_with_tty_stderr(args)
    assert code == 0, err
    summary(out)
    return args, err


def test_progress_bar_on_stderr_unless_quiet(with_tty: tuple[list[str | Path], str]) -> None:
    args, err = with_tty
    assert "encoding" in err and "100%" in err, err
    assert "reading" in err and "bees.txt" in err, err  # the file being read and cleaned
    code, out, err = run_with_tty_stderr([*args, "--quiet"])
    assert code == 0
    assert "encoding" not in err and err.strip() == "", err
    summary(out)


def test_progress_bar_ends_full(with_tty: tuple[list[str | Path], str]) -> None:
    _, err = with_tty
    last = [part for part in err.split("\r") if part.strip()][-1]
    match = re.search(r"(\d+)/(\d+)", last)
    assert "100%" in last and match and match.group(1) == match.group(2), last


def test_bad_files_are_skipped_and_listed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good-fr.txt").write_text(FRENCH_ARTICLE, encoding="utf-8")
    (corpus / "good-en.jsonl").write_text(
        json.dumps({"id": "bees", "text": ENGLISH_ARTICLE}) + "\n{broken\n", encoding="utf-8"
    )
    (corpus / "image.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    (corpus / "empty.txt").write_text("")
    (corpus / "invalid.json").write_text('{"text": "unterminated')
    (corpus / "slides.pdf").write_bytes(b"%PDF-1.4")
    (corpus / "huge.txt").write_text(FRENCH_ARTICLE * 1000, encoding="utf-8")
    index = tmp_path / "index"
    limit = ("--max-article-bytes", "100000")
    out = run_script("build_index.py", "--corpus", corpus, "--index", index, *limit, "--quiet")
    assert out.returncode == 1, out.stderr
    got = summary(out.stdout)
    assert (got["articles"], got["skipped"]) == ("2", "6")
    skipped = out.stderr.strip().splitlines()
    assert all(line.startswith("skipped: ") for line in skipped), out.stderr
    expected = {
        "empty.txt": "empty",
        "good-en.jsonl:2": "invalid JSON",
        "image.html": "binary",
        "invalid.json": "invalid JSON",
        "slides.pdf": "unknown format",
        "huge.txt": "bytes, over the 100,000 an article may have",
    }
    assert len(skipped) == len(expected)
    for name, why in expected.items():
        assert any(f"{corpus / name}" in line and why in line for line in skipped), (name, why)
    reader = IndexReader(index)
    assert "bees" in reader.article_ids() and reader.meta["counts"]["articles"] == 2
    reader.close()


def test_missing_corpus_exits_2(tmp_path: Path) -> None:
    index = tmp_path / "index"
    out = run_script("build_index.py", "--corpus", tmp_path / "nope", "--index", index)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {tmp_path / 'nope'}: no such folder."
    assert out.stdout == ""
    assert not (index / "current").exists()


def test_bad_chunk_arguments_exit_2(tmp_path: Path) -> None:
    out = run_script(
        "build_index.py", "--index", tmp_path / "i", "--chunk-size", "100", "--chunk-overlap", "100"
    )
    assert out.returncode == 2
    assert "--chunk-overlap" in out.stderr


def test_index_problems_exit_3(built: Built, tmp_path: Path) -> None:
    article = tmp_path / "glacier.txt"
    article.write_text(GLACIER_ARTICLE, encoding="utf-8")
    missing = tmp_path / "no-index"
    out = run_script("build_index.py", "--index", missing, "--add", article, "--quiet")
    assert out.returncode == 3
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: No index in {missing}/")
    assert "scripts/build_index.py --corpus corpus --index" in lines[0]

    damaged = copy_of(built, tmp_path)
    (damaged / "current" / "meta.json").write_text("{ not json")
    out = run_script("build_index.py", "--index", damaged, "--remove", "x", "--quiet")
    assert out.returncode == 3
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "meta.json" in lines[0] and lines[0].startswith("error: ")


def test_add_then_remove(built: Built, tmp_path: Path) -> None:
    index = copy_of(built, tmp_path)
    before = current_build_id(index)
    article = tmp_path / "glacier.txt"
    article.write_text(GLACIER_ARTICLE, encoding="utf-8")
    [glacier] = read_file(article)[0]

    out = run_script("build_index.py", "--index", index, "--add", article, "--quiet")
    assert out.returncode == 0, out.stderr
    got = summary(out.stdout)
    assert (got["articles"], got["added"], got["removed"], got["unchanged"]) == ("3", "1", "0", "0")
    assert current_build_id(index) != before

    out = run_script("build_index.py", "--index", index, "--remove", glacier.id, "nope", "--quiet")
    assert out.returncode == 1  # one id was unknown
    got = summary(out.stdout)
    assert (got["articles"], got["removed"], got["skipped"]) == ("2", "1", "1")
    assert out.stderr.strip() == f"skipped: nope: no article with this id in {index}."
    reader = IndexReader(index)
    assert glacier.id not in reader.article_ids()
    reader.close()


def test_if_missing_does_nothing_when_built(built: Built) -> None:
    before = current_build_id(built.index)
    out = run_script("build_index.py", "--index", built.index, "--if-missing", "--quiet")
    assert out.returncode == 0
    assert "nothing to do" in out.stdout
    assert current_build_id(built.index) == before


# ---------------------------------------------------------------- clean_article.py


def clean(path: Path) -> tuple[list[dict[str, object]], subprocess.CompletedProcess[str]]:
    out = run_script("clean_article.py", path, timeout=60)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()], out


def test_clean_article_seed() -> None:
    [article], out = clean(SEED)
    assert out.returncode == 0 and out.stderr == ""
    assert set(article) == {
        "id", "title", "text", "lang", "url", "date", "source", "author", "sentences"
    }  # fmt: skip
    assert article["title"] == SEED_TITLE
    assert article["lang"] == "fr"
    assert article["id"] == read_file(SEED)[0][0].id
    text = article["text"]
    assert isinstance(text, str)
    assert "de la campagne militaire, selon la même source." in text
    for chrome in ("noscript", "Please Wait", "folder_open", "AJOUTER AUX FAVORIS", "Comments"):
        assert chrome not in text
    sentences = article["sentences"]
    assert isinstance(sentences, list) and len(sentences) > 10
    previous = 0
    for s in sentences:
        assert set(s) == {"start", "end", "text"}
        assert text[s["start"] : s["end"]] == s["text"]
        assert s["start"] >= previous
        previous = s["end"]


def test_clean_article_records_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "two.json"
    records = [
        {
            "id": "a",
            "title": "Bees",
            "text": ENGLISH_ARTICLE,
            "url": "https://example.org/b",
            "date": "2024-10-01T08:30:00+02:00",
            "outlet": "Lincolnshire Echo",
            "author": "By Jane Doe",
        },
        {"text": FRENCH_ARTICLE},
    ]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    articles, out = clean(path)
    assert out.returncode == 0
    assert len(out.stdout.strip().splitlines()) == 2
    assert articles[0]["id"] == "a"
    assert [a["lang"] for a in articles] == ["en", "fr"]
    assert articles[0]["url"] == "https://example.org/b" and articles[1]["url"] is None
    assert [(a["date"], a["source"], a["author"]) for a in articles] == [
        ("2024-10-01", "Lincolnshire Echo", "Jane Doe"),
        (None, None, None),
    ]
    for a in articles:
        for s in a["sentences"]:  # type: ignore[attr-defined]
            assert a["text"][s["start"] : s["end"]] == s["text"]  # type: ignore[index]


def test_clean_article_html() -> None:
    page = ROOT.parent / "shared" / "data" / "html" / "ledevoir.com.trottinettes.html"
    if not page.exists():
        pytest.skip("no dev pages")
    [article], out = clean(page)
    assert out.returncode == 0
    assert article["title"] == "La fin des trottinettes en libre-service à Montréal"
    assert str(article["url"]).startswith("https://www.ledevoir.com/")
    assert (article["date"], article["source"], article["author"]) == (
        "2020-02-19",
        "Le Devoir",
        "Jeanne Corriveau",
    )


@pytest.mark.parametrize(
    ("name", "content", "code", "words"),
    [
        ("empty.txt", b"", 2, "empty"),
        ("bin.txt", b"\x00\x01\x02", 2, "binary"),
        ("x.docx", b"PK", 2, "unknown format"),
        ("bad.json", b"[{", 2, "invalid JSON"),
        ("part.jsonl", b'{"text": "Un article court."}\n{oops\n', 1, "invalid JSON"),
    ],
)
def test_clean_article_errors(
    tmp_path: Path, name: str, content: bytes, code: int, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    articles, out = clean(path)
    assert out.returncode == code
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and str(path) in lines[0], out.stderr
    assert lines[0].startswith("skipped: " if code == 1 else "error: ")
    assert len(articles) == (1 if code == 1 else 0)


def test_clean_article_missing_file(tmp_path: Path) -> None:
    _, out = clean(tmp_path / "missing.txt")
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {tmp_path / 'missing.txt'}: no such file."


# ---------------------------------------------------------------- ask.py


def test_ask_prints_the_answer(built: Built) -> None:
    question = "Who said the warm spring helped the colonies grow?"
    out = run_script("ask.py", "--index", built.index, question)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["question"] == question and answer["language"] == "en"
    assert answer["answered"] is True
    assert "Dr. Ellis" in answer["answer"]
    top = answer["citations"][0]
    assert top["sentence"] == answer["answer"]
    assert {"article_id", "title", "start", "end", "score"} <= set(top)


def test_ask_json_lines_loads_the_index_once(built: Built, tmp_path: Path) -> None:
    """Questions answered after the index folder is gone prove it was loaded once."""
    index = copy_of(built, tmp_path)
    proc = subprocess.Popen(
        [PYTHON, str(SCRIPTS / "ask.py"), "--index", str(index), "--json-lines"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=script_env(),
    )
    assert proc.stdin and proc.stdout

    def ask(question: str) -> dict[str, object]:
        assert proc.stdin and proc.stdout
        proc.stdin.write(question + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        result: dict[str, object] = json.loads(line)
        return result

    try:
        first = ask("Combien de visiteurs le festival des lanternes a-t-il attirés ?")
        assert first["answered"] is True and "douze mille" in str(first["answer"])
        shutil.rmtree(index)
        second = ask("What will the cooperative sell at the county fair?")
        assert second["answered"] is True and "honey" in str(second["answer"])
        proc.stdin.write("\n")  # blank lines are skipped
        third = ask("x" * 3000)
        assert "error" in third and "limit" in str(third["error"])
        proc.stdin.close()
        assert proc.stdout.read() == ""
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_ask_missing_index_exits_3(tmp_path: Path) -> None:
    out = run_script("ask.py", "--index", tmp_path / "none", "Une question ?")
    assert out.returncode == 3
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: No index in")


def test_counts_in_messages_take_their_plural() -> None:
    """The build summary and the server's first line: "1 article", "2 articles"."""
    assert counted(1, "article") == "1 article"
    assert counted(0, "article") == "0 articles"
    assert counted(12, "sentence") == "12 sentences"
