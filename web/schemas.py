"""The HTTP API's contract, written once: a pydantic model per request and response.

The server checks each request body (and GET /ask's query) with these models
(web/api.py), and the OpenAPI document is built from their JSON Schema
(web/openapi.py), so what the document promises and what the server accepts
cannot drift apart. A field's description says what it must be: it is shown in
the document and is the message of a 400 on that field.

Request models carry the running server's limits (QA_MAX_QUESTION_CHARS,
QA_MAX_TOP_K), so they are made per set of limits by `requests_for`.
Response models are closed (`additionalProperties: false`), so the tests that
validate real responses against the document catch any drift of the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)

from qa.filters import iso_date
from qa.settings import Settings

from .feedback import MAX_ANSWER_CHARS, MAX_ARTICLE_ID_CHARS, MAX_OFFSET, Vote

# A character that str.strip() keeps (str.isspace() is false), spelt out: \s is not
# the same set in Python (which adds \x1c-\x1f and \x85) and in JSON Schema's
# ECMA-262 regular expressions (which add \ufeff).
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
MAX_FEEDBACK_LIST = 1000
FILTER_FIELDS = ("since", "until", "sources")  # AskRequest's, which choose the articles
MAX_SOURCES = 50  # outlets one question may name
MAX_SOURCE_CHARS = 200


def _integral(value: object) -> object:
    """46.0 is the integer 46 to JSON Schema, so to the server too; 2.5 stays a float
    (and is refused). Strings and booleans are left as they are, to be refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Offset = Annotated[int, Field(ge=0)]
# The constraints come first, on the int itself: after the BeforeValidator (or on the
# union with None) pydantic checks them but leaves them out of the JSON Schema.
TextOffset = Annotated[int, Field(ge=0, le=MAX_OFFSET), BeforeValidator(_integral)]


class Closed(BaseModel):
    """A response object: no field besides those listed."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- requests


class Request(BaseModel):
    # JSON types as they are: no "3" for 3, no 1 for "1" (integral floats aside).
    model_config = ConfigDict(strict=True)


# A day as JSON Schema's "date" format (RFC 3339 full-date) says: YYYY-MM-DD, a real one.
IsoDate = Annotated[
    str, AfterValidator(iso_date), WithJsonSchema({"type": "string", "format": "date"})
]
Outlet = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SOURCE_CHARS)]


class AskRequest(Request):
    """POST /ask's body; GET /ask takes the same fields, the question as `q`."""

    question: str
    top_k: int | None = None
    since: IsoDate | None = Field(
        None,
        description="null, or a day written YYYY-MM-DD (not after until): answer only from "
        "articles published on or after it; articles with no date are left out",
    )
    until: IsoDate | None = Field(
        None,
        description="null, or a day written YYYY-MM-DD (not before since): answer only from "
        "articles published on or before it; articles with no date are left out",
    )
    sources: Annotated[list[Outlet], Field(max_length=MAX_SOURCES)] | None = Field(
        None,
        description=f"null, or a list of at most {MAX_SOURCES} outlet names (1 to "
        f"{MAX_SOURCE_CHARS} characters each): answer only from articles published by one "
        "of them (same name, any case)",
    )

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError(f'"since" ({self.since}) must not be after "until" ({self.until}).')
        return self


# What JSON Schema can say of the rules in FeedbackRequest._consistent (all but
# start <= end, which only the description states): a span needs its other end and
# the article it points into, an answer the article it was cited from.
_FEEDBACK_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"required": [a], "properties": {a: {"type": "integer"}}},
            "then": {
                "required": [b, "article_id"],
                "properties": {b: {"type": "integer"}, "article_id": {"type": "string"}},
            },
        }
        for a, b in (("start", "end"), ("end", "start"))
    ]
    + [
        {
            "if": {"required": ["answer"], "properties": {"answer": {"type": "string"}}},
            "then": {"required": ["article_id"], "properties": {"article_id": {"type": "string"}}},
        }
    ]
}


class FeedbackRequest(Request):
    """POST /feedback's body: a vote on an answer, and where that answer was cited from."""

    model_config = ConfigDict(json_schema_extra=_FEEDBACK_RULES)
    question: str
    vote: Vote = Field(description='"up" or "down"')
    answer: str | None = Field(
        None,
        max_length=MAX_ANSWER_CHARS,
        description=f"null, or the answer voted on: at most {MAX_ANSWER_CHARS} characters, "
        'given with its "article_id"',
    )
    article_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ARTICLE_ID_CHARS,
        description=f"null, or the id of the article the answer cites: 1 to "
        f"{MAX_ARTICLE_ID_CHARS} characters",
    )
    start: TextOffset | None = Field(
        None,
        description=f"null, or the offset (0 to {MAX_OFFSET}) in the article's text where the "
        'cited sentence starts, given with "end" (start <= end) and "article_id"',
    )
    end: TextOffset | None = Field(
        None,
        description=f"null, or the offset (0 to {MAX_OFFSET}) where the cited sentence ends, "
        'given with "start" (start <= end) and "article_id"',
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.start is None) != (self.end is None):
            raise ValueError('"start" and "end" go together: give both or neither.')
        if self.start is not None and self.end is not None:
            if self.start > self.end:
                raise ValueError('"start" must not be after "end".')
            if self.article_id is None:
                raise ValueError('"start" and "end" need the "article_id" they point into.')
        if self.answer is not None and self.article_id is None:
            raise ValueError('An "answer" needs the "article_id" it was cited from.')
        return self


