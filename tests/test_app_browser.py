"""The app in a real browser: Debian's chromium driven by Playwright against `app.py` in this process.

One app launch and one browser for the module; each test opens its own page (its own session). The
app runs live against a separate `Simulator`, so the tests can count what reached the "provider".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}", allow_module_level=True)

from apphost import CAT, SERVER_KEY, RunningApp, running_app  # noqa: E402
from conftest import marker  # noqa: E402
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

from juhe.simulator import key_fingerprint  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
WAIT_MS = 20_000  # generous for 2 slow cores; every wait ends as soon as its condition holds
ORDER_ID = re.compile(r"SIM\d{14}[0-9a-f]{6}")
IMAGE_LOADED = "img => img.complete && img.naturalWidth > 0"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("browser")) as launched:
        yield launched


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser, running: RunningApp) -> Iterator[Callable[[str], Page]]:
    """Open the app in a fresh page (a new session) with the given browser locale."""
    pages: list[Page] = []

    def open_(locale: str = "en-US") -> Page:
        page = browser.new_page(locale=locale)
        page.set_default_timeout(WAIT_MS)
        pages.append(page)
        page.goto(running.url)
        expect(page.locator("button#run")).to_be_enabled()
        return page

    yield open_
    for page in pages:
        page.close()


def fill_form(page: Page, prompt: str) -> None:
    page.locator("#image1 input[type=file]").set_input_files(str(CAT))
    expect(page.locator("#image1 img")).to_be_visible()
    page.locator("#prompt textarea").fill(prompt)


def wait_loaded(image: Locator) -> None:
    image.page.wait_for_function(IMAGE_LOADED, arg=image.element_handle(), timeout=WAIT_MS)


def run_edit(page: Page, prompt: str) -> str:
    """Fill the form, press the button and wait for the result; return the order id shown."""
    fill_form(page, prompt)
    page.locator("button#run").click()
    status = page.locator("#status")
    expect(status).to_contain_text(ORDER_ID, timeout=WAIT_MS)
    shown = set(ORDER_ID.findall(status.inner_text()))  # named as the order and in the file name
    assert len(shown) == 1
    return shown.pop()


def test_edit_shows_the_result_and_its_order(open_page, running: RunningApp):
    page = open_page()
    tag = marker()
    prompt = f"replace the cat with a dog {tag}"
    order_id = run_edit(page, prompt)

    result = page.locator("#results img").first
    expect(result).to_be_visible()
    wait_loaded(result)
    assert order_id in result.get_attribute("src")
    assert running.sidecar(order_id)["prompt"] == prompt
    expect(page.locator("#status")).to_contain_text("Done")
    [sent] = running.requests_with(tag)
    assert sent["key"] == key_fingerprint(SERVER_KEY)


def test_error_shows_a_toast_and_keeps_the_history(open_page):
    page = open_page()
    first = f"first edit {marker()}"
    order_id = run_edit(page, first)
    history = page.locator("#history img").first
    wait_loaded(history)

    page.locator("#prompt textarea").fill(f"not allowed [sim:282504] {marker()}")
    page.locator("button#run").click()
    toast = page.locator("[data-testid=toast-body]")
    expect(toast).to_contain_text("282504")
    expect(toast).to_contain_text("包含敏感词")
    expect(toast).to_contain_text("flagged as sensitive")

    expect(page.locator("#history img")).to_have_count(1)
    wait_loaded(page.locator("#history img").first)
    assert order_id in page.locator("#history img").first.get_attribute("src")
    expect(page.locator("#history")).to_contain_text(first)


def test_double_click_starts_one_call(open_page, running: RunningApp):
    page = open_page()
    tag = marker()
    fill_form(page, f"double click {tag} [sim:slow=1]")  # the call lasts 1 s, long enough to click twice
    page.locator("button#run").dblclick()
    expect(page.locator("#status")).to_contain_text(ORDER_ID, timeout=WAIT_MS)
    # A "slow" request is recorded on arrival and again when answered; a second call, started a few
    # milliseconds after the first, would have arrived long before the first one was answered.
    outcomes = sorted(r["outcome"] for r in running.requests_with(tag))
    assert outcomes == ["ok", "slow"]


def test_chinese_interface(open_page):
    page = open_page("zh-CN")
    expect(page.locator("button#run")).to_contain_text("开始编辑")
    expect(page.get_by_text("编辑描述", exact=True)).to_be_visible()
    expect(page.locator("#mode-banner")).to_contain_text("在线")
    run_edit(page, f"把小猫换成小狗 {marker()}")
    expect(page.locator("#status")).to_contain_text("完成")
    expect(page.locator("#status")).to_contain_text("订单")


def test_english_interface(open_page):
    page = open_page("en-US")
    expect(page.locator("button#run")).to_contain_text("Edit image")
    expect(page.get_by_text("Instruction", exact=True)).to_be_visible()
    expect(page.get_by_text("编辑描述", exact=True)).to_have_count(0)


def test_prompt_counter_follows_typing(open_page):
    page = open_page()
    counter = page.locator("#prompt-count")
    box = page.locator("#prompt textarea")
    expect(counter).to_have_text("0 / 800")
    box.press_sequentially("hello")
    expect(counter).to_have_text("5 / 800")
    box.press_sequentially(" 世界")
    expect(counter).to_have_text("8 / 800")
    box.fill("x" * 801)
    expect(counter).to_contain_text("801 / 800")
    expect(counter).to_contain_text("cut off")
    expect(counter.locator(".over")).to_be_visible()
    box.fill("")
    expect(counter).to_have_text("0 / 800")


def test_visitor_key_is_sent_but_not_kept_in_the_browser(open_page, running: RunningApp):
    page = open_page()
    visitor_key = "visitor-key-" + uuid.uuid4().hex
    page.get_by_text("Advanced: image links").click()
    page.locator("#api-key input").fill(visitor_key)
    tag = marker()
    run_edit(page, f"with my own key {tag}")
    [sent] = running.requests_with(tag)
    assert sent["key"] == key_fingerprint(visitor_key)

    stored = page.evaluate("() => JSON.stringify(Object.assign({}, localStorage, sessionStorage))")
    assert visitor_key not in stored
    assert visitor_key not in page.locator("#status").inner_text()
