"""Plain helpers shared by the indexing test modules (no fixtures here: conftest.py
belongs to the web tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from qa import indexing
from qa.clean import clean_text, normalize
from qa.embed import Encoder, load_encoder
from qa.pipeline import QAEngine
from qa.records import Article
from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
DATA = ROOT.parent / "shared" / "data"
SEED = ROOT / "corpus" / "seed-article.txt"
PIAF = DATA / "piaf" / "piaf-dev.json"
SEED_TITLE = "Réunion à Paris de la coalition internationale"
PYTHON = sys.executable

# Two small articles with no word in common with the seed, one per language.
FRENCH_ARTICLE = """Le festival des lanternes de Montbéliard

Le festival des lanternes de Montbéliard a attiré douze mille visiteurs samedi soir.

Les organisateurs ont installé trois cents lanternes de papier le long de la rivière Allan.

M. Girardot, le maire, a remercié les bénévoles à 21H30 devant l'hôtel de ville.
"""

ENGLISH_ARTICLE = """Beekeepers of Lincolnshire report a record honey harvest

The beekeepers of Lincolnshire collected a record honey harvest this autumn.

Dr. Ellis said the warm spring let the colonies grow to 1.5 times their usual size.

The cooperative will sell the honey at the county fair in October.
"""

# An article that a later test adds, then changes, then removes.
GLACIER_ARTICLE = """Le glacier du Trient recule

Le glacier du Trient a reculé de quarante mètres depuis l'été dernier, selon les glaciologues.

Les guides de montagne ont déplacé le sentier qui mène à la cabane du Trient.
"""

# The same story told twice, eight years apart, by two outlets (qa.dates,
# newer first, filters): Friday 22 January 2016 is Le Drian's date below.
FRIDAY = "2016-01-22"
NEWS_QUESTION = "Qui est le ministre de la Défense ?"
NEWS_WHEN = "Quand le ministre de la Défense a-t-il réuni la coalition à Paris ?"
STORY = (
    "Coalition contre l'Etat islamique à Paris\n\n"
    "Le ministre de la Défense, {name}, a réuni mercredi à Paris les ministres de la "
    "coalition contre l'Etat islamique.\n\n"
    "Les ministres ont promis d'envoyer plus d'avions et de conseillers militaires."
)


def news_records(drian_date: str, lecornu_date: str) -> list[dict[str, str]]:
    """The same story told twice, eight years apart, by two outlets; an English
    article from a third; one with neither date nor outlet."""
    return [
        {
            "id": "drian",
            "text": STORY.format(name="Jean-Yves Le Drian"),
            "date": drian_date,
            "source": "Le Monde",
            "lang": "fr",
        },
        {
            "id": "lecornu",
            "text": STORY.format(name="Sébastien Lecornu"),
            "date": lecornu_date,
            "source": "Libération",
            "lang": "fr",
        },
        {"id": "honey", "text": ENGLISH_ARTICLE, "date": "2020-06-01", "source": "Reuters"},
        {"id": "lanterns", "text": FRENCH_ARTICLE},
    ]


def build_news(folder: Path, drian_date: str, lecornu_date: str) -> QAEngine:
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in news_records(drian_date, lecornu_date)]
    (corpus / "news.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = Settings(index_dir=str(folder / "index"))
    indexing.build(corpus, folder / "index", encoder(), settings)
    return QAEngine(folder / "index", encoder(), settings)


@cache
def encoder(name: str = "use-multilingual-v3") -> Encoder:
    """A real encoder, loaded (and warmed up) once per test process."""
    enc = load_encoder(name)
    enc.encode(["warm-up"])
    return enc


class CountingEncoder:
    """The real encoder, recording every text it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.encode(texts)


def titled(article: Article, text: str) -> str:
    """A text under its article's title, as the build embeds sentences and chunks."""
    return f"{article.title}\n{text}" if article.title else text


def seed_text() -> str:
    return clean_text(SEED.read_text(encoding="utf-8")).text


@lru_cache(maxsize=1)
def piaf_contexts() -> tuple[str, ...]:
    """The 185 PIAF paragraphs, normalised as the build sees them."""
    raw = json.loads(PIAF.read_text(encoding="utf-8"))
    return tuple(normalize(p["context"]).strip() for doc in raw["data"] for p in doc["paragraphs"])


