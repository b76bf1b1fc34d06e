"""HTTP edges: chunked bodies held to QA_MAX_BODY_BYTES and malformed framing
refused with a JSON 400, through the production server (web/server.py); Host
headers limited to QA_ALLOWED_HOSTS (web/hosts.py); unknown methods counted
under one label (web/metrics.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_workers import HOST, ServeProcess, metric

from qa.pipeline import QAEngine
from qa.settings import Settings
from web import create_app
from web.hosts import allowed_hosts, host_name
from web.server import MAX_BODY_BYTES

QUESTION = json.dumps({"question": "Où se retrouvent les ministres ?"}).encode()


def exchange(port: int, head: bytes, body: bytes = b"", close_write: bool = False) -> bytes:
    """One raw HTTP/1.1 request on its own connection; the whole reply."""
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(head + body)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def chunked(body: bytes, size: int = 4000) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def status_and_json(reply: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


POST_CHUNKED = (
    b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)


def test_chunked_bodies_through_the_server(index_dir: Path, tmp_path: Path) -> None:
    """waitress reads a chunked body whole (de-chunked) before the app sees it:
    the app's limit holds for it, and what waitress cannot parse it refuses
    itself, in the app's JSON shape."""
    with ServeProcess(tmp_path / "serve.log", "--index", index_dir, "--workers", "2") as server:
        port = server.port
        # Within the limit, a chunked body is read whole and answered.
        status, answer = status_and_json(exchange(port, POST_CHUNKED, chunked(QUESTION)))
        assert status == 200 and answer["answered"] is True

        # Over QA_MAX_BODY_BYTES: the app's 413, not its first 16 kB parsed
        # (valid JSON plus padding, answered 200 under gunicorn).
        padded = QUESTION + b" " * (Settings().max_body_bytes + 100)
        status, error = status_and_json(exchange(port, POST_CHUNKED, chunked(padded)))
        assert status == 413, error
        assert error["error"]["code"] == "request_entity_too_large"  # type: ignore[index]

        # Over the server's own limit: refused by waitress once that much has
        # arrived (not spooled on), answered as the app would. The bytes sent
        # (chunk-size line included) end where waitress counts the limit as
        # reached, so none is left unread and the reply is never lost to a reset.
        endless = b"%x\r\n" % (16 * MAX_BODY_BYTES)
        reply = exchange(port, POST_CHUNKED, endless + b" " * (MAX_BODY_BYTES + 1 - len(endless)))
        status, error = status_and_json(reply)
        assert status == 413, error
        assert error["error"]["code"] == "request_entity_too_large"  # type: ignore[index]
        assert str(MAX_BODY_BYTES) in error["error"]["message"]  # type: ignore[index]

        # A chunk size that is not hexadecimal: 400, not 500 (gunicorn's).
        status, error = status_and_json(exchange(port, POST_CHUNKED, b"zz\r\nabc\r\n0\r\n\r\n"))
        assert status == 400, error
        assert error["error"]["code"] == "bad_request"  # type: ignore[index]
        assert "framing" in error["error"]["message"]  # type: ignore[index]
        # A chunk longer than its size says: 400 too.
        status, error = status_and_json(exchange(port, POST_CHUNKED, b"2\r\nabc\r\n0\r\n\r\n"))
        assert status == 400 and "framing" in error["error"]["message"], error  # type: ignore[index]

        # A body cut short (the client stops sending and closes its side):
        # never handed to the app; the connection is closed unanswered.
        assert exchange(port, POST_CHUNKED, b"40\r\n" + QUESTION[:20], close_write=True) == b""

        # A foreign Host, through the real server too.
        foreign = b"GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        reply = exchange(port, foreign)
        assert status_and_json(reply)[0] == 400

        # The app answered the two requests it saw whole: the padded body and the Host.
        status, _, metrics = server.request("GET", "/metrics")
        text = metrics.decode()
        too_large = {"endpoint": "/ask", "code": "request_entity_too_large"}
        assert metric(text, "newsqa_http_errors_total", **too_large) == 1
        assert metric(text, "newsqa_http_errors_total", endpoint="/health", code="bad_request") == 1
        answered = {"method": "POST", "endpoint": "/ask", "status": "200"}
        assert metric(text, "newsqa_http_requests_total", **answered) == 1
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:54321", "[::1]:8000", "LocalHost", None]
)
def test_loopback_hosts_are_served(client: FlaskClient, host: str | None) -> None:
    environ = {"HTTP_HOST": host} if host else {}
    response = client.get("/health", environ_overrides=environ)
    if host is None:
        response = client.get("/health", environ_base={"HTTP_HOST": ""})
    assert response.status_code == 200


FOREIGN = ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "[::2]:80", "localhost."]


@pytest.mark.parametrize("host", FOREIGN)
def test_other_hosts_are_refused(client: FlaskClient, host: str) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1
    reaches the server with its own name in Host."""
    for method, path in (("GET", "/health"), ("POST", "/ask"), ("GET", "/nope")):
        response = client.open(
            path, method=method, json={"question": "Qui ?"}, headers={"Host": host}
        )
        assert response.status_code == 400, (host, path)
        error = response.get_json()["error"]
        assert error["code"] == "bad_request" and "QA_ALLOWED_HOSTS" in error["message"]


def test_allowed_hosts_setting(engine: QAEngine, tmp_path: Path) -> None:
    def status(app: Flask, host: str) -> int:
        return app.test_client().get("/health", headers={"Host": host}).status_code

    db = tmp_path / "fb.sqlite3"
    named = create_app({"ENGINE": engine, "FEEDBACK_DB": db, "ALLOWED_HOSTS": "qa.example.org"})
    assert status(named, "qa.example.org:443") == 200
    assert status(named, "localhost") == 400
    assert status(named, "127.0.0.1") == 200  # the address the engine's settings bind
    anything = create_app({"ENGINE": engine, "FEEDBACK_DB": db, "ALLOWED_HOSTS": "*"})
    assert status(anything, "evil.example") == 200
    # the bound address is served; an address that binds every interface names none
    assert "10.1.2.3" in allowed_hosts(Settings(), "10.1.2.3")
    assert "[fe80::1]" in allowed_hosts(Settings(), "fe80::1")
    assert allowed_hosts(Settings(), "0.0.0.0") == {"127.0.0.1", "localhost", "[::1]"}
    assert host_name("[::1]:80") == "[::1]" and host_name("Example.ORG:8") == "example.org"


def test_unknown_methods_share_one_series(client: FlaskClient) -> None:
    for i in range(40):
        assert client.open("/health", method=f"FOO{i}").status_code == 405
    client.open("/health", method="DELETE")
    text = client.get("/metrics").get_data(as_text=True)
    assert "FOO" not in text
    labels = {"endpoint": "<unmatched>", "status": "405"}
    assert metric(text, "newsqa_http_requests_total", method="other", **labels) == 40
    assert metric(text, "newsqa_http_requests_total", method="DELETE", **labels) == 1
