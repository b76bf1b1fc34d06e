"""The README documents every setting, every script and every endpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa.settings import describe
from web import create_app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize(("name", "env", "default", "help"), describe())
def test_every_setting_is_documented(name: str, env: str, default: object, help: str) -> None:
    assert f"`{env}`" in README


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_is_documented(script: str) -> None:
    assert f"scripts/{script}" in README


def test_every_endpoint_is_documented(engine, tmp_path: Path) -> None:
    app = create_app({"ENGINE": engine, "FEEDBACK_DB": tmp_path / "f.sqlite3"})
    documented = {
        re.sub(r"<[^>]+>", "<id>", p) for p in re.findall(r"`(?:GET|POST) (/[^` ?]*)", README)
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<[^>]+>", "<id>", rule.rule)
        assert path in documented, f"{path} is not in the README's endpoint table"


def test_readme_shows_the_two_setup_commands() -> None:
    assert "make run" in README and "make test" in README
