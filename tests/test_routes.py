"""The HTTP surface: no endpoint changes the index (that goes through
scripts/build_index.py), every route is a documented one, the server binds to
loopback unless told otherwise; and what it reports: /metrics, request ids, the
access log."""

from __future__ import annotations

import json
import logging
import subprocess

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import PYTHON, SCRIPTS, script_env
from test_workers import metric

from qa.pipeline import QAEngine
from qa.settings import Settings

# (method, rule): the whole HTTP surface. Only two routes take a POST, and
# neither touches the index: /ask reads it, /feedback writes its own SQLite file.
DOCUMENTED = {
    ("GET", "/"),
    ("GET", "/ask"),
    ("POST", "/ask"),
    ("GET", "/health"),
    ("GET", "/articles"),
    ("GET", "/articles/<path:article_id>"),
    ("GET", "/view/<path:article_id>"),
    ("GET", "/feedback"),
    ("POST", "/feedback"),
    ("GET", "/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/static/<path:filename>"),
}
AUTOMATIC = {"HEAD", "OPTIONS"}  # added by Flask to every GET route / every route


def routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - AUTOMATIC
    }


def test_every_route_is_documented(app: Flask) -> None:
    assert routes(app) == DOCUMENTED
    writes = {(m, r) for m, r in routes(app) if m != "GET"}
    assert writes == {("POST", "/ask"), ("POST", "/feedback")}


def test_openapi_describes_the_same_surface(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    described = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete", "head", "options", "trace"}
    }
    # The JSON API: every documented route but the pages and their static files.
    api = {
        (m, r.replace("<path:article_id>", "{article_id}"))
        for m, r in DOCUMENTED
        if r not in {"/", "/view/<path:article_id>", "/static/<path:filename>"}
    }
    assert described == api


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
def test_no_other_method_is_served(client: FlaskClient, app: Flask, method: str) -> None:
    """Every route, asked with a method it does not take: a JSON 405, never an action."""
    allowed: dict[str, set[str]] = {}
    for m, rule in DOCUMENTED:
        allowed.setdefault(rule, set()).add(m)
    for rule, methods in allowed.items():
        if method in methods:
            continue
        path = rule.replace("<path:article_id>", "x").replace("<path:filename>", "style.css")
        response = client.open(path, method=method, json={"question": "x"})
        assert response.status_code == 405, (method, path, response.status_code)
        assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_serve_binds_loopback_by_default() -> None:
    assert Settings().host == "127.0.0.1"
    # The parser's defaults in a clean environment (no QA_HOST), in a subprocess:
    # importing serve.py sets process-wide environment variables.
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import serve; "
        "a = serve.build_parser().parse_args([]); "
        "print(json.dumps({'host': a.host, 'port': a.port, 'workers': a.workers}))"
    )
    out = subprocess.run(
        [PYTHON, "-c", code, str(SCRIPTS)],
        capture_output=True,
        text=True,
        timeout=60,
        env=script_env(),
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"host": "127.0.0.1", "port": 8000, "workers": 1}


# ---------------------------------------------------------------- observability


def test_metrics_count_requests_errors_and_abstentions(
    client: FlaskClient, engine: QAEngine
) -> None:
    client.post("/ask", json={"question": "Où se retrouvent les ministres ?"})
    client.post("/ask", json={"question": "Quelle est la population de Lyon ?"})
    client.post("/ask", json={"question": ""})
    client.get("/nope")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    text = response.get_data(as_text=True)
    ask = {"endpoint": "/ask", "method": "POST"}
    assert metric(text, "newsqa_http_requests_total", status="200", **ask) == 2
    assert metric(text, "newsqa_http_requests_total", status="400", **ask) == 1
    assert metric(text, "newsqa_http_errors_total", endpoint="/ask", code="bad_question") == 1
    assert metric(text, "newsqa_http_errors_total", endpoint="<unmatched>", code="not_found") == 1
    assert metric(text, "newsqa_http_request_duration_seconds_count", endpoint="/ask") == 3
    assert metric(text, "newsqa_answers_total") == 1
    assert metric(text, "newsqa_abstentions_total") == 1
    counts = engine.reader.counts
    for kind in ("articles", "chunks", "sentences"):
        assert metric(text, f"newsqa_index_{kind}") == counts[kind]
    build = {"build_id": engine.reader.build_id, "encoder": engine.encoder.name}
    assert metric(text, "newsqa_index_build_info", **build) == 1
    assert "_created" not in text


def test_request_id_and_access_log(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="web.access")
    response = client.post(
        "/ask",
        json={"question": "Qui est le secrétaire américain à la Défense ?"},
        headers={"X-Request-ID": "req-42"},
    )
    assert response.headers["X-Request-ID"] == "req-42"
    assert response.headers["X-Index-Build"]
    # An id that could not go into a header or a log as is gets replaced.
    refused = client.get("/health", headers={"X-Request-ID": "a b" + "x" * 200})
    generated = refused.headers["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "web.access"]
    assert lines[0]["request_id"] == "req-42"
    assert {k: lines[0][k] for k in ("method", "path", "status", "answered", "abstained")} == {
        "method": "POST",
        "path": "/ask",
        "status": 200,
        "answered": True,
        "abstained": False,
    }
    assert lines[0]["duration_ms"] >= 0 and lines[0]["build_id"]
    assert lines[1]["request_id"] == generated and "answered" not in lines[1]
