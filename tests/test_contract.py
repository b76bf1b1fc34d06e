"""The OpenAPI document and the server agree.

schemathesis generates requests from the document the app serves at
/openapi.json and runs all its checks on every operation's responses (no 5xx,
documented statuses, headers and bodies, valid data accepted, invalid data
refused). The tables below pin each disagreement found before the document and
the request checks came from the same models (web/schemas.py): a request is
valid by the document exactly when the server takes it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from schemathesis.config import SchemathesisConfig

from qa.pipeline import QAEngine
from qa.settings import Settings
from web import create_app
from web.feedback import MAX_OFFSET, VOTES, Vote
from web.openapi import openapi_spec
from web.schemas import NOT_BLANK

# The app under test serves this document (checked below): the engine's settings
# are the defaults but for the index folder, which the document does not name.
SPEC = openapi_spec(Settings())
# JSON Schema cannot bound a body's bytes: a body, valid or not, may be over
# QA_MAX_BODY_BYTES, and its documented 413 is then the right answer.
# GET /feedback is generated with the admin token; a case generated without it
# is refused with 401, and schemathesis checks that the listing is refused
# without the token and with a wrong one (ignored_auth).
REFUSALS = ["400", "401", "404", "405", "413", "415"]
ADMIN_TOKEN = "contract-admin-token"
CONFIG = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"adminToken": {"bearer": ADMIN_TOKEN}}},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "404", "413"]},
            "negative_data_rejection": {"expected-statuses": REFUSALS},
        },
    }
)
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)


def _swapped(fields: Any, first: str, last: str) -> Any:
    """`fields` with `first` and `last` swapped when both are there and out of order."""
    a, b = fields.get(first), fields.get(last)
    if isinstance(a, str) and isinstance(b, str) and a > b:
        return {**fields, first: b, last: a}
    return fields


@schema.hook("map_query")
def window_in_order(ctx: Any, query: Any) -> Any:
    """GET /ask's since <= until, which the descriptions state: kept as a caller would."""
    if ctx.operation is None or ctx.operation.path != "/ask" or not isinstance(query, dict):
        return query
    return _swapped(query, "since", "until")


@schema.hook("map_body")
def span_in_order(ctx: Any, body: Any) -> Any:
    """JSON Schema cannot say start <= end either (the field descriptions do): the
    feedback bodies generated as valid are kept to it, as a caller would; so are
    /ask's since <= until."""
    if ctx.operation is not None and ctx.operation.path == "/ask" and isinstance(body, dict):
        return _swapped(body, "since", "until")
    if ctx.operation is None or ctx.operation.path != "/feedback" or not isinstance(body, dict):
        return body
    start, end = body.get("start"), body.get("end")
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (start, end))
    if numbers and start > end:
        return {**body, "start": end, "end": start}
    return body


