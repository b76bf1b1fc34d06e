"""Fuzzing the edges: /ask with arbitrary Unicode, lone surrogates, control
characters, wrong types, huge and deeply nested bodies and random query strings
(never a 5xx, every 4xx in the JSON error shape, every request within a bound),
and qa.ingest.read_file on random files of each suffix (articles or an
InputError, never another exception; articles split into exact sentences)."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from helpers import assert_sentence_invariants
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from test_workers import ServeProcess
from werkzeug.test import TestResponse

from qa.errors import InputError
from qa.ingest import read_file
from qa.pipeline import QAEngine
from qa.segment import split_sentences
from web import create_app
from web.openapi import openapi_spec

# Wall-clock bound on one request through the app (an answer takes tens of ms;
# the margin is for a loaded 2-core machine).
REQUEST_SECONDS = 5.0
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=REQUEST_SECONDS * 2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def fuzz_client(engine: QAEngine, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """One app for every example (hypothesis reruns the test body, not fixtures)."""
    folder = tmp_path_factory.mktemp("fuzz")
    app = create_app({"ENGINE": engine, "FEEDBACK_DB": folder / "feedback.sqlite3"})
    return app.test_client()


@pytest.fixture(scope="module")
def validators(engine: QAEngine) -> dict[str, Draft202012Validator]:
    spec = openapi_spec(engine.settings)
    root = {"components": spec["components"]}
    schemas = spec["components"]["schemas"]
    return {name: Draft202012Validator({**schemas[name], **root}) for name in ("Error", "Answer")}


def check(
    response: TestResponse, started: float, validators: dict[str, Draft202012Validator]
) -> dict[str, Any]:
    """No 5xx, in time; a 4xx is the JSON error shape, a 200 an answer."""
    took = time.monotonic() - started
    assert took < REQUEST_SECONDS, f"{took:.1f} s"
    status = response.status_code
    assert status < 500, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json", (status, response.data[:200])
    body: dict[str, Any] = json.loads(response.data)
    if status >= 400:
        validators["Error"].validate(body)
    else:
        assert status == 200
        validators["Answer"].validate(body)
    return body


# Every code point, lone surrogates and control characters included: sent as JSON
# escapes (ensure_ascii), the only way a surrogate can travel in UTF-8 JSON.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=300)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
TOP_K = st.none() | st.integers(-(10**30), 10**30) | st.integers(0, 60) | JSON_VALUES


@FUZZ
@given(
    question=ANY_TEXT | JSON_VALUES,
    top_k=TOP_K,
    extra=st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=3),
    keep=st.booleans(),
)
def test_ask_post_any_json(
    fuzz_client: FlaskClient,
    validators: dict[str, Draft202012Validator],
    question: Any,
    top_k: Any,
    extra: dict[str, Any],
    keep: bool,
) -> None:
    payload = {**extra, "question": question} if keep else dict(extra)
    if top_k is not None:
        payload["top_k"] = top_k
    body = json.dumps(payload, ensure_ascii=True)
    started = time.monotonic()
    response = fuzz_client.post("/ask", data=body, content_type="application/json")
    check(response, started, validators)


# Each of these reaches the engine (tens to hundreds of ms on random scripts: every
# unknown word is encoded), hence fewer and shorter examples.
@settings(FUZZ, max_examples=30)
@given(question=st.text(ANY_CHAR, max_size=120), top_k=st.none() | st.integers(1, 50))
def test_ask_any_unicode_question(
    fuzz_client: FlaskClient,
    validators: dict[str, Draft202012Validator],
    question: str,
    top_k: int | None,
) -> None:
    """Well-formed requests whose question is any text: they reach the engine."""
    body = json.dumps({"question": question, "top_k": top_k}, ensure_ascii=True)
    started = time.monotonic()
    response = fuzz_client.post("/ask", data=body, content_type="application/json")
    answer = check(response, started, validators)
    if response.status_code == 200:
        assert answer["question"] == question.strip()
        assert len(answer["passages"]) <= (top_k or 5)
    elif any(0xD800 <= ord(c) <= 0xDFFF for c in question):
        assert answer["error"]["code"] == "invalid_json"
    else:
        assert answer["error"]["code"] == "bad_question"  # empty once stripped


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(["application/json", "text/plain", ""]))
def test_ask_post_any_bytes(
    fuzz_client: FlaskClient,
    validators: dict[str, Draft202012Validator],
    raw: bytes,
    content_type: str,
) -> None:
    started = time.monotonic()
    response = fuzz_client.post("/ask", data=raw, content_type=content_type or None)
    check(response, started, validators)


QUERY_KEYS = st.sampled_from(["q", "top_k", "Q", "q[]", ""]) | st.text(max_size=5)


@FUZZ
@given(
    st.binary(max_size=600).map(lambda b: b.decode("latin-1"))  # any raw bytes
    | st.lists(st.tuples(QUERY_KEYS, st.text(ANY_CHAR, max_size=200))).map(
        lambda pairs: urllib.parse.urlencode(
            [(k, v.encode("utf-8", "surrogatepass")) for k, v in pairs]
        )
    )
)
def test_ask_get_any_query_string(
    fuzz_client: FlaskClient, validators: dict[str, Draft202012Validator], query: str
) -> None:
    started = time.monotonic()
    # QUERY_STRING as a server hands it over: the raw bytes, latin-1 decoded.
    response = fuzz_client.get("/ask", environ_overrides={"QUERY_STRING": query})
    check(response, started, validators)


def _nested(depth: int, leaf: str = "") -> bytes:
    return ("[" * depth + leaf + "]" * depth).encode()


@pytest.mark.parametrize(
    ("method", "body", "query", "status", "code"),
    [
        ("POST", b"x" * 1_000_000, None, 413, "request_entity_too_large"),
        ("POST", json.dumps({"question": "x" * 100_000}).encode(), None, 413, None),
        ("POST", _nested(10_000), None, 413, None),  # 20 kB: over the body limit
        ("POST", _nested(8_000), None, 400, "invalid_json"),
        ("POST", b'{"question": ' + _nested(5_000) + b"}", None, 400, "invalid_json"),
        ("POST", b'{"question": "Ou", "top_k": ' + _nested(5_000) + b"}", None, 400, None),
        ("POST", b'{"question": "\\ud800 ministres ?"}', None, 400, "invalid_json"),
        ("POST", b'{"question": "ok", "x": ["\\udfff"]}', None, 400, "invalid_json"),
        ("POST", b'{"question": "\\u0000\\u0001\\u001f"}', None, 200, None),  # abstains
        ("POST", b'{"question": "Ou", "top_k": 1e400}', None, 400, "bad_question"),
        ("GET", None, "q=" + "a" * 100_000, 400, "bad_question"),
        ("GET", None, "q=" + "%C3%A9" * 100_000, 400, "bad_question"),
        ("GET", None, "q=Ou&top_k=%D9%A3", 400, "bad_question"),  # an Arabic-Indic 3
        ("GET", None, "q=Ou&top_k=3_0", 400, "bad_question"),
    ],
)
def test_huge_deep_and_odd_inputs(
    fuzz_client: FlaskClient,
    validators: dict[str, Draft202012Validator],
    method: str,
    body: bytes | None,
    query: str | None,
    status: int,
    code: str | None,
) -> None:
    started = time.monotonic()
    if method == "POST":
        response = fuzz_client.post("/ask", data=body, content_type="application/json")
    else:
        response = fuzz_client.get("/ask", environ_overrides={"QUERY_STRING": query})
    answer = check(response, started, validators)
    assert response.status_code == status, answer
    if code:
        assert answer["error"]["code"] == code, answer


def test_feedback_with_a_lone_surrogate_is_refused(
    fuzz_client: FlaskClient, validators: dict[str, Draft202012Validator]
) -> None:
    started = time.monotonic()
    body = b'{"question": "\\udc00", "vote": "up"}'
    response = fuzz_client.post("/feedback", data=body, content_type="application/json")
    assert check(response, started, validators)["error"]["code"] == "invalid_json"


# ---------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def http_server(
    index_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("fuzz-http")
    with ServeProcess(folder / "serve.log", "--index", index_dir) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/ask", b"x" * 1_000_000, 413),
        ("/ask", _nested(10_000), 413),
        ("/ask", _nested(8_000), 400),
        ("/ask?q=" + "a" * 100_000, None, 400),
        ("/ask?q=" + "%C3%A9" * 30_000, None, 400),  # 180 kB of URL, under waitress's limit
    ],
)
def test_huge_inputs_over_http(
    http_server: ServeProcess, path: str, body: bytes | None, status: int
) -> None:
    """Through waitress too: its buffering and limits answer as the app does."""
    started = time.monotonic()
    method = "POST" if body is not None else "GET"
    headers = {"Content-Type": "application/json"} if body is not None else {}
    got, response_headers, data = http_server.request(method, path, body, headers)
    assert time.monotonic() - started < REQUEST_SECONDS
    assert got == status, data[:300]
    assert response_headers["content-type"].startswith("application/json")
    assert set(json.loads(data)["error"]) == {"code", "message"}


def test_request_beyond_the_http_servers_limit(http_server: ServeProcess) -> None:
    """Past waitress's 256 kB of request head the server itself refuses, before
    the app, in the app's JSON error shape (web/server.py)."""
    got, headers, data = http_server.request("GET", "/ask?q=" + "%C3%A9" * 100_000)
    assert got == 431, data[:300]
    assert headers["content-type"] == "application/json"
    error = json.loads(data)["error"]
    assert error["code"] == "request_header_fields_too_large", error
    assert "shorter URL" in error["message"]


