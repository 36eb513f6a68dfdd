"""The friction items of issue 18, in a real browser: a history item opened shows its whole record
and its API call; the login throttle's wait is said on the login page; the region example shows its
photo and mask, never a blank canvas; the history's label and a landscape result leave no gaps.

One app launch (live, against its own `Simulator`) and one browser for the module; each test opens
its own context, so its own session. Every wait ends as soon as its condition holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from helpers.apphost import RunningApp, running_app
from helpers.browser import WAIT_MS, choose_size, run_edit, wait_loaded
from helpers.paths import CAT
from helpers.tags import marker
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(180)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("friction")) as launched:
        yield launched


@pytest.fixture
def open_page(browser: Browser, running: RunningApp) -> Iterator[Callable[..., Page]]:
    """Open the app in a fresh browser context (a new visitor)."""
    contexts = []

    def open_(locale: str = "en-US", viewport: dict = DESKTOP, scheme: str = "light") -> Page:
        context = browser.new_context(locale=locale, viewport=viewport, color_scheme=scheme)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(running.url)
        expect(page.locator("button#run")).to_be_enabled()
        return page

    yield open_
    for context in contexts:
        context.close()


def api_text(page: Page, elem_id: str) -> str:
    """The text of one snippet of the API panel (opened first if closed)."""
    panel = page.locator("#api-call")
    expect(panel).to_be_visible()
    if not page.locator(f"#{elem_id}").is_visible():
        panel.locator(".label-wrap").first.click()
    expect(page.locator(f"#{elem_id}")).to_be_visible()
    return page.locator(f"#{elem_id} .cm-content").inner_text()


# --- a history item opened shows its whole record and its API call ---------------------------------


def test_an_opened_history_item_shows_its_record_and_its_call(open_page):
    """After a reload (so the page holds nothing but the history), the older of two results opened
    from the history shows its instruction (markup escaped), size, model, time and order, and the
    API panel shows its call, not the other one's."""
    page = open_page()
    tag_a, tag_b = marker(), marker()
    prompt_a = f"*not bold* <b>no tag</b> [no link](http://example.com) {tag_a}"
    first = run_edit(page, prompt_a)
    second = run_edit(page, f"the second {tag_b}", image=None)
    expect(page.locator("#record")).to_contain_text(second)  # the result just made shows it too
    page.reload()
    expect(page.locator("#history img")).to_have_count(2)
    page.locator("#history img").nth(1).click()
    expect(page.locator("#result img")).to_have_attribute("src", re.compile(first))

    record = page.locator("#record")
    expect(record).to_be_visible()
    expect(record).to_contain_text(prompt_a)  # as typed: no markup made of it
    assert record.locator("b, a, em, img").count() == 0
    for word in ("Size", "Model", "Made", "Order", first):
        expect(record).to_contain_text(word)
    expect(record).not_to_contain_text(second)

    curl = api_text(page, "api-curl")
    assert tag_a in curl and tag_b not in curl
    assert "image1.png" in curl
    assert tag_a in api_text(page, "api-python") and tag_a in api_text(page, "api-gradio")


def test_the_record_is_said_in_chinese(open_page):
    page = open_page(locale="zh-CN")
    order = run_edit(page, f"中文记录 {marker()}")
    page.locator("#history img").first.click()
    expect(page.locator("#record")).to_contain_text("编辑描述")
    expect(page.locator("#record")).to_contain_text(order)


# --- the region example: never a blank canvas -----------------------------------------------------

