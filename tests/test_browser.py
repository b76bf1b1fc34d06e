"""The chat page in headless Chromium against the real app served by waitress."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import FRIDAY, NEWS_QUESTION, NEWS_WHEN, build_news
from waitress import create_server, wasyncore

from qa import indexing
from qa.pipeline import QAEngine
from qa.settings import Settings
from web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000

# An article whose title and text carry markup: shown as text, never run.
MARKUP_RECORD = {
    "id": "tarte-markup",
    "title": "La tarte <script>window.__xss=1</script> aux pommes",
    "lang": "fr",
    "text": 'La tarte aux pommes <img src=x onerror="window.__xss=1"> cuit quarante minutes '
    "au four.\n\nIl faut six pommes, du sucre et une pâte brisée.",
}


@pytest.fixture(scope="module")
def server_url(
    index_dir: Path, engine: QAEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app over the seed index plus the markup article, on a free loopback port."""
    folder = tmp_path_factory.mktemp("browser-server")
    index = folder / "index"
    shutil.copytree(index_dir, index, symlinks=True)
    settings = Settings(index_dir=str(index))
    record = folder / "tarte.json"
    record.write_text(json.dumps(MARKUP_RECORD), encoding="utf-8")
    indexing.add([record], index, engine.encoder, settings)
    app = create_app(
        {
            "ENGINE": QAEngine(index, engine.encoder, settings),
            "FEEDBACK_DB": folder / "feedback.sqlite3",
            "ADMIN_TOKEN": "browser-admin",
        }
    )
    yield from serve_in_thread(app, "waitress")


def serve_in_thread(app: Any, name: str) -> Iterator[str]:
    """`app` served by waitress on a free local port in a thread, until closed."""
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        # Closing every channel empties the loop's map, which ends server.run().
        wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium (make test does)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        # Playwright refuses --user-data-dir in args: a persistent context takes it.
        ctx = p.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 900, "height": 900},
            locale="fr-FR",
        )
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            yield ctx
        finally:
            ctx.close()


def chat_page(context: Any, url: str) -> Iterator[Any]:
    """A fresh chat page at `url`; fails the test on any script error or CSP violation."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url + "/")
    yield page
    page.close()
    assert not errors, errors


@pytest.fixture
def page(context: Any, server_url: str) -> Iterator[Any]:
    yield from chat_page(context, server_url)


def ask(page: Any, question: str) -> Any:
    """Type a question, press Enter and return the answer bubble that replaces the waiting one."""
    before = page.locator("#log .turn").count()
    box = page.locator("#question")
    box.fill(question)
    box.press("Enter")
    turn = page.locator("#log .turn").nth(before)
    answer = turn.locator(".bubble.answer:not(.pending)")
    answer.wait_for()
    return answer


def test_french_question(page: Any, server_url: str, tmp_path: Path) -> None:
    # Record the waiting bubble as it appears: the answer replaces it within milliseconds.
    page.evaluate(
        """() => {
        window.__waiting = [];
        new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) => {
          const p = n.querySelector && n.querySelector('.pending');
          if (p) window.__waiting.push(p.textContent);
        }))).observe(document.getElementById('log'), {childList: true, subtree: true});
    }"""
    )
    answer = ask(page, "Où se retrouvent les ministres ?")
    assert page.evaluate("window.__waiting") == ["Recherche…"]
    assert answer.get_attribute("lang") == "fr"
    mark = answer.locator("blockquote.passage mark.cited")
    assert "ministère français de la Défense" in mark.inner_text()
    # The mark sits inside the longer passage around it.
    assert len(answer.locator("blockquote.passage").inner_text()) > len(mark.inner_text())
    assert "Source :" in answer.locator(".source").inner_text()
    assert answer.locator(".vote-up").get_attribute("aria-label") == "Réponse utile"

    answer.locator(".vote-up").click()
    page.wait_for_function(
        "() => document.querySelector('.feedback-status').textContent.length > 0"
    )
    assert answer.locator(".feedback-status").inner_text() == "Merci pour votre avis."
    page.screenshot(path=str(tmp_path / "chat-fr.png"), full_page=True)
    listing = urllib.request.Request(
        server_url + "/feedback", headers={"Authorization": "Bearer browser-admin"}
    )
    with urllib.request.urlopen(listing) as response:
        stored = json.load(response)["feedback"]
    assert stored[0]["vote"] == "up"
    assert "ministère français de la Défense" in stored[0]["answer"]


def test_english_question(page: Any, tmp_path: Path) -> None:
    answer = ask(page, "Who is the American secretary of defense?")
    assert answer.get_attribute("lang") == "en"
    assert "Source:" in answer.locator(".source").inner_text()
    assert answer.locator(".vote-up").get_attribute("aria-label") == "Helpful answer"
    assert answer.locator(".message").inner_text().startswith("According to")
    cited = answer.locator("mark.cited").inner_text()
    others = " ".join(answer.locator(".other-sentence").all_inner_texts())
    assert "Ashton Carter" in cited + others
    if answer.locator(".short").count():
        assert "Short answer" in answer.locator(".short").inner_text()
    page.screenshot(path=str(tmp_path / "chat-en.png"), full_page=True)


@pytest.mark.parametrize(
    "question", ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=1</script>"]
)
def test_markup_in_question_is_text(page: Any, question: str) -> None:
    ask(page, question)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#log .bubble.question").last.inner_text() == question
    assert page.locator("#log img, #log script").count() == 0


def test_markup_in_article_is_text(page: Any, tmp_path: Path) -> None:
    answer = ask(page, "Combien de temps cuit la tarte aux pommes ?")
    assert answer.get_attribute("data-answered") == "true"
    assert '<img src=x onerror="window.__xss=1">' in answer.locator("mark.cited").inner_text()
    link = answer.locator(".source a.article-link")
    assert link.inner_text() == MARKUP_RECORD["title"]
    assert page.locator("#log img, #log script").count() == 0
    link.click()
    page.wait_for_url("**/view/**")
    assert page.locator("h1").inner_text() == MARKUP_RECORD["title"]
    assert page.locator("article img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.screenshot(path=str(tmp_path / "view-markup.png"))


def test_abstention(page: Any) -> None:
    answer = ask(page, "Quelle est la population de Lyon ?")
    assert answer.get_attribute("data-answered") == "false"
    assert "abstain" in (answer.get_attribute("class") or "")
    assert "Je ne trouve pas la réponse" in answer.inner_text()
    assert answer.locator("mark").count() == 0


def test_article_link_highlights_the_sentence(page: Any, tmp_path: Path) -> None:
    answer = ask(page, "Où se retrouvent les ministres ?")
    sentence = answer.locator("mark.cited").inner_text()
    answer.locator(".source a.article-link").click()
    page.wait_for_url("**/view/**")
    mark = page.locator("mark#cited")
    assert "ministère français de la Défense" in mark.inner_text()
    assert " ".join(page.locator("mark.cited").all_inner_texts()).split() == sentence.split()
    mark.wait_for(state="visible")
    # Scrolled into view: the highlight is inside the viewport.
    box = mark.bounding_box()
    height = page.evaluate("window.innerHeight")
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height
    page.screenshot(path=str(tmp_path / "view.png"))


# ---------------------------------------------------------------- dated news, articles page, axe

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def news_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app over the dated story of tests/helpers.py (Le Drian in Le Monde on
    22 January 2016, Lecornu in Libération on 15 March 2024, two more)."""
    engine = build_news(tmp_path_factory.mktemp("browser-news"), FRIDAY, "2024-03-15")
    app = create_app({"ENGINE": engine, "FEEDBACK_DB": engine.index_dir.parent / "fb.sqlite3"})
    yield from serve_in_thread(app, "waitress-news")