@pytest.fixture(scope="module")
def contract_app(engine: QAEngine, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The app with its listing on; no feedback rate limit, so that every generated
    post is checked, not refused for coming fast (the 429 is checked below)."""
    folder = tmp_path_factory.mktemp("contract")
    return create_app(
        {
            "ENGINE": engine,
            "FEEDBACK_DB": folder / "feedback.sqlite3",
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "FEEDBACK_RATE": 0,
        }
    )


@pytest.fixture(scope="module")
def contract_client(contract_app: Flask) -> Iterator[FlaskClient]:
    with contract_app.test_client() as c:
        yield c


def test_the_app_serves_the_tested_document(contract_client: FlaskClient) -> None:
    assert contract_client.get("/openapi.json").get_json() == SPEC


def test_the_document_is_valid_openapi() -> None:
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    for component in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(component)


# A few dozen cases per operation (examples, boundary values, then random ones,
# valid and invalid); about half a minute for all on a loaded 2-core machine.
@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_keeps_the_contract(case: Any, contract_app: Flask) -> None:
    # Bound as schemathesis.openapi.from_wsgi binds what it loads: the requests its
    # checks send themselves (the listing without the token) go to this app too.
    case.operation.schema.app = contract_app
    case.call_and_validate(app=contract_app)


# ---------------------------------------------------------------- the disagreements, pinned


def valid(component: str, instance: object) -> bool:
    """Whether the document's schema `component` takes `instance`."""
    root = {**SPEC["components"]["schemas"][component], "components": SPEC["components"]}
    return Draft202012Validator(root).is_valid(instance)


def query_schema(path: str, name: str) -> dict[str, Any]:
    params = SPEC["paths"][path]["get"]["parameters"]
    (param,) = (p for p in params if p["name"] == name and p["in"] == "query")
    found: dict[str, Any] = param["schema"]
    return found


QUESTION = "Où se retrouvent les ministres ?"


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"question": QUESTION}, True),
        ({"question": QUESTION, "top_k": None}, True),  # was taken, but not documented
        ({"question": QUESTION, "top_k": 46.0}, True),  # an integer to JSON Schema; was refused
        ({"question": QUESTION, "top_k": 1}, True),
        ({"question": QUESTION, "top_k": 50}, True),
        ({"question": QUESTION, "top_k": 51}, False),
        ({"question": QUESTION, "top_k": 0}, False),
        ({"question": QUESTION, "top_k": 2.5}, False),
        ({"question": QUESTION, "top_k": "3"}, False),
        ({"question": QUESTION, "top_k": True}, False),
        ({"question": QUESTION, "unknown": [1]}, True),  # extra fields are ignored
        ({"question": ""}, False),
        ({"question": " \t\n"}, False),
        ({"question": "x" * 2000}, True),
        ({"question": "x" * 2001}, False),
        ({"question": 42}, False),
        ({}, False),
    ],
)
def test_ask_body_valid_by_the_document_exactly_when_taken(
    contract_client: FlaskClient, body: dict[str, Any], accepted: bool
) -> None:
    assert valid("AskRequest", body) is accepted
    response = contract_client.post("/ask", json=body)
    assert (response.status_code == 200) is accepted, response.get_json()
    if not accepted:
        error = response.get_json()["error"]
        assert error["code"] in {"bad_question", "missing_question"}
        named = [f for f in ("question", "top_k") if f in body and f'"{f}"' in error["message"]]
        assert named or error["code"] == "missing_question", error


def test_integral_float_top_k_is_that_integer(contract_client: FlaskClient) -> None:
    answer = contract_client.post("/ask", json={"question": QUESTION, "top_k": 2.0}).get_json()
    assert len(answer["passages"]) <= 2


@pytest.mark.parametrize(
    ("q", "accepted"), [("", False), ("   ", False), (QUESTION, True), ("x" * 2001, False)]
)
def test_ask_query_valid_by_the_document_exactly_when_taken(
    contract_client: FlaskClient, q: str, accepted: bool
) -> None:
    assert Draft202012Validator(query_schema("/ask", "q")).is_valid(q) is accepted
    response = contract_client.get("/ask", query_string={"q": q})
    assert (response.status_code == 200) is accepted, response.get_json()
    if not accepted:
        assert response.get_json()["error"]["code"] == "bad_question"
        assert '"q"' in response.get_json()["error"]["message"]


@pytest.mark.parametrize(("top_k", "accepted"), [("3", True), ("0", False), ("51", False)])
def test_ask_query_top_k(contract_client: FlaskClient, top_k: str, accepted: bool) -> None:
    assert Draft202012Validator(query_schema("/ask", "top_k")).is_valid(int(top_k)) is accepted
    response = contract_client.get("/ask", query_string={"q": QUESTION, "top_k": top_k})
    assert (response.status_code == 200) is accepted


