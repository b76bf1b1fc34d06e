"""The JSON API with Flask's test client: answers, errors, the OpenAPI
contract, verifiable citations and hot reload of a rebuilt index."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from qa import indexing
from qa.pipeline import QAEngine
from qa.settings import Settings
from web import create_app

FR_QUESTION = "Où se retrouvent les ministres ?"
EN_QUESTION = "Who is the American secretary of defense?"
UNANSWERABLE = "Quelle est la population de Lyon ?"

# ---------------------------------------------------------------- OpenAPI conformance


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    data: dict[str, Any] = response.get_json()
    return data


def response_schema(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    responses = spec["paths"][path][method.lower()]["responses"]
    entry = responses.get(str(status), responses["default"])
    if "$ref" in entry:
        entry = spec["components"]["responses"][entry["$ref"].rsplit("/", 1)[-1]]
    schema: dict[str, Any] = entry["content"]["application/json"]["schema"]
    return schema


def assert_conforms(
    spec: dict[str, Any], method: str, path: str, response: TestResponse
) -> dict[str, Any]:
    """The response is JSON and valid against the spec's schema for its status."""
    assert response.mimetype == "application/json", response.data[:200]
    body: dict[str, Any] = response.get_json()
    schema = response_schema(spec, method, path, response.status_code)
    # Refs are "#/components/...": give the schema the spec's components as its root.
    validator = Draft202012Validator({**schema, "components": spec["components"]})
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
    assert not errors, errors
    return body


def assert_error(
    spec: dict[str, Any], method: str, path: str, response: TestResponse, status: int
) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = assert_conforms(spec, method, path, response)
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


def test_openapi_document_is_valid(spec: dict[str, Any], app: Flask) -> None:
    assert spec["openapi"].startswith("3.1")
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    # Every JSON route of the app is described.
    described = set(spec["paths"])
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.replace("<path:article_id>", "{article_id}")
            assert path in described, path
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                assert method.lower() in spec["paths"][path], (method, path)


# ---------------------------------------------------------------- answers


def check_citations(client: FlaskClient, answer: dict[str, Any]) -> None:
    """Every offset in an answer points at its text in the article's cleaned text."""
    texts: dict[str, str] = {}
    for item in answer["citations"] + answer["passages"]:
        if item["article_id"] not in texts:
            response = client.get(f"/articles/{item['article_id']}")
            assert response.status_code == 200
            texts[item["article_id"]] = response.get_json()["text"]
    for c in answer["citations"]:
        assert texts[c["article_id"]][c["start"] : c["end"]] == c["sentence"]
    for p in answer["passages"]:
        assert texts[p["article_id"]][p["start"] : p["end"]] == p["text"]
    if answer["answered"]:
        best = answer["citations"][0]
        assert answer["answer"] == best["sentence"]
        short = answer["short_answer"]
        if short:
            assert best["start"] <= short["start"] <= short["end"] <= best["end"]
            assert texts[best["article_id"]][short["start"] : short["end"]] == short["text"]