@lru_cache(maxsize=1)
def real_texts() -> tuple[tuple[str, str], ...]:
    """(name, text): the cleaned seed, the cleaned text dumps, the raw text dumps and
    the PIAF paragraphs: real French news prose, with chrome in the raw dumps."""
    out = [("seed", seed_text()), ("seed-raw", SEED.read_text(encoding="utf-8"))]
    for path in sorted((DATA / "text").glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        out += [(path.name, clean_text(raw).text), (f"{path.name}-raw", raw)]
    out += [(f"piaf-{i}", t) for i, t in enumerate(piaf_contexts())]
    return tuple(out)


def write_piaf_jsonl(path: Path, n: int | None = None) -> int:
    """PIAF paragraphs as .jsonl records (id, title, text, lang); returns how many."""
    raw = json.loads(PIAF.read_text(encoding="utf-8"))
    lines = []
    for doc in raw["data"]:
        for p in doc["paragraphs"]:
            record = {"id": f"piaf-{len(lines)}", "title": doc["title"], "text": p["context"]}
            lines.append(json.dumps({**record, "lang": "fr"}, ensure_ascii=False))
    lines = lines[:n] if n is not None else lines
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def script_env(**extra: str) -> dict[str, str]:
    """The environment for a script: no QA_* settings leaking in, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_script(
    name: str,
    *args: str | Path,
    timeout: float = 120,
    stdin: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run scripts/<name> with the venv's Python; text output captured."""
    return subprocess.run(
        [PYTHON, str(SCRIPTS / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        cwd=cwd or ROOT,
        env=env or script_env(),
    )


def popen_script(name: str, *args: str | Path, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [PYTHON, str(SCRIPTS / name), *map(str, args)], env=script_env(), cwd=ROOT, **kwargs
    )


def wait_for(predicate: Callable[[], bool], timeout: float, every: float = 0.002) -> bool:
    """Poll `predicate()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def nonspace_positions(text: str) -> list[int]:
    return [i for i, c in enumerate(text) if not c.isspace()]


def assert_sentence_invariants(text: str, sentences: Sequence[object]) -> None:
    """Exact slices, non-empty and stripped, ordered, non-overlapping, and every
    non-whitespace character of `text` inside a sentence."""
    covered = bytearray(len(text))
    previous_end = 0
    for s in sentences:
        start, end, body = s.start, s.end, s.text  # type: ignore[attr-defined]
        assert text[start:end] == body, (start, end, body)
        assert body, (start, end)
        assert body == body.strip(), repr(body)
        assert start >= previous_end, ("overlap or disorder", start, previous_end)
        previous_end = end
        covered[start:end] = b"\x01" * (end - start)
    lost = [i for i in nonspace_positions(text) if not covered[i]]
    assert not lost, f"characters outside every sentence: {[text[i] for i in lost][:20]}"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_with_tty_stderr(
    args: Sequence[str | Path],
    until: str | None = None,
    then: Callable[[subprocess.Popen[bytes]], None] | None = None,
    timeout: float = 120,
) -> tuple[int, str, str]:
    """Run a command with stderr on a pseudo-terminal (so progress bars show).

    When `until` appears on stderr, `then(process)` is called (e.g. to send a
    signal). Returns (exit code, stdout, stderr).
    """
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    # 24 rows, 100 columns: a terminal of size 0 gets an empty progress bar
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [PYTHON, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=ROOT,
        env=script_env(),
        # A test run started in the background (`make test &`) inherits an
        # ignored SIGINT, which Python would keep: Ctrl-C must reach the child.
        preexec_fn=_default_sigint,
    )
    os.close(slave)
    seen = b""
    fired = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    data = b""
                if not data and proc.poll() is not None:
                    break
                seen += data
            elif proc.poll() is not None:
                break
            if until and not fired and until.encode() in seen and then is not None:
                then(proc)
                fired = True
        else:
            proc.kill()
            raise TimeoutError(f"{args} still running after {timeout}s")
        out = proc.stdout.read().decode() if proc.stdout else ""
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.stdout:
            proc.stdout.close()
    return code, out, seen.decode(errors="replace").replace("\r\n", "\n")


def garble_sqlite_pages(build: Path) -> str:
    """Garbage inside the store's pages after the schema, same size: the header
    and the row counts still read; only the requests that touch them would
    fail (/health said ok while every /ask was a 500)."""
    path = build / "store.sqlite"
    data = bytearray(path.read_bytes())
    for page in range(4096 * 3, len(data), 4096):
        data[page + 100 : page + 400] = os.urandom(300)
    path.write_bytes(bytes(data))
    return "store.sqlite"
