"""One settings object: every knob with its default, its help text and its
environment variable (`QA_<NAME>`), so docs and code cannot drift apart."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    index_dir: str = _setting("index", "Folder of the built index.")
    corpus_dir: str = _setting("corpus", "Folder of articles the index is built from.")
    model: str = _setting(
        "use-multilingual-v3",
        "Encoder: 'use-multilingual-v3' (offline, multilingual) or any "
        "sentence-transformers model name or local folder.",
    )
    rescore_model: str = _setting(
        "multilingual-e5-small-q4",
        "Second encoder of the sentences, asked when the first pass is unsure: its "
        "nearest sentences widen the candidates and its cosine is a feature of each: "
        "'multilingual-e5-small-q4' (offline, multilingual; ~9 ms a question on one "
        "core, and ~60% of a build's encoding time), 'none', or any name `model` accepts "
        "(then retrain the answer model with scripts/train.py).",
    )
    question_tower: str = _setting(
        "auto",
        "Which USE reads questions: 'auto' (the fine-tuned question tower "
        "qa/models/question-tower.npz when the answer model was fitted with it: "
        "scripts/train.py trains both), 'none' (stock USE), or a tower file. Sentences "
        "are always read by stock USE, so an index serves with either.",
    )
    threads: int = _setting(0, "Encoder threads; 0 means the machine's core count.")
    query_threads: int = _setting(
        1,
        "Threads of `model` when it encodes questions (serving, ask, evaluate), and of "
        "numpy's BLAS while a question is answered: one question gains little from more, "
        "and they would contend with the second encoder's. 0 means the machine's core "
        "count.",
    )
    chunk_size: int = _setting(600, "Target chunk length in characters (whole sentences).")
    chunk_overlap: int = _setting(150, "Characters of overlap between consecutive chunks.")
    store: str = _setting(
        "faiss",
        "Where chunks are searched: 'faiss' (files in the index folder) or 'milvus'.",
    )
    milvus_uri: str = _setting(
        "",
        "Milvus address for --store milvus: http://host:19530, or a local file "
        "path for Milvus Lite (default: <index>/milvus.db).",
    )
    top_k: int = _setting(5, "Passages returned and read per question.")
    max_top_k: int = _setting(50, "Largest top_k a caller may ask for.")
    max_question_chars: int = _setting(2000, "Longest question accepted, in characters.")
    abstain_threshold: float = _setting(
        0.0,
        "Answer only when the best sentence's score (its margin over the calibrated "
        "threshold) reaches this: 0 is the calibrated default, more abstains more.",
    )
    sure_threshold: float = _setting(
        1.5,
        "An answer whose score is under this says in its message that it is unsure: "
        "on the dev sets 40% of such answers are right against 68% above it, and they "
        "are 2 in 3 of the answers given to questions the articles do not cover.",
    )
    max_article_bytes: int = _setting(
        5_000_000,
        "Largest article a build reads, in bytes: a .txt or .html file, or the text of "
        "one .json/.jsonl record. A larger one is skipped with a message (cleaning and "
        "splitting take ~2.5 s per MB).",
    )
    watch_interval: float = _setting(
        1.0, "Seconds between two listings of a watched drop folder (build --watch)."
    )
    watch_settle: float = _setting(
        2.0,
        "Seconds a file in a watched drop folder must keep its size and time before it "
        "is added, so that one still being copied is not read half-way.",
    )
    host: str = _setting("127.0.0.1", "Address the web server binds to.")
    port: int = _setting(8000, "Port the web server listens on.")
    max_body_bytes: int = _setting(16384, "Largest request body accepted by /ask, in bytes.")
    feedback_db: str = _setting(
        "", "SQLite file where answer feedback is stored (default: beside the index folder)."
    )
    feedback_rate: int = _setting(
        30,
        "Feedback posts one client (remote address) may send a minute, counted by each "
        "server process; past it, 429. 0 = no limit.",
    )
    feedback_max_rows: int = _setting(
        50_000,
        "Feedback rows kept: past this, the oldest are deleted (a row is at most ~13 kB, "
        "so the file stays under ~650 MB; real votes are ~0.3 kB).",
    )
    admin_token: str = _setting(
        "",
        "Token for GET /feedback, which lists every user's questions (sent as "
        "'Authorization: Bearer <token>'); unset, the route answers 404.",
    )
    allowed_hosts: str = _setting(
        "127.0.0.1,localhost,[::1]",
        "Host headers served, comma-separated, any port ('*': any host); others get 400, "
        "so a web page cannot reach a loopback server through DNS rebinding. Add the "
        "name clients use when serving beyond loopback (the bound address is always in).",
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `QA_*` environment variables, then explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is not None and raw != "":
                kind: type = type(f.default)
                values[f.name] = kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    def encoder_threads(self) -> int:
        from .embed import available_cores

        return self.threads or available_cores()

    def query_encoder_threads(self) -> int:
        from .embed import available_cores

        return self.query_threads or available_cores()


def env_name(name: str) -> str:
    return "QA_" + name.upper()


def describe() -> list[tuple[str, str, Any, str]]:
    """(field, env var, default, help) for every setting, for docs and --help."""
    return [(f.name, env_name(f.name), f.default, f.metadata["help"]) for f in fields(Settings)]