class FeedbackQuery(Request):
    """GET /feedback's query."""

    limit: Annotated[int, Field(ge=1, le=MAX_FEEDBACK_LIST), BeforeValidator(_integral)] = Field(
        100, description=f"an integer from 1 to {MAX_FEEDBACK_LIST}: how many records, newest first"
    )


@dataclass(frozen=True)
class Requests:
    """The request models, with one server's limits."""

    ask: type[AskRequest]
    feedback: type[FeedbackRequest]


def requests_for(settings: Settings) -> Requests:
    return _requests(settings.max_question_chars, settings.max_top_k, settings.top_k)


@cache
def _requests(max_question_chars: int, max_top_k: int, default_top_k: int) -> Requests:
    # A question of blanks only is empty to the engine (it strips them). The length
    # counts what is sent, blanks included.
    question = Annotated[
        str,
        StringConstraints(min_length=1, max_length=max_question_chars, pattern=NOT_BLANK),
        Field(
            description=f"text that is not only blanks, at most {max_question_chars} characters",
        ),
    ]
    top_k = Annotated[
        Annotated[int, Field(ge=1, le=max_top_k), BeforeValidator(_integral)] | None,
        Field(
            description=f"an integer from 1 to {max_top_k}: how many passages to read "
            f"({default_top_k} when absent or null)",
        ),
    ]
    ask = create_model(
        "AskRequest", __base__=AskRequest, question=(question, ...), top_k=(top_k, None)
    )
    feedback = create_model("FeedbackRequest", __base__=FeedbackRequest, question=(question, ...))
    return Requests(ask=ask, feedback=feedback)


def problem(
    exc: ValidationError, model: type[BaseModel], names: dict[str, str] | None = None
) -> str:
    """The first thing wrong with a request, as a sentence that names the fix.

    `names` renames fields for the message (GET /ask's question is `q`).
    """
    error = exc.errors()[0]
    if not error["loc"]:  # a rule across fields (FeedbackRequest._consistent)
        return str(error.get("ctx", {}).get("error", error["msg"]))
    field = str(error["loc"][0])
    name = (names or {}).get(field, field)
    info = model.model_fields.get(field)
    description = info.description if info is not None else None
    if error["type"] == "missing":
        return f'"{name}" is missing: give {description}.'
    return f'"{name}" must be {description or error["msg"]}.'


def missing(exc: ValidationError, field: str) -> bool:
    return any(e["type"] == "missing" and e["loc"] == (field,) for e in exc.errors())


# ---------------------------------------------------------------- responses


class ErrorDetail(Closed):
    code: str = Field(description="Machine-readable reason.")
    message: str = Field(description="What to fix.")


class Error(Closed):
    error: ErrorDetail


class ShortAnswer(Closed):
    text: str
    start: Offset
    end: Offset
    resolved: str | None = Field(
        description="A relative date in the span resolved against the article's publication "
        'date: a day ("2016-01-20") or a range ("2016-01-18/2016-01-24"); null otherwise'
    )


class Citation(Closed):
    article_id: str
    title: str
    url: str | None
    sentence: str = Field(description="article.text[start:end]")
    start: Offset
    end: Offset
    score: float = Field(description="margin over the calibrated abstention threshold")
    date: str | None = Field(description="the article's publication date, YYYY-MM-DD")
    source: str | None = Field(description="the outlet that published the article")


class Passage(Closed):
    article_id: str
    chunk_id: str
    text: str = Field(description="article.text[start:end]")
    start: Offset
    end: Offset
    score: float


class Answer(Closed):
    question: str
    language: Literal["fr", "en"]
    answered: bool
    answer: str | None = Field(
        description="The cited sentence, verbatim; null when the service abstains."
    )
    short_answer: ShortAnswer | None
    message: str = Field(
        description="A sentence to show, in the question's language "
        "(the abstention message when answered is false)."
    )
    citations: list[Citation]
    passages: list[Passage]
    took_ms: float = Field(ge=0)


class Counts(BaseModel):
    # Open: a build may count more things (e.g. vocabulary words).
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Offset]
    articles: Offset
    chunks: Offset
    sentences: Offset


class EncoderInfo(Closed):
    name: str
    dim: int


class Health(Closed):
    status: Literal["ok"]
    index_loaded: bool
    build_id: str
    created_at: str | None
    counts: Counts
    encoder: EncoderInfo
    torch_loaded: bool


class ArticleSummary(Closed):
    """What /articles lists of each article; /articles/<id> adds its text and sentences."""

    id: str
    title: str
    url: str | None
    lang: str
    date: str | None = Field(description="publication date, YYYY-MM-DD")
    source: str | None = Field(description="the outlet that published it")
    author: str | None


class ArticleList(Closed):
    count: Offset
    articles: list[ArticleSummary]


class Sentence(Closed):
    index: Offset
    start: Offset
    end: Offset
    text: str = Field(description="article text[start:end]")
    heading: bool


class Article(ArticleSummary):
    text: str = Field(description="The cleaned text offsets point into.")
    sentences: list[Sentence]


class FeedbackRecord(Closed):
    id: int
    created_at: str
    question: str
    answer: str | None
    article_id: str | None
    start: int | None
    end: int | None
    vote: Vote
    build_id: str | None


class FeedbackList(Closed):
    count: Offset
    feedback: list[FeedbackRecord]


RESPONSES: tuple[type[BaseModel], ...] = (
    Error,
    Answer,
    Health,
    ArticleList,
    Article,
    FeedbackRecord,
    FeedbackList,
)
