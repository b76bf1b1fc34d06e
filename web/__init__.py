"""The web service: a JSON API, a chat page and Prometheus metrics over one QAEngine.

    app = create_app()                                   # settings from QA_* env vars
    app = create_app({"INDEX_DIR": "/tmp/idx"})          # any Settings field, upper-cased
    app = create_app({"ENGINE": engine, "FEEDBACK_DB": path, "TESTING": True})

Config keys besides Flask's own:
  SETTINGS      the resolved `qa.settings.Settings` (env vars, then upper-cased overrides)
  ENGINE        a ready QAEngine to serve (tests share one); else one is loaded from SETTINGS
  FEEDBACK_DB   SQLite file for /feedback; default settings.feedback_db ($QA_FEEDBACK_DB), else
                `<index_dir>/../feedback.sqlite3`

The web settings (feedback limits, admin token, allowed hosts) are those
requested (env vars and overrides); the engine keeps its own.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from flask import Flask, Response

from qa.pipeline import QAEngine
from qa.settings import Settings

from . import feedback, hosts
from .feedback import FeedbackStore

# Pages load only their own script and style: even if data ever reached the DOM
# as markup, inline handlers and injected scripts would not run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The Flask app; loads the engine once (raises `QAError` if the index is unusable)."""
    config = dict(config or {})
    app = Flask(__name__)
    settings = requested = _settings(config)
    engine = config.pop("ENGINE", None)
    if engine is None:
        engine = QAEngine.load(settings)
    else:
        # Serve what the engine actually reads, whatever INDEX_DIR said.
        settings = engine.settings
    feedback_db = (
        config.pop("FEEDBACK_DB", None)
        or requested.feedback_db
        or (Path(settings.index_dir).absolute().parent / "feedback.sqlite3")
    )
    app.config.from_mapping(
        SETTINGS=settings,
        FEEDBACK_DB=str(feedback_db),
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
    )
    app.config.from_mapping(config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # French text stays readable
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the contract's field order

    app.extensions["qa_engine"] = engine

    from . import api, metrics, pages

    # GET /metrics, request ids, timing and the access log (web/metrics.py); first,
    # so its timer starts before any other hook can refuse the request.
    metrics.init_app(app)
    # The Host header (web/hosts.py); the address bound is a host served.
    hosts.init_app(app, requested, settings.host)
    feedback.init_app(app, requested)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    api.register_error_handlers(app)
    app.after_request(_security_headers)
    return app


def _settings(config: dict[str, Any]) -> Settings:
    """`Settings.from_env()` with config keys named like its fields, upper-cased."""
    given = config.pop("SETTINGS", None)
    if isinstance(given, Settings):
        return given
    overrides = {}
    for f in fields(Settings):
        key = f.name.upper()
        if key in config:
            overrides[f.name] = config.pop(key)
    return Settings.from_env(**overrides)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def engine_of(app: Flask) -> QAEngine:
    engine: QAEngine = app.extensions["qa_engine"]
    return engine


def feedback_of(app: Flask) -> FeedbackStore:
    store: FeedbackStore = app.extensions["qa_feedback"]
    return store