# Counts, every animation frame, the frames in which the region editor is on screen with its canvas
# shown but not yet drawn (its Undo still off: loading 图1 is its first action) and no loading note.
BLANK_FRAMES = """(undoName) => {
    window.juheBlank = 0; window.juheShown = 0;
    const tick = () => {
        const region = document.getElementById("region");
        if (region && region.getBoundingClientRect().height > 0) {
            window.juheShown += 1;
            const canvas = region.querySelector("canvas");
            const undo = region.querySelector(`button[aria-label="${undoName}"]`);
            const drawn = undo && !undo.disabled;
            const shown = canvas && getComputedStyle(canvas).visibility !== "hidden";
            if (shown && !drawn && !region.classList.contains("juhe-loading")) window.juheBlank += 1;
        }
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""


@pytest.mark.parametrize(("locale", "undo"), [("en-US", "Undo"), ("zh-CN", "撤销")])
def test_the_region_example_never_shows_a_blank_canvas(open_page, locale, undo):
    """The note stays until the editor has drawn, and goes then, in both languages (Gradio names
    Undo in the page's language: the canvas stayed hidden for 15 s on the Chinese page)."""
    page = open_page(locale=locale)
    page.evaluate(BLANK_FRAMES, undo)
    page.get_by_text("One region").first.click()
    expect(page.locator(f"#region button[aria-label='{undo}']")).to_be_enabled()
    expect(page.locator("#region canvas").first).to_be_visible()
    expect(page.locator("#region.juhe-loading")).to_have_count(0)
    assert page.evaluate("window.juheShown") > 0
    assert page.evaluate("window.juheBlank") == 0


# --- the login throttle's wait, on Gradio's login page ---------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("login"), JUHE_ACCESS_PASSWORD="right-password") as launched:
        yield launched


@pytest.mark.parametrize(
    ("locale", "words"), [("en-US", "Too many tries: wait"), ("zh-CN", "尝试次数太多，请等待")]
)
def test_a_throttled_login_says_how_long_to_wait(browser: Browser, guarded: RunningApp, locale, words):
    """Once the throttle blocks this address, a login from the form says "too many tries, wait N s" in
    the visitor's language, where before it failed without a word."""
    context = browser.new_context(locale=locale, viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(guarded.url)
    password = page.locator("input[type=password]")
    expect(password).to_be_visible()
    for _ in range(12):  # past the limit of failed logins a minute (the browser's address is ours)
        httpx.post(f"{guarded.url}/login", data={"username": "x", "password": "wrong"}, timeout=10)
    page.locator("input[type=text]").first.fill("x")
    password.fill("wrong again")
    page.locator("button.primary").click()
    note = page.locator("#login-wait")
    expect(note).to_contain_text(words)
    assert re.search(r"\d+", note.inner_text())
    context.close()


# --- the history's label and a landscape result ----------------------------------------------------


def test_the_history_label_covers_no_thumbnail(open_page):
    page = open_page()
    run_edit(page, f"a thumbnail {marker()}")
    thumb = page.locator("#history img").first
    wait_loaded(thumb)
    label = page.locator("#history [data-testid=block-label]").first
    expect(label).to_be_visible()
    a, b = label.bounding_box(), thumb.bounding_box()
    assert a["y"] + a["height"] <= b["y"] + 1, (a, b)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_landscape_result_leaves_no_empty_band(open_page, viewport):
    page = open_page(viewport=viewport)
    page.locator("#image1 input[type=file]").set_input_files(str(CAT))
    page.locator("#prompt textarea").fill(f"wide {marker()}")
    choose_size(page, "16:9")
    page.locator("button#run").click()
    image = page.locator("#result img")
    expect(image).to_be_visible()
    wait_loaded(image)
    # the picture as drawn: the <img> box shrunk to the picture's own shape (object-fit: contain)
    drawn = image.evaluate(
        "i => { const r = i.getBoundingClientRect();"
        " return Math.min(r.height, r.width * i.naturalHeight / i.naturalWidth); }"
    )
    frame = page.locator("#result").bounding_box()
    assert frame["height"] - drawn <= 24, (drawn, frame)  # no band of empty frame around it


# --- screenshots to look at (saved under /tmp) ------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_an_opened_history_item(open_page, viewport, scheme):
    page = open_page(viewport=viewport, scheme=scheme)
    run_edit(page, f"a cat in a **hat** {marker()}")
    run_edit(page, f"the second {marker()}", image=None)
    page.locator("#history img").nth(1).click()
    expect(page.locator("#record")).to_be_visible()
    name = f"/tmp/friction-history-{'phone' if viewport is PHONE else 'desktop'}-{scheme}.png"
    page.locator("#results-panel").screenshot(path=name)
    page.screenshot(path=name.replace(".png", "-page.png"), full_page=True)
