"""Thumbs up/down: stored in SQLite, listed newest first (to the admin only), bad
input refused, and bounded: a rate per client, a row cap, offsets SQLite can hold."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_workers import metric

from qa.pipeline import QAEngine
from web import create_app, feedback_of
from web.feedback import MAX_OFFSET, Feedback, FeedbackStore, InvalidFeedback, RateLimiter


def cited(client: FlaskClient) -> dict[str, Any]:
    """Feedback on a real answer, as the chat page sends it."""
    answer = client.post("/ask", json={"question": "Où se retrouvent les ministres ?"}).get_json()
    c = answer["citations"][0]
    return {
        "question": answer["question"],
        "answer": c["sentence"],
        "article_id": c["article_id"],
        "start": c["start"],
        "end": c["end"],
        "vote": "up",
    }


def test_store_and_list(client: FlaskClient, app: Flask, engine: QAEngine) -> None:
    assert client.get("/feedback").get_json() == {"count": 0, "feedback": []}
    up = cited(client)
    response = client.post("/feedback", json=up)
    assert response.status_code == 201
    stored = response.get_json()
    assert stored["id"] >= 1 and stored["created_at"]
    assert stored["build_id"] == engine.reader.build_id
    assert {k: stored[k] for k in up} == up

    abstained = {"question": "Quelle est la population de Lyon ?", "answer": None, "vote": "down"}
    assert client.post("/feedback", json=abstained).status_code == 201

    listing = client.get("/feedback").get_json()
    assert listing["count"] == 2
    newest, oldest = listing["feedback"]
    assert newest["vote"] == "down" and newest["answer"] is None and newest["article_id"] is None
    assert oldest == stored
    assert client.get("/feedback?limit=1").get_json()["count"] == 1

    # Really on disk, in the configured file.
    with sqlite3.connect(app.config["FEEDBACK_DB"]) as db:
        assert db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 2


def test_feedback_survives_a_new_app(engine: QAEngine, tmp_path: Path) -> None:
    config = {"ENGINE": engine, "FEEDBACK_DB": tmp_path / "fb.sqlite3", "ADMIN_TOKEN": "t"}
    first = create_app(config).test_client()
    vote = {"question": "Q ?", "vote": "up"}
    assert first.post("/feedback", json=vote).status_code == 201
    second = create_app(config).test_client()
    listing = second.get("/feedback", headers={"Authorization": "Bearer t"})
    assert listing.get_json()["count"] == 1


def test_default_location_is_next_to_the_index(
    engine: QAEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QA_FEEDBACK_DB", raising=False)
    app = create_app({"ENGINE": engine})
    expected = Path(engine.settings.index_dir).absolute().parent / "feedback.sqlite3"
    assert Path(app.config["FEEDBACK_DB"]) == expected
    monkeypatch.setenv("QA_FEEDBACK_DB", "/tmp/somewhere/fb.sqlite3")
    assert create_app({"ENGINE": engine}).config["FEEDBACK_DB"] == "/tmp/somewhere/fb.sqlite3"


GOOD = {
    "question": "Où ?",
    "answer": "Au ministère.",
    "article_id": "a1",
    "start": 3,
    "end": 16,
    "vote": "down",
}


@pytest.mark.parametrize(
    "change",
    [
        {"vote": "meh"},
        {"vote": None},
        {"vote": 1},
        {"vote": "UP"},
        {"question": ""},
        {"question": "   "},
        {"question": 3},
        {"question": "x" * 2001},
        {"answer": 12},
        {"answer": "x" * 10_001},
        {"article_id": 7},
        {"article_id": ""},
        {"start": -1},
        {"start": 20, "end": 10},
        {"start": "3"},
        {"end": None},
        {"start": True},
        {"article_id": None},  # an answer or offsets need the article they point into
    ],
)
def test_bad_feedback_is_refused(client: FlaskClient, change: dict[str, Any]) -> None:
    body = {**GOOD, **change}
    response = client.post("/feedback", json=body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "invalid_feedback"
    assert client.get("/feedback").get_json()["count"] == 0


def test_missing_vote_and_bad_bodies(client: FlaskClient) -> None:
    no_vote = {k: v for k, v in GOOD.items() if k != "vote"}
    assert client.post("/feedback", json=no_vote).status_code == 400
    assert client.post("/feedback", json=["up"]).status_code == 400
    assert (
        client.post("/feedback", data=b"{oops", content_type="application/json").status_code == 400
    )
    assert client.post("/feedback", content_type="application/json").status_code == 400
    assert client.post("/feedback", data={"vote": "up"}).status_code == 415
    assert client.get("/feedback?limit=0").status_code == 400
    assert client.get("/feedback?limit=x").status_code == 400
    assert client.get("/feedback").get_json()["count"] == 0


def test_store_is_created_lazily(engine: QAEngine, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "fb.sqlite3"
    client = create_app({"ENGINE": engine, "FEEDBACK_DB": path}).test_client()
    client.get("/health")
    assert not path.exists()
    assert client.post("/feedback", json={"question": "Q ?", "vote": "up"}).status_code == 201
    assert path.exists()


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize(
    "change",
    [
        {"start": 2**63, "end": 2**63},
        {"start": 0, "end": 2**63},
        {"start": 0, "end": 2**64 + 5},
        {"start": 10**30, "end": 10**30},
    ],
)
def test_offsets_sqlite_cannot_hold_are_a_400(client: FlaskClient, change: dict[str, Any]) -> None:
    """An OverflowError in sqlite3 used to surface as a 500."""
    response = client.post("/feedback", json={**GOOD, **change})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "invalid_feedback"
    assert client.get("/feedback").get_json()["count"] == 0
    # the largest offset the store takes is stored as is
    edge = client.post("/feedback", json={**GOOD, "start": MAX_OFFSET, "end": MAX_OFFSET})
    assert edge.status_code == 201 and edge.get_json()["end"] == MAX_OFFSET


def test_the_store_refuses_what_it_cannot_hold(tmp_path: Path) -> None:
    """Whoever builds the record (not only the API), the store checks it."""
    store = FeedbackStore(tmp_path / "fb.sqlite3", max_question_chars=20)
    for item in (
        Feedback("Où ?", "Au ministère.", "a1", 0, 2**63, "up"),
        Feedback("Où ?", None, "a1", -1, 3, "up"),
        Feedback("x" * 21, None, None, None, None, "up"),
        Feedback("Où ?", "x" * 10_001, "a1", None, None, "up"),
        Feedback("Où ?", None, "a" * 501, None, None, "up"),
        Feedback("Où ?", None, None, None, None, "sideways"),
    ):
        with pytest.raises(InvalidFeedback):
            store.add(item)
    assert store.size().rows == 0


def test_store_keeps_the_newest_rows(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite3", max_rows=5)
    for i in range(12):
        store.add(Feedback(f"Question {i} ?", None, None, None, None, "up"))
    kept = [r["question"] for r in store.recent(100)]
    assert kept == [f"Question {i} ?" for i in range(11, 6, -1)]
    assert store.size().rows == 5 and store.size().bytes > 0


def test_row_cap_through_the_app(engine: QAEngine, tmp_path: Path) -> None:
    app = create_app(
        {
            "ENGINE": engine,
            "FEEDBACK_DB": tmp_path / "fb.sqlite3",
            "FEEDBACK_MAX_ROWS": 3,
            "ADMIN_TOKEN": "t",
        }
    )
    client = app.test_client()
    for i in range(7):
        vote = {"question": f"Q{i} ?", "vote": "down"}
        assert client.post("/feedback", json=vote).status_code == 201
    listing = client.get("/feedback", headers={"Authorization": "Bearer t"}).get_json()
    assert [r["question"] for r in listing["feedback"]] == ["Q6 ?", "Q5 ?", "Q4 ?"]
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "newsqa_feedback_rows") == 3
    assert metric(text, "newsqa_feedback_bytes") == feedback_of(app).size().bytes > 0


def test_rate_limit_per_client(engine: QAEngine, tmp_path: Path) -> None:
    app = create_app({"ENGINE": engine, "FEEDBACK_DB": tmp_path / "fb.sqlite3", "FEEDBACK_RATE": 3})
    client = app.test_client()
    vote = {"question": "Q ?", "vote": "up"}
    one = {"REMOTE_ADDR": "192.0.2.1"}
    statuses = [client.post("/feedback", json=vote, environ_base=one).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    refused = client.post("/feedback", json=vote, environ_base=one)
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    # another client is not held back by the first
    other = client.post("/feedback", json=vote, environ_base={"REMOTE_ADDR": "192.0.2.2"})
    assert other.status_code == 201
    assert feedback_of(app).size().rows == 4
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        metric(text, "newsqa_http_errors_total", endpoint="/feedback", code="too_many_requests")
        == 3
    )


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0])
    assert [limiter.wait("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.wait("a") == pytest.approx(30.0)  # one post every 30 s
    now[0] = 29.0
    assert limiter.wait("a") == pytest.approx(1.0)
    now[0] = 30.0
    assert limiter.wait("a") == 0.0
    assert RateLimiter(per_minute=0).wait("a") == 0.0  # no limit


def test_listing_needs_the_admin_token(engine: QAEngine, tmp_path: Path) -> None:
    db = tmp_path / "fb.sqlite3"
    guarded = create_app({"ENGINE": engine, "FEEDBACK_DB": db, "ADMIN_TOKEN": "s3cret"})
    client = guarded.test_client()
    assert (
        client.post("/feedback", json={"question": "Ma question ?", "vote": "up"}).status_code
        == 201
    )
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer s3cre"},
        {"Authorization": "Basic s3cret"},
        {"Authorization": "s3cret"},
    ):
        response = client.get("/feedback", headers=headers)
        assert response.status_code == 401, headers
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert "Ma question" not in response.get_data(as_text=True)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    ok = client.get("/feedback", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.get_json()["count"] == 1

    # No token set: there is no listing at all, for anyone.
    open_app = create_app({"ENGINE": engine, "FEEDBACK_DB": db, "ADMIN_TOKEN": ""})
    client = open_app.test_client()
    for headers in ({}, {"Authorization": "Bearer "}):
        response = client.get("/feedback", headers=headers)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.head("/feedback").status_code == 404
    # voting still works
    assert client.post("/feedback", json={"question": "Q ?", "vote": "up"}).status_code == 201
