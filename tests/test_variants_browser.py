"""Variants on the page (issue 19), in a real browser: the results grid fills as each variant
arrives, a failed variant names its code in its own tile while the others stay, and any made one
can be opened for Continue editing, Share or Download.

A live app against its own `Simulator`, whose queued faults make the first request slow and the
second fail. Every wait ends as soon as its condition holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from helpers.apphost import RunningApp, running_app
from helpers.browser import WAIT_MS
from helpers.paths import CAT
from helpers.tags import marker
from playwright.sync_api import Browser, expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.app,
    pytest.mark.loopback,
    pytest.mark.timeout(120),
]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("variants-page"), JUHE_CONCURRENCY="4") as launched:
        yield launched


WORDS = {
    "en-US": {
        "info": "Each variant is a separate billed call",
        "in": "2 of 3 variants in",
        "done": "2 of 3 variants made · 1 failed",
    },
    "zh-CN": {"info": "每个变体单独计费", "in": "已完成 2/3 个变体", "done": "2/3 个变体成功 · 1 个失败"},
}
SCREENS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize(("locale", "screen"), [("en-US", "desktop"), ("zh-CN", "phone")])
def test_three_variants_arrive_one_by_one_and_a_failure_keeps_its_place(
    browser: Browser, running, locale, screen
):
    words = WORDS[locale]
    slow_s = 4
    faults = {"next": [f"slow={slow_s}", "282504"]}  # the first call is slow, the second fails
    httpx.post(f"{running.provider.base_url}/_sim/faults", json=faults, timeout=10, trust_env=False)
    context = browser.new_context(locale=locale, viewport=SCREENS[screen])
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(running.url)
        expect(page.locator("#variants")).to_contain_text(words["info"])
        page.locator("#image1 input[type=file]").set_input_files(str(CAT))
        expect(page.locator("#image1 img")).to_be_visible()
        tag = marker()
        page.locator("#prompt textarea").fill(f"variants {tag}")
        page.locator("#variants label", has_text="3").click()
        page.locator("button#run").click()

        tiles = page.locator("#results .thumbnail-item")
        # before the slow one arrives: the fast one and the failed one are already in the grid
        expect(tiles).to_have_count(2)
        expect(page.locator("#status")).to_contain_text(words["in"])
        expect(page.locator("#result img")).to_be_visible()  # the first arrived is on show
        expect(page.locator("#results")).to_contain_text("✕ 282504")
        # then the slow one, in a third tile, and the run ends with the failure said in its place
        expect(tiles).to_have_count(3)
        expect(page.locator("#status")).to_contain_text(words["done"])
        expect(page.locator("[data-testid=toast-body]")).to_have_count(0)  # nothing covers the page
        # three calls (the simulator notes a slow answer twice: "slow", then its outcome)
        assert len([r for r in running.requests_with(tag) if r["outcome"] != "slow"]) == 3

        made = tiles.filter(has_not_text="✕")
        expect(made).to_have_count(2)
        first = page.locator("#result img").get_attribute("src")
        made.nth(1).click()  # picks the other made variant: it is the one on show now
        expect(page.locator("#result img")).not_to_have_attribute("src", first)
        chosen = page.locator("#result img").get_attribute("src")
        order = re.search(r"SIM\d{14}[0-9a-f]{6}", chosen).group(0)
        assert order in (made.nth(1).locator("img").get_attribute("src") or "")
        page.locator("button#continue").click()  # Continue editing takes the chosen one
        expect(page.locator("#image1 img")).to_have_attribute("src", re.compile(order))
        # the history keeps the set as one run: both made ones carry the set's mark
        expect(page.locator("#history")).to_contain_text("🎲×2")
    finally:
        context.close()
