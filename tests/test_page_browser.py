"""The page a stakeholder sees (issue 18), in a real browser: a failure never covers what is on show,
progress and failures are said once, in the status line, toasts do not pile up and come in the
visitor's language first, and the phone layout keeps badges and the footer readable.

One app launch (live, against its own `Simulator`) and one browser for the module; each test opens
its own page, so its own session. Every wait ends as soon as its condition holds.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.apphost import RunningApp, running_app
from helpers.browser import JOURNAL, WAIT_MS, wait_done
from helpers.paths import CAT
from helpers.tags import marker
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("page")) as launched:
        yield launched


@pytest.fixture
def open_page(browser: Browser, running: RunningApp) -> Iterator[Callable[..., Page]]:
    """Open the app in a fresh browser context (a new visitor) with the given locale and size."""
    contexts = []

    def open_(locale: str = "en-US", width: int = 1366, height: int = 900) -> Page:
        context = browser.new_context(
            locale=locale, viewport={"width": width, "height": height}, color_scheme="light"
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(running.url)
        expect(page.locator("button#run")).to_be_enabled()
        return page

    yield open_
    for context in contexts:
        context.close()


def put_image1(page: Page, image: Path = CAT) -> None:
    page.locator("#image1 input[type=file]").set_input_files(str(image))
    expect(page.locator("#image1 img")).to_be_visible()


def show_a_result(page: Page) -> str:
    """Make one edit and wait until its result is on show; return its order id."""
    put_image1(page)
    page.locator("#prompt textarea").fill(f"first {marker()}")
    page.locator("button#run").click()
    order = wait_done(page)
    expect(page.locator("#result img")).to_have_attribute("src", re.compile(order))
    return order


def visible_count(locator: Locator) -> int:
    """How many of `locator` a person can see: a box, and neither it nor an ancestor hidden or fully
    transparent (Playwright's own visibility counts an element at opacity 0)."""
    return locator.evaluate_all(
        """els => els.filter(el => {
            const r = el.getBoundingClientRect();
            if (!r.width || !r.height) return false;
            for (let e = el; e; e = e.parentElement) {
                const s = getComputedStyle(e);
                const gone = s.display === 'none' || s.visibility === 'hidden';
                if (gone || Number(s.opacity) === 0) return false;
            }
            return true;
        }).length"""
    )


def covered(page: Page, target: Locator) -> str | None:
    """What covers the middle of `target` (None when it is itself on top there)."""
    return target.evaluate(
        """el => { const r = el.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        if (top && (top === el || el.contains(top))) return null;
        return top ? top.outerHTML.slice(0, 200) : 'nothing'; }"""
    )


def overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


# --- defects ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["provider", "empty-image1"])
def test_a_failure_after_a_result_leaves_it_visible(open_page, failure):
    """Defect 1: the result and the status line stay readable; the failure is said in the status
    line and one toast; no "Error" overlay to dismiss."""
    page = open_page()
    order = show_a_result(page)
    if failure == "provider":
        page.locator("#prompt textarea").fill(f"not allowed [sim:282504] {marker()}")
        reason = "content flagged as sensitive"
    else:
        page.locator("#image1 button[aria-label='Remove Image']").click()
        expect(page.locator("#image1 img")).to_have_count(0)
        reason = "Put an image in 图1"
    page.locator("button#run").click()
    expect(page.locator("#status")).to_contain_text("The edit failed")
    expect(page.locator("#status")).to_contain_text(reason)
    expect(page.locator("#status")).to_contain_text("earlier results and history are kept")
    expect(page.locator("[data-testid=toast-body]")).to_have_count(1)
    result = page.locator("#result img")
    assert order in result.get_attribute("src")
    assert visible_count(page.locator("#results-panel").get_by_text("Error", exact=True)) == 0
    assert covered(page, result) is None
    assert covered(page, page.locator("#status p").first) is None


def test_an_invalid_custom_size_disables_edit(open_page, running: RunningApp):
    """Defect 2: the note that says nothing is sent comes with a disabled Edit (Ctrl+Enter too)."""
    page = open_page()
    tag = marker()
    put_image1(page)
    page.locator("#prompt textarea").fill(f"custom {tag}")
    page.locator("#size input").click()
    page.locator("#size [data-testid=dropdown-option]", has_text="Custom").click()
    page.locator("#width input").fill("300")
    page.locator("#width input").blur()
    expect(page.locator("#size-note")).to_contain_text("nothing is sent")
    expect(page.locator("button#run")).to_be_disabled()
    page.locator("#prompt textarea").press("Control+Enter")
    page.locator("#width input").fill("1000")
    page.locator("#width input").blur()
    expect(page.locator("#size-note")).to_have_text("")
    expect(page.locator("button#run")).to_be_enabled()
    assert running.requests_with(tag) == []  # nothing was sent while the size was wrong


def test_progress_is_said_once_in_the_status_line(open_page):
    """Defect 3: one progress text, in the status line, not two overlapping trackers."""
    page = open_page()
    put_image1(page)
    page.locator("#prompt textarea").fill(f"[sim:slow=3] {marker()}")
    page.locator("button#run").click()
    expect(page.locator("#status")).to_contain_text(re.compile(r"Waiting for the provider · \d+ s"))
    assert visible_count(page.get_by_text(re.compile("Waiting for the provider"))) == 1
    assert visible_count(page.locator("#results-panel .progress-text, #results-panel .timer")) == 0
    wait_done(page)


def test_a_non_image_on_image1_is_refused_once(open_page, tmp_path, capfd):
    """Defect 4: one toast, and no traceback in the server's log, after an example filled 图1 too
    (Gradio then rebuilds the session's copy of the slot)."""
    page = open_page()
    page.get_by_text("Object swap").click()
    expect(page.locator("#image1 img")).to_be_visible()
    fake = tmp_path / "fake.png"
    fake.write_text("this is not an image")
    page.locator("#image1 input[type=file]").set_input_files(str(fake))
    toast = page.locator("[data-testid=toast-body]")
    expect(toast).to_contain_text("could not be read")
    expect(page.locator("#image1 img")).to_have_count(0)  # the refused file is cleared
    # a later upload's events run after the refused one's: once 图1 shows it, all answers are in
    put_image1(page)
    expect(toast).to_have_count(1)
    assert toast.inner_text().count("could not be read") == 1, toast.inner_text()
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert "ComponentProcessingError" not in out + err


@pytest.mark.parametrize(
    ("locale", "first", "second"),
    [("en-US", "could not be read", "无法读取"), ("zh-CN", "无法读取", "could not be read")],
)
def test_a_refused_upload_reads_in_the_page_language_first(open_page, tmp_path, locale, first, second):
    """Defect 7 for Gradio's own checks too: the refusal of an unreadable 图1, raised while Gradio
    preprocesses the upload (before any handler), puts the visitor's language first."""
    page = open_page(locale)
    fake = tmp_path / "fake.png"
    fake.write_text("this is not an image")
    page.locator("#image1 input[type=file]").set_input_files(str(fake))
    toast = page.locator("[data-testid=toast-body]")
    expect(toast).to_contain_text(first)
    text = toast.inner_text()
    assert text.index(first) < text.index(second), text


def test_phone_badges_clear_the_toolbar_and_the_upload_arrow(open_page):
    """Defect 5: on a phone the 图 badge of a filled slot is not under its fullscreen/✕ buttons,
    and an empty slot's badge does not sit on its upload arrow."""
    page = open_page(**PHONE)
    put_image1(page)
    badge = page.locator("#image1 [data-testid=block-label]").bounding_box()
    for button in page.locator("#image1 .icon-button-wrapper button").all():
        assert not overlap(badge, button.bounding_box()), (badge, button.bounding_box())
    for slot in ("#image2", "#image3"):
        badge = page.locator(f"{slot} [data-testid=block-label]").bounding_box()
        arrow = page.locator(f"{slot} .icon-wrap").first.bounding_box()
        assert not overlap(badge, arrow), (slot, badge, arrow)


@pytest.mark.parametrize("width", [1366, 390], ids=["desktop", "phone"])
def test_the_footer_has_its_link_and_no_stray_dot(open_page, width):
    """Defect 6: "Use via API" on both screens, and no separator left alone."""
    page = open_page(width=width, height=900)
    footer = page.locator("footer").first
    expect(footer.get_by_text("Use via API")).to_be_visible()
    assert visible_count(footer.get_by_text("·", exact=True)) == 0


def test_toasts_do_not_pile_up_and_speak_the_page_language(open_page):
    """Defect 7: each failure gives one toast, a new edit closes the last one, and an English page
    reads English first (both languages kept)."""
    page = open_page()
    show_a_result(page)
    toast = page.locator("[data-testid=toast-body]")
    for _ in range(2):
        page.locator("#prompt textarea").fill(f"[sim:282504] {marker()}")
        page.locator("button#run").click()
        expect(toast).to_have_count(1)
        expect(toast).to_contain_text("flagged as sensitive")
        text = toast.inner_text()
        assert text.count("flagged as sensitive") == 1, text
        assert text.index("flagged as sensitive") < text.index("包含敏感词"), text
        page.locator("#prompt textarea").fill(f"fine {marker()}")
        page.locator("button#run").click()
        expect(toast).to_have_count(0)  # the new edit closed it
        wait_done(page)  # the failure's status names no order: any order is the new edit's


def test_a_chinese_page_reads_chinese_first(open_page):
    page = open_page("zh-CN")
    show_a_result(page)
    page.locator("#prompt textarea").fill(f"[sim:282504] {marker()}")
    page.locator("button#run").click()
    toast = page.locator("[data-testid=toast-body]")
    expect(toast).to_contain_text("包含敏感词")
    text = toast.inner_text()
    assert text.index("包含敏感词") < text.index("flagged as sensitive"), text
    expect(page.locator("#status")).to_contain_text("编辑失败")
    expect(page.locator("#status")).to_contain_text("包含敏感词")  # the reason, in the page's language


# --- friction --------------------------------------------------------------------------------------


def test_cancel_is_usable_from_the_click_on(open_page):
    """Cancel is enabled by the click itself, before the server has answered at all."""
    page = open_page()
    put_image1(page)
    page.locator("#prompt textarea").fill(f"[sim:slow=2] {marker()}")
    held = []
    page.route("**/queue/join*", lambda route: held.append(route))  # the server hears nothing yet
    page.locator("button#run").click()
    expect(page.locator("#cancel")).to_be_enabled()
    deadline = time.monotonic() + WAIT_MS / 1000
    while not held:  # the request that starts the edit, held on its way out
        assert time.monotonic() < deadline, "the edit's request was never sent"
        page.wait_for_timeout(50)
    for route in held:
        route.continue_()
    page.unroute("**/queue/join*")
    wait_done(page)
    expect(page.locator("#cancel")).to_be_disabled()


@pytest.mark.parametrize(
    ("locale", "stopped", "working", "late"),
    [
        ("en-US", "Stopped waiting", "Editing", "finished after all"),
        ("zh-CN", "已取消等待", "编辑中", "之前取消的编辑已完成"),
    ],
)
def test_a_cancelled_runs_late_progress_does_not_undo_the_cancel(open_page, locale, stopped, working, late):
    """Gradio applies a cancelled run's messages already on their way. Here the server hears of the
    Cancel late (its /cancel request is held), so the run's "⏳" progress keeps coming after the
    page said "Stopped waiting": what the Cancel said stands, and the late result is still kept."""
    page = open_page(locale)
    put_image1(page)
    page.locator("#prompt textarea").fill(f"[sim:slow=4] {marker()}")
    page.evaluate(
        """() => { window.statuses = []; new MutationObserver(() => window.statuses.push(
            document.querySelector('#status').innerText)).observe(document.querySelector('#status'),
            {childList: true, subtree: true, characterData: true}); }"""
    )
    held = []
    page.route("**/gradio_api/cancel", lambda route: held.append(route))
    page.locator("button#run").click()
    expect(page.locator("#status")).to_contain_text(working)  # said by the click itself
    page.locator("#cancel").click()
    # the run's progress arrives after the page said it stopped waiting (the race, made certain)
    page.wait_for_function(
        """([stopped]) => { const i = window.statuses.findIndex(s => s.includes(stopped));
            return i >= 0 && window.statuses.slice(i).some(s => s.startsWith('⏳')); }""",
        arg=[stopped],
    )
    expect(page.locator("#status")).to_contain_text(stopped)
    expect(page.locator("#cancel")).to_be_disabled()
    for route in held:
        route.continue_()
    page.unroute("**/gradio_api/cancel")
    # the provider finishes after all: the result is saved and joins the history
    expect(page.locator("#status")).to_contain_text(late, timeout=2 * WAIT_MS)
    expect(page.locator("#history img")).to_have_count(1)


def test_a_run_refused_before_its_handler_leaves_the_status_it_found(open_page):
    """The click says "Editing…" at once; when the front door refuses the run (here a value the page
    never sends, put in on its way), the status the visitor had is back and Cancel is off."""
    page = open_page()
    order = show_a_result(page)

    def tamper(route):
        body = json.loads(route.request.post_data)
        body["data"][-1] = "9"  # variants: the page offers 1-4
        route.continue_(post_data=json.dumps(body))

    page.route("**/queue/join*", tamper)
    page.locator("button#run").click()
    expect(page.locator("[data-testid=toast-body]")).to_contain_text("reload")
    expect(page.locator("#status")).to_contain_text(order)
    expect(page.locator("#status")).not_to_contain_text("Editing")
    expect(page.locator("#cancel")).to_be_disabled()


def test_a_failed_browser_test_can_tell_what_its_page_said(open_page):
    """The journal a failed browser test's report shows (conftest.py) holds the page's toasts and
    its refused requests, as they happened."""
    page = open_page()
    page.locator("button#run").click()  # no 图1: refused with a toast
    expect(page.locator("[data-testid=toast-body]")).to_be_visible()
    page.evaluate("() => fetch('/gradio_api/file=/no/such/file.png')")
    deadline = time.monotonic() + WAIT_MS / 1000
    while not (any("toast: " in line for line in JOURNAL) and any("HTTP 40" in line for line in JOURNAL)):
        assert time.monotonic() < deadline, JOURNAL
        page.wait_for_timeout(50)  # the page's events reach Python while Playwright works
    toast = next(line for line in JOURNAL if "toast: " in line)
    assert "图1" in toast, toast
    assert any("/no/such/file.png" in line for line in JOURNAL if "HTTP 40" in line), JOURNAL


def test_delete_and_revoke_say_what_happened(open_page):
    """After the confirm, Delete and Revoke each say in the status line what they did."""
    page = open_page()
    show_a_result(page)
    page.locator("#share").click()
    expect(page.locator("#share-link textarea, #share-link input").first).to_have_value(re.compile("/share/"))
    page.locator("#revoke").click()
    expect(page.locator("#status")).to_contain_text("share link is revoked")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#delete").click()
    expect(page.locator("#status")).to_contain_text("Deleted")
    expect(page.locator("#result")).to_have_count(0)


@pytest.mark.parametrize(
    ("locale", "words"), [("en-US", "cleared from the form"), ("zh-CN", "已从表单中清除")]
)
def test_delete_clears_a_slot_whose_upload_went_with_the_result(open_page, locale, words):
    """Delete removes the visitor's upload of 图1; the form no longer shows a photo whose file is
    gone (the next edit failed with "图1 could not be read"), and the status line says why in the
    page's language."""
    page = open_page(locale)
    show_a_result(page)
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#delete").click()
    expect(page.locator("#status")).to_contain_text(words)
    expect(page.locator("#image1 img")).to_have_count(0)
    put_image1(page)  # the same photo again: a new upload of the same content
    page.locator("#prompt textarea").fill(f"again {marker()}")
    page.locator("button#run").click()
    wait_done(page)


def test_on_a_phone_a_failure_toast_leaves_the_status_line_readable(open_page):
    """On a phone the toast sat over the status line (which says the same failure) and the top of
    the result: it goes at the bottom of the screen there."""
    page = open_page(**PHONE)
    show_a_result(page)
    page.locator("#prompt textarea").fill(f"not allowed [sim:282504] {marker()}")
    page.locator("button#run").click()
    expect(page.locator("[data-testid=toast-body]")).to_have_count(1)
    expect(page.locator("#status")).to_contain_text("282504")
    page.locator("#status").scroll_into_view_if_needed()
    toast = page.locator("[data-testid=toast-body]").bounding_box()
    status = page.locator("#status").bounding_box()
    assert not overlap(toast, status), (toast, status)
    assert covered(page, page.locator("#status p").first) is None