def test_ask_post_french(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.post("/ask", json={"question": FR_QUESTION})
    assert response.status_code == 200
    answer = assert_conforms(spec, "POST", "/ask", response)
    assert answer["language"] == "fr"
    assert answer["answered"] is True
    assert "ministère français de la Défense" in answer["answer"]
    check_citations(client, answer)


def test_ask_post_english_with_top_k(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.post("/ask", json={"question": EN_QUESTION, "top_k": 2})
    answer = assert_conforms(spec, "POST", "/ask", response)
    assert response.status_code == 200
    assert answer["language"] == "en"
    assert len(answer["passages"]) <= 2
    assert any("Ashton Carter" in c["sentence"] for c in answer["citations"])
    check_citations(client, answer)


def test_ask_get(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get("/ask", query_string={"q": FR_QUESTION, "top_k": "3"})
    assert response.status_code == 200
    answer = assert_conforms(spec, "GET", "/ask", response)
    assert answer["question"] == FR_QUESTION
    assert len(answer["passages"]) <= 3
    check_citations(client, answer)


def test_abstention(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.post("/ask", json={"question": UNANSWERABLE})
    answer = assert_conforms(spec, "POST", "/ask", response)
    assert answer["answered"] is False
    assert answer["answer"] is None and answer["short_answer"] is None
    assert answer["citations"] == []
    assert "Je ne trouve pas" in answer["message"]


def test_question_markup_is_returned_as_text(client: FlaskClient) -> None:
    question = '<img src=x onerror="window.__xss=1"> <script>alert(1)</script>'
    response = client.post("/ask", json={"question": question})
    assert response.status_code == 200
    assert response.get_json()["question"] == question


# ---------------------------------------------------------------- health and articles


def test_health(client: FlaskClient, spec: dict[str, Any], engine: QAEngine) -> None:
    response = client.get("/health")
    body = assert_conforms(spec, "GET", "/health", response)
    assert body["status"] == "ok" and body["index_loaded"] is True
    assert body["build_id"] == engine.reader.build_id
    assert body["counts"] == engine.reader.counts
    assert body["encoder"]["name"] == "use-multilingual-v3"
    assert body["torch_loaded"] in (True, False)


def test_articles(client: FlaskClient, spec: dict[str, Any]) -> None:
    listing = assert_conforms(spec, "GET", "/articles", client.get("/articles"))
    assert listing["count"] == len(listing["articles"]) == 1
    first = listing["articles"][0]
    assert first["lang"] == "fr" and first["title"]
    article = assert_conforms(
        spec, "GET", "/articles/{article_id}", client.get(f"/articles/{first['id']}")
    )
    assert article["id"] == first["id"]
    assert article["sentences"]
    for s in article["sentences"]:
        assert article["text"][s["start"] : s["end"]] == s["text"]
    assert [s["index"] for s in article["sentences"]] == list(range(len(article["sentences"])))


def test_unknown_article(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get("/articles/no-such-article")
    assert assert_error(spec, "GET", "/articles/{article_id}", response, 404) == "unknown_article"


def test_pages(client: FlaskClient) -> None:
    chat = client.get("/")
    assert chat.status_code == 200 and chat.mimetype == "text/html"
    assert "script-src 'self'" in chat.headers["Content-Security-Policy"]
    assert b"/static/chat.js" in chat.data
    for asset in ("chat.js", "view.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    article_id = client.get("/articles").get_json()["articles"][0]["id"]
    text = client.get(f"/articles/{article_id}").get_json()["text"]
    start = text.index("Les ministres de la Défense")
    end = text.index(".", start) + 1
    view = client.get(f"/view/{article_id}?start={start}&end={end}")
    assert view.status_code == 200
    html = view.get_data(as_text=True)
    assert '<mark class="cited" id="cited"' in html
    assert "au ministère français de la Défense.</mark>" in html
    # Out-of-range offsets show the article without a highlight rather than failing.
    plain = client.get(f"/view/{article_id}?start=5&end=999999")
    assert plain.status_code == 200 and b"<mark" not in plain.data
    missing = client.get("/view/nope")
    assert missing.status_code == 404 and missing.mimetype == "text/html"


def test_feedback_conforms(client: FlaskClient, spec: dict[str, Any]) -> None:
    vote = {"question": FR_QUESTION, "answer": None, "vote": "down"}
    stored = client.post("/feedback", json=vote)
    assert stored.status_code == 201
    assert_conforms(spec, "POST", "/feedback", stored)
    listing = assert_conforms(spec, "GET", "/feedback", client.get("/feedback"))
    assert listing["count"] == 1
    bad = client.post("/feedback", json={**vote, "vote": "sideways"})
    assert assert_error(spec, "POST", "/feedback", bad, 400) == "invalid_feedback"


# ---------------------------------------------------------------- bad input


def test_ask_without_body(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.post("/ask", content_type="application/json")
    assert assert_error(spec, "POST", "/ask", response, 400) == "empty_body"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"question": "a"', "invalid_json"),
        (b"\xff\xfe\x00garbage", "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),  # deep nesting
        (b'["Where do the ministers meet?"]', "not_an_object"),
        (b'"Where do the ministers meet?"', "not_an_object"),
        (b"42", "not_an_object"),
        (b"null", "not_an_object"),
        (b"{}", "missing_question"),
        (b'{"q": "Where?"}', "missing_question"),
    ],
)
def test_ask_bad_body(client: FlaskClient, spec: dict[str, Any], body: bytes, code: str) -> None:
    response = client.post("/ask", data=body, content_type="application/json")
    assert assert_error(spec, "POST", "/ask", response, 400) == code


@pytest.mark.parametrize(
    "payload",
    [
        {"question": ""},
        {"question": "   \n "},
        {"question": None},
        {"question": 42},
        {"question": ["Où ?"]},
        {"question": {"text": "Où ?"}},
        {"question": "x" * 2001},
        {"question": FR_QUESTION, "top_k": 0},
        {"question": FR_QUESTION, "top_k": -1},
        {"question": FR_QUESTION, "top_k": 51},
        {"question": FR_QUESTION, "top_k": "3"},
        {"question": FR_QUESTION, "top_k": 2.5},
        {"question": FR_QUESTION, "top_k": True},
    ],
)
def test_ask_bad_question(
    client: FlaskClient, spec: dict[str, Any], payload: dict[str, Any]
) -> None:
    response = client.post("/ask", json=payload)
    assert assert_error(spec, "POST", "/ask", response, 400) == "bad_question"


def test_question_at_the_limit_is_accepted(client: FlaskClient) -> None:
    response = client.post("/ask", json={"question": "Où sont les ministres ? " * 80 + "x" * 80})
    assert response.status_code == 200, response.get_json()


def test_ask_body_too_large(client: FlaskClient, spec: dict[str, Any], app: Flask) -> None:
    limit = app.config["SETTINGS"].max_body_bytes
    body = json.dumps({"question": "x" * (limit + 10)}).encode()
    response = client.post("/ask", data=body, content_type="application/json")
    assert assert_error(spec, "POST", "/ask", response, 413)


def test_ask_body_not_json(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.post("/ask", data={"question": FR_QUESTION})  # a form post
    assert assert_error(spec, "POST", "/ask", response, 415) == "unsupported_media_type"


@pytest.mark.parametrize(
    "query",
    [{}, {"q": ""}, {"q": "  "}, {"q": FR_QUESTION, "top_k": "abc"}, {"q": "Où ?", "top_k": "0"}],
)
def test_ask_get_bad(client: FlaskClient, spec: dict[str, Any], query: dict[str, str]) -> None:
    response = client.get("/ask", query_string=query)
    assert assert_error(spec, "GET", "/ask", response, 400) in ("missing_question", "bad_question")


@pytest.mark.parametrize(
    ("method", "path", "spec_path"),
    [
        ("DELETE", "/ask", "/ask"),
        ("PUT", "/ask", "/ask"),
        ("POST", "/health", "/health"),
        ("POST", "/articles", "/articles"),
        ("DELETE", "/feedback", "/feedback"),
    ],
)
def test_wrong_method(
    client: FlaskClient, spec: dict[str, Any], method: str, path: str, spec_path: str
) -> None:
    response = client.open(path, method=method, json={"question": "x"})
    assert response.status_code == 405
    assert response.headers["Allow"]
    body = response.get_json()
    assert body["error"]["code"] == "method_not_allowed"
    Draft202012Validator({**spec["components"]["schemas"]["Error"]}).validate(body)


@pytest.mark.parametrize("path", ["/nope", "/ask/extra", "/static/nope.js", "/articles/"])
def test_unknown_route(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "not_found"


class _BrokenEngine:
    """Looks like a QAEngine but fails the way a bug would."""

    def __init__(self, engine: QAEngine) -> None:
        self.settings = engine.settings
        self.reader = engine.reader

    def reload_if_changed(self) -> bool:
        return False

    def ask(self, question: object, top_k: object = None) -> None:
        raise RuntimeError("boom")


def test_unexpected_error_is_json_500(engine: QAEngine, tmp_path: Path) -> None:
    app = create_app({"ENGINE": _BrokenEngine(engine), "FEEDBACK_DB": tmp_path / "f.sqlite3"})
    response = app.test_client().post("/ask", json={"question": FR_QUESTION})
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "Internal error; it has been logged."}
    }


# ---------------------------------------------------------------- hot reload

NEW_ARTICLE = """Lyon inaugure la ligne de tramway T10

La métropole de Lyon a inauguré samedi la ligne de tramway T10, qui relie Gerland à Vénissieux.

Le chantier de la ligne T10 a coûté 270 millions d'euros, financés par le Sytral et par l'État.

Les rames circulent toutes les six minutes aux heures de pointe, de cinq heures à minuit.
"""


@pytest.fixture
def own_index(index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the seed index, free to rebuild."""
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy, symlinks=True)
    return copy


def test_hot_reload(own_index: Path, engine: QAEngine, tmp_path: Path) -> None:
    settings = Settings(index_dir=str(own_index))
    app = create_app(
        {
            "ENGINE": QAEngine(own_index, engine.encoder, settings),
            "FEEDBACK_DB": tmp_path / "f.sqlite3",
        }
    )
    client = app.test_client()
    before = client.get("/health").get_json()
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        # Requests keep flowing while the new build is written and swapped in.
        local = app.test_client()
        while not stop.is_set():
            for response in (
                local.post("/ask", json={"question": FR_QUESTION}),
                local.get("/health"),
                local.get("/articles"),
            ):
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.get_data(as_text=True)}")

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        time.sleep(0.1)
        article = tmp_path / "tram.txt"
        article.write_text(NEW_ARTICLE, encoding="utf-8")
        report = indexing.add([article], own_index, engine.encoder, settings)
        assert report.added and not report.errors
        time.sleep(0.1)
    finally:
        stop.set()
        worker.join()
    assert not failures, failures[:3]

    after = client.get("/health").get_json()
    assert after["build_id"] != before["build_id"]
    assert after["counts"]["articles"] == before["counts"]["articles"] + 1
    answer = client.post("/ask", json={"question": "Combien a coûté le chantier du tramway T10 ?"})
    body = answer.get_json()
    assert body["answered"], body["message"]
    assert "270 millions" in body["answer"]
    check_citations(client, body)


MARKUP_RECORD = {
    "id": "markup-test",
    "title": "Recette <script>window.__xss=1</script> de la tarte",
    "lang": "fr",
    "url": "javascript:window.__xss=1",
    "text": 'La tarte aux pommes <img src=x onerror="window.__xss=1"> se cuit quarante minutes.\n\n'
    "Il faut six pommes et une pâte brisée.",
}


def test_article_markup_is_escaped(own_index: Path, engine: QAEngine, tmp_path: Path) -> None:
    settings = Settings(index_dir=str(own_index))
    record = tmp_path / "markup.json"
    record.write_text(json.dumps(MARKUP_RECORD), encoding="utf-8")
    indexing.add([record], own_index, engine.encoder, settings)
    app = create_app(
        {
            "ENGINE": QAEngine(own_index, engine.encoder, settings),
            "FEEDBACK_DB": tmp_path / "f.sqlite3",
        }
    )
    client = app.test_client()
    html = client.get("/view/markup-test?start=0&end=20").get_data(as_text=True)
    assert "<script>window" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    assert "javascript:" not in html  # a non-web url is not linked
    assert client.get("/articles/markup-test").get_json()["title"] == MARKUP_RECORD["title"]
