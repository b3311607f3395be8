"""The web page in a real browser (Debian's chromium through Playwright; never a downloaded one).

Skips when /usr/bin/chromium is absent, except under CI (CI installs it: .ci/services.sh).
Screenshots go to $WHYREC_TEST_ARTIFACTS if set, else to pytest's tmp dir.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
EVIL_TITLE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> Evil (2024)'


def _require_browser() -> Any:
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is not installed"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the playwright package is not installed"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run under CI: {problem}")
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("WHYREC_TEST_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(base URL, a run user, the item whose title carries markup) on a live uvicorn server."""
    sync_playwright = _require_browser()  # noqa: F841 - fail or skip before any work
    from whyrec.data import ItemCatalog
    from whyrec.service import EventStore, create_app
    from whyrec.service.testing import build_tiny_run, running_server
    from whyrec.training.recommender import Recommender

    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHYREC_CACHE", str(base / "cache"))
        rec = Recommender.load(build_tiny_run(base / "tiny-run"))
    users = sorted(rec.histories, key=lambda u: (len(rec.histories[u]), u))
    user = next(u for u in users if len(rec.histories[u]) >= 20)
    evil = rec.recommend(user, k=3)[2].item_id  # a recommended item whose title is markup
    rec.catalog = replace(rec.catalog, titles={**rec.catalog.titles, evil: EVIL_TITLE})
    assert isinstance(rec.catalog, ItemCatalog)
    store = EventStore(f"sqlite:///{tmp_path_factory.mktemp('db') / 'events.db'}")
    with running_server(create_app(rec, store)) as url:
        yield url, user, evil
    store.close()


@pytest.fixture(scope="module")
def browser(site: tuple[str, str, str]) -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def test_why_panel_and_not_interested_replaces_the_card(browser: Any, site: tuple[str, str, str],
                                                        artifacts: Path) -> None:  # fmt: skip
    url, user, evil = site
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/?user={user}")
    cards = page.locator("#cards .card")
    cards.first.wait_for()
    assert cards.count() == 10

    # the Why panel: sentence, evidence bars, counterfactual
    first = cards.first
    first.locator(".why-btn").click()
    panel = first.locator(".why-panel")
    panel.locator(".why-sentence").wait_for()
    assert panel.locator(".evidence-row svg rect").count() >= 1
    assert panel.locator(".counterfactual").inner_text()
    page.screenshot(path=str(artifacts / "why-panel.png"), full_page=True)

    # not interested: the card goes and new ones fill in; most others stay (close neighbours of the
    # rejected item are pushed down too)
    gone = first.get_attribute("data-item-id")
    others = [c.get_attribute("data-item-id") for c in cards.all()[1:]]
    first.locator(".not-interested-btn").click()
    page.wait_for_selector(f'#cards .card[data-item-id="{gone}"]', state="detached")
    expect(page.locator("#cards .card")).to_have_count(10)  # no eval: the page's CSP forbids it
    now = [c.get_attribute("data-item-id") for c in cards.all()]
    assert gone not in now and len(set(others) & set(now)) >= 5
    page.screenshot(path=str(artifacts / "after-not-interested.png"), full_page=True)

    # item text is text: the markup in a title shows literally and never runs
    evil_card = page.locator(f'#cards .card[data-item-id="{evil}"]')
    assert EVIL_TITLE in evil_card.locator(".title").inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.locator("#cards img, #cards script").count() == 0
    assert errors == []
    page.close()


def test_ask_box_and_new_user_flow(browser: Any, site: tuple[str, str, str], artifacts: Path) -> None:
    url, user, _ = site
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{url}/?user={user}")
    page.locator("#cards .card").first.wait_for()
    page.fill("#ask-input", "What are my interests?")
    page.click("#ask-form button[type=submit]")
    page.wait_for_selector("#answer .answer-text")
    assert page.inner_text("#answer .answer-text").startswith("Your interests:")
    assert page.locator("#interests-chart svg").count() >= 1

    # a brand-new visitor: nothing yet, then three likes from search, then recommendations
    page.click("#new-user")
    page.wait_for_selector("#cards p.muted")
    page.fill("#search-input", "star wars")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#search-results li")
    for _ in range(3):
        count = page.locator("#history li.event").count()
        page.locator("#search-results li .like-btn").first.click()
        expect(page.locator("#history li.event")).to_have_count(count + 1)
        page.locator("#search-results li").first.evaluate("node => node.remove()")
    expect(page.locator("#cards .card")).to_have_count(10)  # no eval: the page's CSP forbids it
    page.screenshot(path=str(artifacts / "new-user.png"), full_page=True)
    page.close()


def test_grouped_reasons_and_interest_timeline(
    browser: Any, site: tuple[str, str, str], artifacts: Path
) -> None:
    url, user, _ = site
    for lang in ("en", "zh"):
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(f"{url}/?user={user}&lang={lang}")
        page.locator("#cards .reason-group .card").first.wait_for()
        assert page.locator("#cards .card").count() == 10
        assert page.locator("#cards .group-reason").count() >= 1  # a shared reason, said once
        page.locator("#timeline-chart svg polygon").first.wait_for()
        assert page.inner_text("#timeline-chart .legend")
        if lang == "zh":  # the chart's own words are Chinese
            assert re.search(r"[\u4e00-\u9fff]", page.inner_text("#timeline-chart"))
        page.screenshot(path=str(artifacts / f"grouped-reasons-{lang}.png"), full_page=True)
        page.close()
