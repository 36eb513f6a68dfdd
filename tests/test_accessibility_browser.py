"""Accessible to everyone (issue 18), in a real browser: axe-core finds no serious or critical
WCAG 2.1 A/AA violation on the page, in both themes and both languages, on the first screen, with
the region editor open, after an edit (the history shown, one of its results opened) and on the
share page; and the whole edit path works by keyboard alone.

axe-core comes with the PyPI package `axe-playwright-python` (its bundled axe.min.js, axe 4.12), so
`pip install -r requirements-dev.txt` is all it needs. It is evaluated in the page rather than added
as a <script>: the share page's Content-Security-Policy refuses inline scripts, rightly.

One offline app for the module; each case opens its own browser context (its own session).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import axe_playwright_python
import pytest
from helpers.apphost import RunningApp, running_app
from helpers.browser import ORDER_ID, WAIT_MS
from helpers.paths import CAT
from helpers.tags import marker
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(180)]

AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    # WCAG 2.5.3 (label in name) is still "experimental" in axe, so off unless asked for; the issue
    # counted it (the upload areas' names left out their visible text), so it is asked for.
    "rules": {"label-content-name-mismatch": {"enabled": True}},
}
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("a11y"), live=False, JUHE_SIM_LATENCY="0.1") as launched:
        yield launched


def settled(page: Page) -> None:
    """No event pending and no transition running (Gradio dims an output to 20 % while its event runs
    and fades it back: a moment's loading state, measured at its steady colours instead), then two
    animation frames: app.js names things once per frame after Gradio draws them."""
    page.wait_for_function(
        """() => !document.querySelector('.pending') && document.getAnimations().every(
            a => !(a instanceof CSSTransition) || a.playState !== 'running')"""
    )
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def axe_problems(page: Page, view: str) -> list[str]:
    """Run axe on `page`; print every violation, return the serious and critical ones, one line each
    per element."""
    settled(page)
    if not page.evaluate("() => !!window.axe"):
        page.evaluate(AXE + "\n;0")
    result = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    problems = []
    for violation in result["violations"]:
        for node in violation["nodes"]:
            where = f"{violation['impact']} {violation['id']} at {node['target']}"
            line = f"{view}: {where}: {node['failureSummary']}"
            print(line.replace("\n", " "))
            if violation["impact"] in BLOCKING:
                problems.append(line)
    return problems


def open_page(browser: Browser, running: RunningApp, theme: str, language: str, how: str) -> Page:
    """The page in `theme` (Gradio's ?__theme=) and `language`, by the browser's locale ("locale")
    or by the page's own switch from a browser in the other language ("switch")."""
    locale = {"en": "en-US", "zh": "zh-CN"}[language]
    if how == "switch":
        locale = {"en": "zh-CN", "zh": "en-US"}[language]
    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 900}, color_scheme=theme)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{running.url}/?__theme={theme}")
    expect(page.locator("button#run")).to_be_enabled()
    if how == "switch":
        page.locator("button#language").click()
    expect(page.locator("button#run")).to_contain_text("开始编辑" if language == "zh" else "Edit image")
    dark = page.evaluate("() => document.body.classList.contains('dark')")
    assert dark == (theme == "dark"), f"asked for {theme}, the page is {'dark' if dark else 'light'}"
    return page


