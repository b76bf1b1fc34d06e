"""The OpenAPI 3.1 document of the JSON API, built from the models in web/schemas.py.

The schemas come from the pydantic models the server validates requests with,
so the document and the server cannot disagree on what a request may hold; this
module adds what models do not say: the paths, their statuses and headers.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from qa.settings import Settings

from .schemas import FILTER_FIELDS, RESPONSES, FeedbackQuery, requests_for

REF = "#/components/schemas/{model}"


class _Schema(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every field (the names say it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def component_schemas(settings: Settings) -> dict[str, Any]:
    """Every request and response model, and the models inside them, by name."""
    requests = requests_for(settings)
    models = [*RESPONSES, requests.ask, requests.feedback]
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template=REF, schema_generator=_Schema
    )
    schemas: dict[str, Any] = top["$defs"]
    # The error schema stands alone (its detail inlined), so that any error, from
    # any path, can be checked with it without the rest of the document.
    schemas["Error"] = _inline(schemas["Error"], schemas)
    del schemas["ErrorDetail"]
    return schemas


def _inline(schema: Any, schemas: dict[str, Any]) -> Any:
    """`schema` with its references replaced by what they point to (no cycles here)."""
    if isinstance(schema, list):
        return [_inline(s, schemas) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _inline(schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas)
    return {k: _inline(v, schemas) for k, v in schema.items()}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    """References to the shared error responses, plus a default for the unexpected.
    Every operation can answer 400: a query string that is not UTF-8 is refused first."""
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in (400, *statuses)} | {
        "default": _json(_ref("Error"), "Unexpected error (500).")
    }


def _query_param(name: str, field: dict[str, Any], required: bool) -> dict[str, Any]:
    """A query parameter from a model's field: a query string has no null."""
    schema = dict(field)
    description = schema.pop("description", None)
    if "anyOf" in schema:
        (schema,) = (s for s in schema.pop("anyOf") if s != {"type": "null"})
    param = {"name": name, "in": "query", "required": required, "schema": schema}
    return param | ({"description": description} if description else {})


def openapi_spec(settings: Settings) -> dict[str, Any]:
    """The document, with the limits of the running server filled in."""
    schemas = component_schemas(settings)
    ask_fields = schemas["AskRequest"]["properties"]
    limit = FeedbackQuery.model_json_schema(schema_generator=_Schema)["properties"]["limit"]
    error_descriptions = {
        400: "Bad input: no body, invalid JSON (or a lone surrogate in it), not an object, "
        "a bad or missing field (the message names it and what it must be), a query string "
        "that is not UTF-8, a Host header outside QA_ALLOWED_HOSTS, malformed HTTP framing.",
        401: "No `Authorization: Bearer <token>` header, or not the server's QA_ADMIN_TOKEN.",
        404: "Unknown article or endpoint; GET /feedback when the server has no "
        "QA_ADMIN_TOKEN (the listing is off).",
        405: "Method not allowed on this path; the Allow header lists those that are.",
        413: f"Body larger than {settings.max_body_bytes} bytes (QA_MAX_BODY_BYTES), "
        "whatever it holds.",
        415: "Body sent without Content-Type: application/json.",
        429: "More than QA_FEEDBACK_RATE feedback posts a minute from one address; "
        "Retry-After says in how many seconds one is taken again.",
        503: "The index cannot be read.",
    }
    responses = {
        f"Error{status}": _json(_ref("Error"), text) for status, text in error_descriptions.items()
    }
    responses["Error401"]["headers"] = {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: Bearer.",
            "required": True,
            "schema": {"type": "string", "pattern": "^Bearer "},
        }
    }
    responses["Error429"]["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait before posting again.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
        }
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

    def body(name: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}

    paths = {
        "/ask": {
            "post": {
                "summary": "Answer a question with a cited sentence, or abstain.",
                "operationId": "askPost",
                "parameters": [request_id_param],
                "requestBody": body("AskRequest"),
                "responses": answered | _errors(413, 415, 503),
            },
            "get": {
                "summary": "Same as POST, with the question in the query string.",
                "operationId": "askGet",
                "parameters": [
                    _query_param("q", ask_fields["question"], required=True),
                    _query_param("top_k", ask_fields["top_k"], required=False),
                    *(_query_param(f, ask_fields[f], required=False) for f in FILTER_FIELDS),
                    request_id_param,
                ],
                "responses": answered | _errors(503),
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
                "description": "JSON unless the Accept header prefers text/html to "
                "application/json (a browser): then a page listing them, newest first.",
                "operationId": "listArticles",
                "responses": {
                    "200": {
                        "description": "The articles.",
                        "content": {
                            "application/json": {"schema": _ref("ArticleList")},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    }
                }
                | _errors(503),
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
                "requestBody": body("FeedbackRequest"),
                "responses": {"201": _json(_ref("FeedbackRecord"), "The stored record.")}
                | _errors(413, 415, 429),
            },
            "get": {
                "summary": "The latest feedback, newest first (every user's questions: "
                "for the server's admin only).",
                "operationId": "listFeedback",
                "parameters": [_query_param("limit", limit, required=False)],
                "security": [{"adminToken": []}],
                "responses": {"200": _json(_ref("FeedbackList"), "Feedback records.")}
                | _errors(401, 404),
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
                }
                | _errors(),
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
                }
                | _errors(),
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "newsqa",
            "version": "0.1.0",
            "description": "Extractive, cited question answering over French and English news "
            'articles. Every error is {"error": {"code", "message"}}: a method a path does not '
            "list gets a 405 with an Allow header, an unknown path a 404. Every response carries "
            "an X-Request-ID header (the caller's, or a generated one).",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "headers": headers,
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The server's QA_ADMIN_TOKEN.",
                }
            },
        },
    }