@pytest.fixture
def news_page(context: Any, news_url: str) -> Iterator[Any]:
    """A fresh chat page on the dated news."""
    yield from chat_page(context, news_url)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """What axe-core (node_modules, installed by make test from package.json)
    finds wrong on the page as it stands. Evaluated through DevTools, which the
    page's script-src 'self' does not stop."""
    if not AXE.exists():
        pytest.skip(f"{AXE} is absent: npm install (make test does)")
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document)).violations.map((v) => ({
            id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")),
        }))"""
    )
    return found


def test_citations_show_their_outlet_and_date(news_page: Any, tmp_path: Path) -> None:
    answer = ask(news_page, NEWS_QUESTION)
    # The same sentence in both: the newer article's comes first.
    source = answer.locator(".source").inner_text()
    assert "Libération" in source and "15 mars 2024" in source, source
    assert answer.locator(".source time").get_attribute("datetime") == "2024-03-15"
    answer.locator(".others summary").click()
    others = answer.locator(".others").inner_text()
    assert "Le Monde, 22 janvier 2016" in others, others
    news_page.screenshot(path=str(tmp_path / "chat-dates.png"), full_page=True)


def test_a_relative_date_is_shown_resolved(news_page: Any) -> None:
    answer = ask(news_page, NEWS_WHEN)
    short = answer.locator(".short").inner_text()
    # Lecornu's article, published Friday 15 March 2024: "mercredi" is the 13th.
    assert short == "Réponse courte : mercredi (13 mars 2024)", short


def test_the_articles_page_lists_newest_first_and_filters(
    context: Any, news_url: str, tmp_path: Path
) -> None:
    page = context.new_page()
    page.goto(news_url + "/articles")
    assert page.locator("h1").inner_text() == "Articles indexés"
    assert page.locator("#article-count").inner_text() == "4 articles indexés"
    rows = page.locator("#articles tbody tr")
    dates = [rows.nth(i).locator("td").nth(2).inner_text() for i in range(rows.count())]
    assert dates == ["15 mars 2024", "1 juin 2020", "22 janvier 2016", "—"]
    box = page.locator("#article-filter")
    box.fill("le monde")
    assert page.locator("#articles tbody tr:visible").count() == 1
    assert "Le Monde" in page.locator("#articles tbody tr:visible").inner_text()
    box.fill("2024-03")  # the date as written in the data finds it too
    assert page.locator("#articles tbody tr:visible td").nth(1).inner_text() == "Libération"
    box.fill("liberation")  # accents and case aside
    assert page.locator("#articles tbody tr:visible").count() == 1
    box.fill("nulle part")
    assert page.locator("#articles tbody tr:visible").count() == 0
    assert page.locator("#no-match").is_visible()
    box.fill("")
    assert page.locator("#articles tbody tr:visible").count() == 4
    page.screenshot(path=str(tmp_path / "articles.png"), full_page=True)
    page.locator("#articles a").first.click()
    page.wait_for_url("**/view/**")
    assert "Libération · 15 mars 2024" in page.locator(".meta").inner_text()
    page.close()


def test_the_chat_has_no_accessibility_violation(news_page: Any) -> None:
    ask(news_page, NEWS_QUESTION)  # an answer, its citations and its vote buttons
    assert axe_violations(news_page) == []


def test_the_articles_page_has_no_accessibility_violation(context: Any, news_url: str) -> None:
    page = context.new_page()
    page.goto(news_url + "/articles")
    assert axe_violations(page) == []
    page.close()
