"""The JSON API: /ask, /health, /articles, /feedback, /openapi.json (and
/articles as a page, for a browser that asks for HTML).

Every error is JSON `{"error": {"code", "message"}}` with a 4xx status (a 5xx
only for a bug or an index that went bad under a running server).

Request bodies and queries are checked against the models of web/schemas.py,
which the OpenAPI document is built from; the engine then checks the question
again (QAEngine.validate), for callers that do not come through the web.

Each /ask response names the index build that answered it in the
`X-Index-Build` header, so a caller (or a test) can check its citations
against that build while builds are being swapped.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, make_response, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from qa.errors import BadQuestion, IndexProblem, InputError, ModelLoadError, QAError
from qa.filters import ArticleFilter
from qa.pipeline import QAEngine
from qa.settings import Settings

from . import engine_of, feedback_of
from .feedback import Feedback
from .openapi import openapi_spec
from .pages import articles_page
from .schemas import FILTER_FIELDS, FeedbackQuery, missing, problem, requests_for

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

BUILD_HEADER = "X-Index-Build"
_DIGITS = re.compile(r"[0-9]{1,9}")
# Tries at answering from one build while builds are being swapped (see _answer).
ANSWER_TRIES = 3


class ApiError(Exception):
    """A request the API refuses, with the status, code and message to send back."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    g.error_code = code  # for the metrics and the access log
    return jsonify({"error": {"code": code, "message": message}}), status


def _settings() -> Settings:
    settings: Settings = current_app.config["SETTINGS"]
    return settings


def _engine() -> QAEngine:
    """The engine, switched to the newest published index build first (a readlink)."""
    engine = engine_of(current_app)
    engine.reload_if_changed()
    return engine


def _json_body() -> dict[str, Any]:
    # Reading the body enforces MAX_CONTENT_LENGTH (413), even without a Content-Length.
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(
            400, "empty_body", 'The request has no body: send a JSON object like {"question": "…"}.'
        )
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON, with the header Content-Type: application/json.",
        )
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "not_an_object", "The body must be a JSON object.")
    try:
        # JSON lets "\ud800" through, but a lone surrogate is not text: the encoder,
        # SQLite and the response's UTF-8 would each fail on it later, as a 500.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"The body holds a lone surrogate ({exc.object[exc.start]!r}), which is not text.",
        ) from None
    return data


def _query_int(name: str) -> object:
    """A query parameter of plain ASCII digits as an int (int() would also take "٣",
    " 3", "+3" and "3_0"); anything else as the string it is, for the model to refuse."""
    raw = request.args.get(name)
    return int(raw) if raw is not None and _DIGITS.fullmatch(raw) else raw


def _ask(data: dict[str, Any], question_name: str, missing_question: str) -> Response:
    """Check a question's fields against the contract's model, then answer it."""
    model = requests_for(_settings()).ask
    try:
        asked = model.model_validate(data)
    except ValidationError as exc:
        if missing(exc, "question"):
            raise ApiError(400, "missing_question", missing_question) from None
        message = problem(exc, model, {"question": question_name})
        where = exc.errors()[0]["loc"]
        code = "bad_filter" if not where or where[0] in FILTER_FIELDS else "bad_question"
        raise ApiError(400, code, message) from None
    only = ArticleFilter(asked.since, asked.until, tuple(asked.sources or ()))
    return _answer(asked.question, asked.top_k, only)


def _answer(question: str, top_k: int | None, only: ArticleFilter | None = None) -> Response:
    """The answer, with the build it came from in the X-Index-Build header.

    `ask` reads the engine's reader once; readers only ever move forward to a
    newer build, so when the build id is the same before and after `ask`, that
    build answered. A swap in between (another thread reloaded) is rare and
    cheap to redo.
    """
    engine = _engine()
    for _ in range(ANSWER_TRIES):
        build = engine.reader.build_id
        answer = engine.ask(question, top_k, only)
        if engine.reader.build_id == build:
            break
    else:
        build = ""  # builds kept changing under us: say nothing rather than guess
    g.answered = answer.answered
    response = jsonify(answer.to_dict())
    if build:
        response.headers[BUILD_HEADER] = build
    return response


# ---------------------------------------------------------------- routes


@bp.post("/ask")
def ask_post() -> Response:
    return _ask(_json_body(), "question", 'The body needs a "question" field.')


@bp.get("/ask")
def ask_get() -> Response:
    query = {
        "question": request.args.get("q"),
        "top_k": _query_int("top_k"),
        "since": request.args.get("since"),
        "until": request.args.get("until"),
        "sources": request.args.getlist("sources") or None,
    }
    return _ask({k: v for k, v in query.items() if v is not None}, "q", "Give the question as ?q=…")


