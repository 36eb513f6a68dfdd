"""Driving the app's page in Debian's chromium: the browser's path and flags, and the waits every
browser test shares (each ends as soon as its condition holds, never after a fixed delay)."""

from __future__ import annotations

import queue
import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from helpers.paths import CAT

WAIT_MS = 20_000  # generous for 2 slow cores; every wait ends as soon as its condition holds


ORDER_ID = re.compile(r"SIM\d{14}[0-9a-f]{6}")


IMAGE_LOADED = "img => img.complete && img.naturalWidth > 0"


def fill_form(page: Page, prompt: str, image: Path = CAT) -> None:
    page.locator("#image1 input[type=file]").set_input_files(str(image))
    expect(page.locator("#image1 img")).to_be_visible()
    page.locator("#prompt textarea").fill(prompt)


def wait_loaded(image: Locator) -> None:
    image.page.wait_for_function(IMAGE_LOADED, arg=image.element_handle(), timeout=WAIT_MS)


def wait_done(page: Page, after: set[str] = frozenset()) -> str:
    """Wait until the status names a new order; return it."""
    status = page.locator("#status")
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        shown = set(ORDER_ID.findall(status.inner_text())) - set(after)
        if shown:
            assert len(shown) == 1
            return shown.pop()
        assert time.monotonic() < deadline, f"no new order in the status: {status.inner_text()!r}"
        page.wait_for_timeout(50)


def next_answer(page: Page, answers: queue.Queue) -> object:
    """The next answer on `answers` (from `apphost.answers_of`), while Playwright goes on serving the
    page: a dialog handler runs only while Playwright is called, so a plain `answers.get` would leave
    a confirm dialog open, and the event it guards unsent."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        try:
            return answers.get_nowait()
        except queue.Empty:
            assert time.monotonic() < deadline, "the event's handler did not answer"
            page.wait_for_timeout(50)


def run_edit(page: Page, prompt: str, image: Path | None = CAT) -> str:
    """Fill the form (keeping 图1 if `image` is None), press the button, wait; return the order id."""
    before = set(ORDER_ID.findall(page.locator("#status").inner_text()))
    if image is not None:
        fill_form(page, prompt, image)
    else:
        page.locator("#prompt textarea").fill(prompt)
    page.locator("button#run").click()
    return wait_done(page, before)


def choose_size(page: Page, label: str) -> None:
    page.locator("#size input").click()
    page.locator("#size [data-testid=dropdown-option]", has_text=label).click()


def toast_text(page: Page, containing: str | re.Pattern = "") -> str:
    """The text of the newest toast (that contains `containing`, when given)."""
    toast = page.locator("[data-testid=toast-body]", has_text=containing).last
    expect(toast).to_be_visible()
    return toast.inner_text()


# --- what the pages said, for a failed test's report ----------------------------------------------
# A browser test that fails under load usually fails on a wait, and the page's state at that moment
# (an aria snapshot) does not say what happened before: a toast gone after its 10 s, a refused
# request, a script error. Every context of the `browser` fixture writes those here as they happen;
# the report of a failed test shows the current test's lines (conftest.py).

JOURNAL: list[str] = []
JOURNAL_KEPT = 200  # lines of one test; the oldest go first
_TOAST_SPY = """
new MutationObserver(() => {
  for (const toast of document.querySelectorAll('[data-testid="toast-body"]:not([data-journaled])')) {
    toast.setAttribute("data-journaled", "1");
    console.info("toast: " + toast.innerText.replace(/\\s+/g, " ").trim());
  }
}).observe(document, { childList: true, subtree: true });
"""


def _note(line: str) -> None:
    JOURNAL.append(f"{time.strftime('%H:%M:%S')} {line}")
    del JOURNAL[:-JOURNAL_KEPT]


def _journal_context(context) -> None:
    context.add_init_script(_TOAST_SPY)
    context.on(
        "console",
        lambda m: _note(f"console {m.type}: {m.text}") if m.type in ("error", "warning", "info") else None,
    )
    context.on("weberror", lambda e: _note(f"page error: {e.error}"))
    context.on("requestfailed", lambda r: _note(f"request failed: {r.method} {r.url} ({r.failure})"))
    context.on("response", _note_refusal)


def _note_refusal(response) -> None:
    if response.status >= 400:
        _note(f"HTTP {response.status}: {response.request.method} {response.url}")


def keep_journal(browser) -> None:
    """Every context `browser` opens from now on writes to `JOURNAL`: toasts, console errors and
    warnings, script errors, failed requests and answers of HTTP 400 and over."""
    new_context = browser.new_context

    def journaled(*args, **kwargs):
        context = new_context(*args, **kwargs)
        _journal_context(context)
        return context

    browser.new_context = journaled
