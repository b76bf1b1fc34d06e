"""The OpenAPI 3.1 description of the JSON API, written by hand.

Response schemas are closed (`additionalProperties: false`), so the tests that
validate real responses against them catch any drift of the contract.
"""

from __future__ import annotations

from typing import Any

from qa.settings import Settings

from .feedback import MAX_ANSWER_CHARS, VOTES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NULLABLE_STRING = {"type": ["string", "null"]}
# What /articles lists of each article; /articles/<id> adds its text and sentences.
ARTICLE_FIELDS = {
    "id": {"type": "string"},
    "title": {"type": "string"},
    "url": NULLABLE_STRING,
    "lang": {"type": "string"},
    "date": NULLABLE_STRING,
}
OFFSET = {"type": "integer", "minimum": 0}


def _errors(*statuses: int) -> dict[str, Any]:
    """References to the shared error responses, plus a default for the unexpected."""
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses} | {
        "default": _json(_ref("Error"), "Unexpected error (500).")
    }


def openapi_spec(settings: Settings) -> dict[str, Any]:
    """The spec, with the limits of the running server filled in."""
    question = {"type": "string", "minLength": 1, "maxLength": settings.max_question_chars}
    schemas: dict[str, Any] = {
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "code": {"type": "string", "description": "Machine-readable reason."},
                        "message": {"type": "string", "description": "What to fix."},
                    }
                )
            }
        ),
        "AskRequest": {
            "type": "object",
            "properties": {
                "question": question,
                "top_k": {"type": "integer", "minimum": 1, "maximum": settings.max_top_k},
            },
            "required": ["question"],
        },
        "ShortAnswer": _obj({"text": {"type": "string"}, "start": OFFSET, "end": OFFSET}),
        "Citation": _obj(
            {
                "article_id": {"type": "string"},
                "title": {"type": "string"},
                "url": NULLABLE_STRING,
                "sentence": {"type": "string", "description": "article.text[start:end]"},
                "start": OFFSET,
                "end": OFFSET,
                "score": {
                    "type": "number",
                    "description": "margin over the calibrated abstention threshold",
                },
            }
        ),
        "Passage": _obj(
            {
                "article_id": {"type": "string"},
                "chunk_id": {"type": "string"},
                "text": {"type": "string", "description": "article.text[start:end]"},
                "start": OFFSET,
                "end": OFFSET,
                "score": {"type": "number"},
            }
        ),
        "Answer": _obj(
            {
                "question": {"type": "string"},
                "language": {"type": "string", "enum": ["fr", "en"]},
                "answered": {"type": "boolean"},
                "answer": {
                    "type": ["string", "null"],
                    "description": "The cited sentence, verbatim; null when the service abstains.",
                },
                "short_answer": {"oneOf": [_ref("ShortAnswer"), {"type": "null"}]},
                "message": {
                    "type": "string",
                    "description": "A sentence to show, in the question's language "
                    "(the abstention message when answered is false).",
                },
                "citations": {"type": "array", "items": _ref("Citation")},
                "passages": {"type": "array", "items": _ref("Passage")},
                "took_ms": {"type": "number", "minimum": 0},
            }
        ),
        "Health": _obj(
            {
                "status": {"type": "string", "enum": ["ok"]},
                "index_loaded": {"type": "boolean"},
                "build_id": {"type": "string"},
                "created_at": NULLABLE_STRING,
                # Open: a build may count more things (e.g. vocabulary words).
                "counts": {
                    **_obj({"articles": OFFSET, "chunks": OFFSET, "sentences": OFFSET}),
                    "additionalProperties": OFFSET,
                },
                "encoder": _obj({"name": {"type": "string"}, "dim": {"type": "integer"}}),
                "torch_loaded": {"type": "boolean"},
            }
        ),
        "ArticleSummary": _obj(ARTICLE_FIELDS),
        "ArticleList": _obj(
            {"count": OFFSET, "articles": {"type": "array", "items": _ref("ArticleSummary")}}
        ),
        "Sentence": _obj(
            {
                "index": OFFSET,
                "start": OFFSET,
                "end": OFFSET,
                "text": {"type": "string", "description": "article text[start:end]"},
                "heading": {"type": "boolean"},
            }
        ),
        "Article": _obj(
            {
                **ARTICLE_FIELDS,
                "text": {"type": "string", "description": "The cleaned text offsets point into."},
                "sentences": {"type": "array", "items": _ref("Sentence")},
            }
        ),
        "FeedbackRequest": {
            "type": "object",
            "properties": {
                "question": question,
                "answer": {"type": ["string", "null"], "maxLength": MAX_ANSWER_CHARS},
                "article_id": NULLABLE_STRING,
                "start": {"type": ["integer", "null"], "minimum": 0},
                "end": {"type": ["integer", "null"], "minimum": 0},
                "vote": {"type": "string", "enum": list(VOTES)},
            },
            "required": ["question", "vote"],
        },
        "FeedbackRecord": _obj(
            {
                "id": {"type": "integer"},
                "created_at": {"type": "string"},
                "question": {"type": "string"},
                "answer": NULLABLE_STRING,
                "article_id": NULLABLE_STRING,
                "start": {"type": ["integer", "null"]},
                "end": {"type": ["integer", "null"]},
                "vote": {"type": "string", "enum": list(VOTES)},
                "build_id": NULLABLE_STRING,
            }
        ),
        "FeedbackList": _obj(
            {"count": OFFSET, "feedback": {"type": "array", "items": _ref("FeedbackRecord")}}
        ),
    }
    error_descriptions = {
        400: "Bad input: no body, invalid JSON (or a lone surrogate in it), not an object, "
        "a bad or missing field, a query string that is not UTF-8.",
        404: "Unknown article or endpoint.",
        405: "Method not allowed on this path.",
        413: f"Body larger than {settings.max_body_bytes} bytes.",
        415: "Body sent without Content-Type: application/json.",
        503: "The index cannot be read.",
    }
    responses = {
        f"Error{status}": _json(_ref("Error"), text) for status, text in error_descriptions.items()
    }
    headers = {
        "X-Request-ID": {
            "description": "The caller's X-Request-ID when it is 1-128 plain characters "
            "([A-Za-z0-9._:@/+=-]), else a generated one; the access log line carries it.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 128},
        },
        "X-Index-Build": {
            "description": "The index build that answered: every citation's article is in it.",
            "schema": {"type": "string"},
        },
    }
    answered = {
        "200": _json(_ref("Answer"), "The answer.")
        | {"headers": {name: {"$ref": f"#/components/headers/{name}"} for name in headers}}
    }
    request_id_param = {
        "name": "X-Request-ID",
        "in": "header",
        "required": False,
        "description": "An id to find this request by in the server's log; echoed back.",
        "schema": {"type": "string"},
    }
    ask_get_params = [
        {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
        {
            "name": "top_k",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": settings.max_top_k},
        },
    ]
    paths = {
        "/ask": {
            "post": {
                "summary": "Answer a question with a cited sentence, or abstain.",
                "operationId": "askPost",
                "parameters": [request_id_param],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("AskRequest")}},
                },
                "responses": answered | _errors(400, 405, 413, 415, 503),
            },
            "get": {
                "summary": "Same as POST, with the question in the query string.",
                "operationId": "askGet",
                "parameters": [*ask_get_params, request_id_param],
                "responses": answered | _errors(400, 503),
            },
        },
        "/health": {
            "get": {
                "summary": "The loaded index build and its size.",
                "operationId": "health",
                "responses": {"200": _json(_ref("Health"), "Server and index status.")}
                | _errors(503),
            }
        },
        "/articles": {
            "get": {
                "summary": "Every indexed article.",
                "operationId": "listArticles",
                "responses": {"200": _json(_ref("ArticleList"), "The articles.")} | _errors(503),
            }
        },
        "/articles/{article_id}": {
            "get": {
                "summary": "One article's cleaned text and sentence offsets, to check citations.",
                "operationId": "getArticle",
                "parameters": [
                    {
                        "name": "article_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {"200": _json(_ref("Article"), "The article.")} | _errors(404, 503),
            }
        },
        "/feedback": {
            "post": {
                "summary": "Record a thumbs up or down on an answer.",
                "operationId": "addFeedback",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("FeedbackRequest")}},
                },
                "responses": {"201": _json(_ref("FeedbackRecord"), "The stored record.")}
                | _errors(400, 413, 415),
            },
            "get": {
                "summary": "The latest feedback, newest first.",
                "operationId": "listFeedback",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    }
                ],
                "responses": {"200": _json(_ref("FeedbackList"), "Feedback records.")}
                | _errors(400),
            },
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics: requests, errors, latency, abstentions, index.",
                "description": "newsqa_http_requests_total{endpoint,method,status}, "
                "newsqa_http_errors_total{endpoint,code}, "
                "newsqa_http_request_duration_seconds{endpoint} (histogram), "
                "newsqa_answers_total, newsqa_abstentions_total, newsqa_index_articles, "
                "newsqa_index_chunks, newsqa_index_sentences, "
                "newsqa_index_build_info{build_id,encoder}.",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "operationId": "openapi",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "newsqa",
            "version": "0.1.0",
            "description": "Extractive, cited question answering over French and English news "
            'articles. Every error is {"error": {"code", "message"}}. Every response carries '
            "an X-Request-ID header (the caller's, or a generated one).",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": schemas, "responses": responses, "headers": headers},
    }