# ---------------------------------------------------------------- ingest

TEXTISH = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from(list(".!?…«»\n\n \t\r\x0b\x0c\x85\u2028\u00a0-—:;'\"")),
    max_size=2000,
)
HTML = st.lists(
    st.sampled_from(["<p>", "</p>", "<h1>", "</h1>", "<div>", "</div>", "<script>", "<br>"])
    | st.sampled_from(["<html>", "<body>", "</body>", "<title>", "</title>", "<!--", "-->"])
    | st.sampled_from(["&amp;", "&#0;", "&#xd800;", "&nbsp;", "<meta charset=latin-1>"])
    | TEXTISH.map(lambda t: t[:200]),
    max_size=30,
).map("".join)
# JSON records as a producer might send them (text without lone surrogates: see
# the xfail below); nesting stays shallow (deep nesting: the other xfail).
SAFE_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
SAFE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | SAFE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_TEXT, inner, max_size=3),
    max_leaves=8,
)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "id": SAFE_VALUES,
        "title": SAFE_VALUES,
        "text": TEXTISH | SAFE_VALUES,
        "url": SAFE_VALUES,
        "date": SAFE_VALUES,
        "lang": st.sampled_from(["fr", "en", "de", ""]) | SAFE_VALUES,
    },
)
JSON_DOC = (RECORD | st.lists(RECORD, max_size=4) | SAFE_VALUES).map(
    lambda d: json.dumps(d, ensure_ascii=False)
)
JSONL_DOC = st.lists(RECORD.map(json.dumps) | SAFE_TEXT, max_size=5).map("\n".join)
FILE_CONTENT = (
    st.binary(max_size=2000)
    | (TEXTISH | HTML | JSON_DOC | JSONL_DOC).map(lambda t: t.encode("utf-8"))
    | (TEXTISH | HTML).map(lambda t: t.encode("utf-8")[: len(t) // 2])  # cut mid-character
    | st.sampled_from([b"\xef\xbb\xbf", b"\x00\x00", b"\xff\xfe<\x00p\x00>\x00"])
)


@settings(
    max_examples=150,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(suffix=st.sampled_from([".txt", ".html", ".json", ".jsonl"]), content=FILE_CONTENT)
def test_read_file_returns_articles_or_an_input_error(suffix: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"article{suffix}"
        path.write_bytes(content)
        try:
            articles, errors = read_file(path)
        except InputError:
            return
    assert all(isinstance(e, InputError) for e in errors)
    for article in articles:
        assert article.id and article.text.strip()
        article.text.encode("utf-8")  # text, not lone surrogates
        assert_sentence_invariants(article.text, split_sentences(article.text))


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_read_file_deeply_nested_json_is_an_input_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_bytes(_nested(100_000))
    with pytest.raises(InputError):
        read_file(path)


def test_read_file_lone_surrogate_in_a_record_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "surrogate.json"
    path.write_text('{"text": "Le glacier \\ud800 recule. Il fond."}', encoding="utf-8")
    try:
        articles, _ = read_file(path)
    except InputError:
        return
    for article in articles:
        article.text.encode("utf-8")
        article.title.encode("utf-8")
