"""The share page in a real browser: it loads under its own strict CSP, and the slider moves.

The middleware runs in front of a trivial app on a loopback uvicorn server; Debian's chromium opens
the link in a fresh context (no cookies, no session).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from helpers.browser import WAIT_MS
from helpers.saving import save_result
from PIL import Image
from starlette.responses import PlainTextResponse

from juhe import EditResult
from juhe.simulator import render_result
from webapp.share import SharePages
from webapp.store import ResultStore

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "examples" / "cat.jpg"
PROMPT = "将图中的小猫换成小狗 <b>not bold</b>"


async def trivial_app(scope, receive, send):
    await PlainTextResponse("the app")(scope, receive, send)


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free loopback port; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def shared_link(tmp_path: Path) -> Iterator[tuple[str, ResultStore, str]]:
    store = ResultStore(tmp_path / "outputs")
    with Image.open(CAT) as cat:
        after = render_result(cat, PROMPT, "")
    result = EditResult(order_id="SIM-1", image_urls=["https://x/1"], prompt=PROMPT)
    paths = save_result(result, store.folder, [("https://x/1", after, "PNG")])
    record = store.add(paths, prompt=PROMPT, model="auto", completed_at=result.completed_at, before=CAT)
    token = store.share(record.id)
    with serving(SharePages(trivial_app, store=store)) as base:
        yield base, store, token


def test_share_page_loads_under_its_csp_and_the_slider_moves(shared_link, browser):
    base, store, token = shared_link
    context = browser.new_context()  # fresh: no cookies, no session, no password
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        response = page.goto(f"{base}/share/{token}")
        assert response.status == 200
        for selector in ("img.after", "img.before"):
            page.locator(selector).wait_for(state="attached")  # parsed, before its pixels are asked for
            page.wait_for_function(f"document.querySelector('{selector}').naturalWidth > 0", timeout=WAIT_MS)
        box = page.locator(".compare")
        assert box.evaluate("b => b.style.getPropertyValue('--pos')") == "50%"  # the script ran
        page.locator(".compare input").focus()
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        assert box.evaluate("b => b.style.getPropertyValue('--pos')") == "40%"
        handle = page.locator(".compare input").bounding_box()
        page.mouse.click(handle["x"] + handle["width"] * 0.8, handle["y"] + handle["height"] / 2)
        position = float(box.evaluate("b => b.style.getPropertyValue('--pos')").rstrip("%"))
        assert 75 <= position <= 85
        assert page.locator("blockquote").inner_text() == PROMPT  # markup in the prompt is text
        assert page.locator("blockquote b").count() == 0
        assert problems == []  # no CSP violation, no script error
        with page.expect_download() as download:
            page.locator("a.button").click()
        assert (
            Path(download.value.path()).read_bytes()
            == store.get(store.resolve(token).id).images[0].read_bytes()
        )
    finally:
        context.close()


def test_a_revoked_link_is_refused_in_the_browser(shared_link, browser):
    base, store, token = shared_link
    store.revoke(token)
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"{base}/share/{token}")
        assert response.status == 410
        text = page.locator("body").inner_text()
        assert "撤销" in text and "revoked" in text
    finally:
        context.close()