VOTE = {"question": QUESTION, "vote": "up"}
CITED = {**VOTE, "answer": "Les ministres.", "article_id": "a1", "start": 0, "end": 14}


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (VOTE, True),
        (CITED, True),
        ({**CITED, "start": 5.0, "end": 14.0}, True),
        ({**VOTE, "article_id": ""}, False),  # was documented as valid, and refused
        ({**VOTE, "article_id": "x" * 501}, False),
        ({**VOTE, "article_id": "x" * 500}, True),
        ({**VOTE, "answer": "x" * 10_001, "article_id": "a1"}, False),
        ({**CITED, "start": MAX_OFFSET, "end": MAX_OFFSET}, True),
        ({**CITED, "end": MAX_OFFSET + 1}, False),
        ({**CITED, "start": 2**63, "end": 2**63 + 5}, False),  # was an OverflowError: 500
        ({**CITED, "start": -1}, False),
        ({**CITED, "end": None}, False),  # a span needs both ends
        ({**VOTE, "start": 0, "end": 3}, False),  # and the article it points into
        ({**VOTE, "answer": "Les ministres."}, False),  # an answer needs its article
        ({**VOTE, "vote": "sideways"}, False),
        ({**VOTE, "question": "  "}, False),
        ({"vote": "up"}, False),
    ],
)
def test_feedback_body_valid_by_the_document_exactly_when_taken(
    contract_client: FlaskClient, body: dict[str, Any], accepted: bool
) -> None:
    assert valid("FeedbackRequest", body) is accepted
    response = contract_client.post("/feedback", json=body)
    assert (response.status_code == 201) is accepted, response.get_json()
    if accepted:
        stored = response.get_json()
        assert (stored["start"], stored["end"]) == (body.get("start"), body.get("end"))
        assert valid("FeedbackRecord", stored)
    else:
        assert response.get_json()["error"]["code"] == "invalid_feedback"


def test_start_after_end_is_refused_as_the_description_says(contract_client: FlaskClient) -> None:
    """The one rule JSON Schema cannot state: the field descriptions do."""
    description = SPEC["components"]["schemas"]["FeedbackRequest"]["properties"]["start"]
    assert "start <= end" in description["description"]
    response = contract_client.post("/feedback", json={**CITED, "start": 9, "end": 3})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == '"start" must not be after "end".'


@pytest.mark.parametrize(("path", "method"), [("/ask", "post"), ("/feedback", "post")])
def test_every_body_documents_its_refusals(path: str, method: str) -> None:
    responses = SPEC["paths"][path][method]["responses"]
    assert {"400", "413", "415"} <= set(responses)


def test_a_valid_body_over_the_limit_is_the_documented_413(
    contract_client: FlaskClient, contract_app: Flask
) -> None:
    body = {**CITED, "answer": "é" * 10_000}  # 60 kB as JSON escapes
    assert valid("FeedbackRequest", body)
    raw = json.dumps(body).encode()
    assert len(raw) > contract_app.config["SETTINGS"].max_body_bytes
    response = contract_client.post("/feedback", data=raw, content_type="application/json")
    assert response.status_code == 413
    error = SPEC["components"]["responses"]["Error413"]["content"]["application/json"]["schema"]
    root = {**error, "components": SPEC["components"]}
    Draft202012Validator(root).validate(response.get_json())


def test_a_blank_question_is_what_the_engine_strips() -> None:
    """The document's pattern for "not only blanks" is spelt out, so that JSON Schema's
    regular expressions and the server agree with str.strip() on every character."""
    question = SPEC["components"]["schemas"]["AskRequest"]["properties"]["question"]
    assert question["pattern"] == NOT_BLANK
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert re.sub(NOT_BLANK, "", every) == "".join(c for c in every if c.isspace())


def test_the_votes_are_those_the_store_takes() -> None:
    assert get_args(Vote) == VOTES  # the SQLite table's CHECK holds the same two


# ---------------------------------------------------------------- the /feedback guards


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", ADMIN_TOKEN, "Basic x"])
def test_the_listing_without_the_token_is_the_documented_401(
    contract_app: Flask, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    case = schema["/feedback"]["GET"].Case(headers=headers)
    response = case.call_and_validate(app=contract_app)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == ['Bearer realm="feedback"']


def test_the_listing_is_the_documented_404_without_an_admin_token(
    engine: QAEngine, tmp_path: Path
) -> None:
    app = create_app({"ENGINE": engine, "FEEDBACK_DB": tmp_path / "fb.sqlite3", "ADMIN_TOKEN": ""})
    case = schema["/feedback"]["GET"].Case(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert case.call_and_validate(app=app).status_code == 404


def test_posts_past_the_rate_are_the_documented_429(engine: QAEngine, tmp_path: Path) -> None:
    app = create_app({"ENGINE": engine, "FEEDBACK_DB": tmp_path / "fb.sqlite3", "FEEDBACK_RATE": 2})
    case = schema["/feedback"]["POST"].Case(body={"question": "Qui ?", "vote": "up"})
    statuses = [case.call_and_validate(app=app).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    retry = case.call_and_validate(app=app).headers["retry-after"]
    assert 1 <= int(retry[0]) <= 30