@bp.get("/health")
def health() -> Response:
    reader = _engine().reader
    meta = reader.meta
    return jsonify(
        {
            "status": "ok",
            "index_loaded": True,
            "build_id": reader.build_id,
            "created_at": meta.get("created_at"),
            "counts": reader.counts,
            "encoder": {"name": meta["encoder"]["name"], "dim": int(meta["encoder"]["dim"])},
            # The default encoder is plain numpy; torch in memory means a heavier setup.
            "torch_loaded": "torch" in sys.modules,
        }
    )


@bp.get("/articles")
def articles() -> Response:
    """JSON, or the page listing them for a browser (which prefers HTML)."""
    items = _engine().reader.list_articles()
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        response = make_response(articles_page(items))
    else:
        response = jsonify({"count": len(items), "articles": items})
    response.vary.add("Accept")
    return response


@bp.get("/articles/<path:article_id>")
def article(article_id: str) -> Response:
    reader = _engine().reader
    found = reader.article(article_id)
    if found is None:
        raise ApiError(404, "unknown_article", f"No article with id {article_id!r}.")
    sentences = [
        {
            "index": s.idx,
            "start": s.start,
            "end": s.end,
            "text": found.text[s.start : s.end],
            "heading": s.heading,
        }
        for s in reader.article_sentences(article_id)
    ]
    return jsonify(
        {
            "id": found.id,
            "title": found.title,
            "url": found.url,
            "lang": found.lang,
            "date": found.date,
            "source": found.source,
            "author": found.author,
            "text": found.text,
            "sentences": sentences,
        }
    )


@bp.post("/feedback")
def feedback_post() -> tuple[Response, int]:
    model = requests_for(_settings()).feedback
    try:
        vote = model.model_validate(_json_body())
    except ValidationError as exc:
        raise ApiError(400, "invalid_feedback", problem(exc, model)) from None
    item = Feedback(
        question=vote.question.strip(),
        answer=vote.answer,
        article_id=vote.article_id,
        start=vote.start,
        end=vote.end,
        vote=vote.vote,
    )
    stored = feedback_of(current_app).add(item, engine_of(current_app).reader.build_id)
    return jsonify(stored), 201


@bp.get("/feedback")
def feedback_list() -> Response:
    raw = _query_int("limit")
    try:
        query = FeedbackQuery.model_validate({} if raw is None else {"limit": raw})
    except ValidationError as exc:
        raise ApiError(400, "bad_limit", problem(exc, FeedbackQuery)) from None
    items = feedback_of(current_app).recent(query.limit)
    return jsonify({"count": len(items), "feedback": items})


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_spec(_settings()))


# ---------------------------------------------------------------- errors


def _utf8_query_string() -> None:
    """A query string that is not UTF-8 (raw bytes from a client that did not
    percent-encode) is refused here: werkzeug would raise decoding it, a 500."""
    try:
        request.query_string.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            "bad_query_string",
            f"The query string is not UTF-8 (byte {exc.object[exc.start]:#04x} at "
            f"{exc.start}): percent-encode it.",
        ) from None


def register_error_handlers(app: Flask) -> None:
    """JSON for every error, app-wide (pages included: a wrong URL is an API-style 404),
    and a 400 before any view for a query string that is not UTF-8."""

    app.before_request(_utf8_query_string)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> WerkzeugResponse:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = (
                f"The request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes."
            )
        elif status == 405:
            allowed = ", ".join(exc.valid_methods or []) if hasattr(exc, "valid_methods") else ""
            message = f"{request.method} is not allowed here" + (
                f"; use {allowed}." if allowed else "."
            )
        elif status == 404:
            message = f"No such endpoint: {request.path}. See /openapi.json."
        # get_response keeps headers such as Allow on a 405.
        response = exc.get_response()
        g.error_code = _snake(exc.name)
        response.data = json.dumps(
            {"error": {"code": g.error_code, "message": message}}, ensure_ascii=False
        ).encode()
        response.content_type = "application/json"
        return response

    @app.errorhandler(QAError)
    def _qa_error(exc: QAError) -> tuple[Response, int]:
        if isinstance(exc, BadQuestion):
            return error_response(400, "bad_question", str(exc))
        if isinstance(exc, InputError):
            return error_response(400, "bad_input", str(exc))
        log.error("engine failure: %s", exc)
        if isinstance(exc, IndexProblem | ModelLoadError):
            return error_response(503, "index_unavailable", str(exc))
        return error_response(500, "qa_error", str(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Internal error; it has been logged.")


def _snake(name: str) -> str:
    return "_".join(name.lower().replace("-", " ").split())
