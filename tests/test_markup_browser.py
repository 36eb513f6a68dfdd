"""A hostile provider's words never become markup on the page (issue 10, L1), in a real browser.

The provider here is a small HTTP server on loopback that answers with HTML, links, a form and
backticks in every text it controls: the reason of an error, the body of a non-JSON answer and the
order id of a success. The page must show them as text: no element, no request, no dialog.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from helpers.apphost import running_app
from helpers.browser import WAIT_MS, fill_form
from helpers.paths import CAT
from PIL import Image
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]

HOSTILE = (
    '<img src="http://127.0.0.1:9/tracker.png" id="injected-img" onerror="alert(1)">'
    '<a href="http://127.0.0.1:9/phish" id="injected-link">re-enter your key</a>'
    '<form id="injected-form" action="http://127.0.0.1:9/steal"><input name="key"></form>'
)


class _Provider(BaseHTTPRequestHandler):
    """Answers by the prompt: "error" an error whose reason is HTML, "html" a non-JSON HTML body,
    anything else a success whose order id holds HTML and backticks."""

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        text = form["text"][0]
        if "error" in text:
            answer = {"error_code": 282505, "reason": HOSTILE, "result": None}
        elif "html" in text:
            return self._reply(200, HOSTILE.encode(), "text/html")
        else:
            link = f"http://127.0.0.1:{self.server.server_address[1]}/result.png"
            answer = {
                "error_code": 0,
                "reason": "成功",
                "result": {"orderid": "`x`" + HOSTILE, "images": [{"image": link}]},
            }
        self._reply(200, json.dumps(answer).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        out = io.BytesIO()
        Image.new("RGB", (512, 512), (40, 120, 200)).save(out, "PNG")
        self._reply(200, out.getvalue(), "image/png")


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/image_edit/edit"
    try:
        with running_app(
            tmp_path_factory.mktemp("markup"), live=False, JUHE_API_KEY="k-markup", JUHE_API_URL=url
        ) as app:
            yield app
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(browser: Browser, running) -> Iterator[Page]:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.hostile_requests = []
    page.on(
        "request", lambda request: page.hostile_requests.append(request.url) if ":9/" in request.url else None
    )
    page.goto(running.url)
    expect(page.locator("button#run")).to_be_enabled()
    yield page
    context.close()


def assert_no_injected_markup(page: Page) -> None:
    """Call once the hostile text is on screen (the event that proves the page rendered it): had any
    of it been parsed as markup, its elements would be in the page now, and a dialog or a request
    could only come from such an element, so no delay is waited out."""
    for selector in (
        "#injected-img",
        "#injected-link",
        "#injected-form",
        "form",
        "a[href^='http://127.0.0.1:9/']",
    ):
        assert page.locator(selector).count() == 0, selector
    assert page.dialogs == [] and page.hostile_requests == []


@pytest.mark.parametrize(
    ("prompt", "shown"),
    [("an error", "re-enter your key"), ("an html answer", '<img src="http://127.0.0.1:9/tracker.png"')],
)
def test_provider_text_in_a_toast_is_text(page: Page, prompt: str, shown: str):
    fill_form(page, prompt, CAT)
    page.locator("button#run").click()
    toast = page.locator("[data-testid=toast-body]").last
    expect(toast).to_contain_text(shown)  # the provider's words are shown, as words
    assert_no_injected_markup(page)


def test_an_order_id_in_the_status_line_is_text(page: Page):
    fill_form(page, "a success", CAT)
    page.locator("button#run").click()
    status = page.locator("#status")
    expect(status.locator("code")).to_be_visible()
    code = status.locator("code").inner_text()
    assert "`" not in code and "<" not in code  # it could not close its code span
    assert_no_injected_markup(page)
