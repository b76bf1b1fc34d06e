"""Thumbs up/down: stored in SQLite, listed newest first, bad input refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from qa.pipeline import QAEngine
from web import create_app


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
    config = {"ENGINE": engine, "FEEDBACK_DB": tmp_path / "fb.sqlite3"}
    first = create_app(config).test_client()
    vote = {"question": "Q ?", "vote": "up"}
    assert first.post("/feedback", json=vote).status_code == 201
    second = create_app(config).test_client()
    assert second.get("/feedback").get_json()["count"] == 1


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