@pytest.mark.parametrize(
    ("theme", "language", "how"),
    [
        ("light", "en", "locale"),
        ("light", "zh", "locale"),
        ("dark", "zh", "switch"),
        ("dark", "en", "switch"),
    ],
)
def test_axe_finds_no_serious_violation(browser: Browser, running: RunningApp, theme, language, how):
    page = open_page(browser, running, theme, language, how)
    tag = f"{theme}/{language}"
    problems = axe_problems(page, f"{tag} first screen")

    page.locator("#image1 input[type=file]").set_input_files(str(CAT))
    expect(page.locator("#image1 img")).to_be_visible()
    page.locator("#paint").click()
    expect(page.locator("#region canvas").first).to_be_visible()
    problems += axe_problems(page, f"{tag} region editor")
    page.locator("#paint-done").click()
    expect(page.locator("#region-panel")).to_be_hidden()

    page.locator("#prompt textarea").fill(f"a dog {marker()}")
    page.locator("button#run").click()
    expect(page.locator("#status")).to_contain_text(ORDER_ID)
    expect(page.locator("#result img")).to_be_visible()
    expect(page.locator("#history img").first).to_be_visible()
    problems += axe_problems(page, f"{tag} after an edit")

    page.locator("#history button.thumbnail-item").first.click()
    expect(page.locator("#result img")).to_be_visible()
    expect(page.locator("#record")).to_contain_text(ORDER_ID)  # the item is open: its record is shown
    page.locator("#share").click()
    share_link = page.locator("#share-link textarea, #share-link input").first
    expect(share_link).to_have_value(re.compile("/share/"))
    problems += axe_problems(page, f"{tag} a result opened from the history, its share link shown")

    shared = page.context.new_page()
    shared.goto(share_link.input_value())
    expect(shared.locator("img").first).to_be_visible()
    problems += axe_problems(shared, f"{tag} share page")
    page.context.close()
    assert not problems, "\n".join(problems)


def focused(page: Page) -> dict:
    """Where the keyboard focus is: the element's tag and accessible-name attribute, and the id of the
    nearest block with one (Gradio puts elem_id on the block)."""
    return page.evaluate(
        """() => { const e = document.activeElement;
        return {tag: e.tagName, id: e.id, block: e.closest('[id]')?.id || '',
                label: e.getAttribute('aria-label') || ''}; }"""
    )


def tab_until(page: Page, wanted, limit: int = 40) -> list[dict]:
    """Press Tab until `wanted(focus)` holds; return every stop on the way, the last one included."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stops.append(focused(page))
        if wanted(stops[-1]):
            return stops
    raise AssertionError(f"Tab never got there; it went through {stops}")


def test_the_whole_edit_path_works_by_keyboard(browser: Browser, running: RunningApp):
    """Only key presses: Tab to 图1's upload area, Enter opens the file chooser (the file is the one
    thing Playwright sets, as a person would pick it), Tab to the instruction, type, Ctrl+Enter; then
    Tab reaches the result and its actions, and Enter on Share and on Delete does what they say."""
    context = browser.new_context(locale="en-US", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    # Playwright starts intercepting file choosers when the first listener is added, and a chooser
    # opened before that is in place is lost: listen from the start (measured: a first Enter's
    # chooser was missed without this)
    page.on("filechooser", lambda chooser: None)
    page.goto(running.url)
    expect(page.locator("button#run")).to_be_enabled()

    upload = tab_until(page, lambda f: f["block"] == "image1" and "Upload" in f["label"])[-1]
    assert upload["label"].startswith("Drop Image Here"), upload  # its name says what it shows
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(CAT))
    expect(page.locator("#image1 img")).to_be_visible()

    tab_until(page, lambda f: f["block"] == "prompt" and f["tag"] == "TEXTAREA")
    prompt = f"a dog {marker()}"
    page.keyboard.type(prompt)
    expect(page.locator("#prompt textarea")).to_have_value(prompt)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text(ORDER_ID)
    expect(page.locator("#result img")).to_be_visible()

    stops = tab_until(page, lambda f: f["id"] == "share")
    reached = [f["block"] for f in stops]
    assert "result" in reached, stops  # the result's own buttons (full screen, download)
    assert reached.index("result") < reached.index("continue"), stops
    page.keyboard.press("Enter")
    expect(page.locator("#share-link textarea")).to_have_value(re.compile("/share/"))

    tab_until(page, lambda f: f["id"] == "delete", limit=3)
    page.once("dialog", lambda dialog: dialog.accept())  # "Delete this result?" answered yes
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("Deleted")
    expect(page.locator("#result")).to_have_count(0)
    context.close()
