"""Shared fixtures: the seed index (built once per session with the real
encoder), an engine over it, and the web app with its test client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

# The checkout's packages, even when the project is not pip-installed (pytest
# run straight from a venv); harmless when it is.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest
from flask import Flask
from flask.testing import FlaskClient

from qa import indexing
from qa.embed import load_encoder
from qa.pipeline import QAEngine
from qa.settings import Settings
from web import create_app

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
ADMIN_TOKEN = "test-admin-token"


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed corpus indexed with the default encoder. Read-only: copy it to change it."""
    folder = tmp_path_factory.mktemp("seed-index")
    settings = Settings(index_dir=str(folder))
    indexing.build(CORPUS, folder, load_encoder(settings.model), settings, None)
    return folder


@pytest.fixture(scope="session")
def engine(index_dir: Path) -> QAEngine:
    return QAEngine.load(Settings(index_dir=str(index_dir)))


@pytest.fixture
def app(engine: QAEngine, tmp_path: Path) -> Flask:
    """The web app over the shared engine, with its own feedback file."""
    return create_app(
        {
            "ENGINE": engine,
            "FEEDBACK_DB": tmp_path / "feedback.sqlite3",
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "TESTING": True,
        }
    )


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    """A client that sends the admin token (GET /feedback needs it)."""
    with app.test_client() as c:
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
        yield c
