"""Results that last and can be shared (issue 13), in a real browser: the history survives a reload
and an app restart, a share link opens for someone with no session, and a revoked or deleted result
is gone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest
from helpers.apphost import answers_of, running_app
from helpers.browser import ORDER_ID, next_answer, run_edit
from helpers.net import free_port
from helpers.share import share_link, visit
from helpers.tags import marker
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(180)]

SECRET = "a-fixed-browser-secret-0123456789abcdef"


def history_orders(page: Page) -> list[str]:
    return [ORDER_ID.search(img.get_attribute("src")).group(0) for img in page.locator("#history img").all()]


class _Meta(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "meta" and (values.get("property") or values.get("name")):
            self.meta[values.get("property") or values["name"]] = values.get("content") or ""


def test_history_survives_a_reload_and_a_restart(browser: Browser, tmp_path):
    """Same output folder, same JUHE_BROWSER_SECRET, same address: the browser's own results come back;
    another browser sees none of them."""
    port = free_port()
    env = {"JUHE_BROWSER_SECRET": SECRET, "JUHE_OUTPUT_DIR": str(tmp_path / "outputs")}
    context = browser.new_context(locale="en-US")
    with running_app(tmp_path / "first", port=port, **env) as app:
        page = visit(context, app.url)
        first = run_edit(page, f"kept across reloads {marker()}")
        second = run_edit(page, f"and restarts {marker()}", image=None)
        page.reload()
        expect(page.locator("button#run")).to_be_enabled()
        expect(page.locator("#history img")).to_have_count(2)
        assert history_orders(page) == [second, first]
        stranger = visit(browser.new_context(locale="en-US"), app.url)
        expect(stranger.locator("#results-empty")).to_be_visible()
        expect(stranger.locator("#history")).to_have_count(0)
    with running_app(tmp_path / "second", port=port, **env) as app:
        assert app.url.endswith(f":{port}")  # the same origin, so the same browser storage
        page = visit(context, app.url)
        expect(page.locator("#history img")).to_have_count(2)
        assert history_orders(page) == [second, first]
        page.locator("#history img").nth(1).click()
        expect(page.locator("#result img")).to_have_attribute("src", re.compile(first))
    context.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator:
    with running_app(tmp_path_factory.mktemp("share")) as app:
        yield app


def test_a_share_link_opens_without_a_session_and_previews(browser: Browser, shared):
    owner = visit(browser.new_context(locale="en-US"), shared.url)
    prompt = f"shared <b>bold</b> {marker()}"
    order = run_edit(owner, prompt)
    link = share_link(owner)
    assert link.startswith(shared.url)

    stranger = browser.new_context(locale="zh-CN")  # a fresh browser: no session, no cookies
    page = stranger.new_page()
    response = page.goto(link)
    assert response.status == 200
    expect(page.locator("body")).to_contain_text(prompt)  # shown as text, escaped
    assert page.locator("body b").count() == 0
    assert order not in page.content()  # no file names or order ids, only the share token
    images = page.locator("img")
    assert images.count() >= 2  # before and after
    stranger.close()

    html = httpx.get(link, timeout=10).text
    parser = _Meta()
    parser.feed(html)
    assert parser.meta["og:title"] and parser.meta["og:description"]
    assert parser.meta["og:image"].startswith("http://127.0.0.1:")
    thumbnail = httpx.get(parser.meta["og:image"], timeout=10)
    assert thumbnail.status_code == 200 and thumbnail.content[:3] == b"\xff\xd8\xff"


def test_a_revoked_link_is_refused(browser: Browser, shared):
    owner = visit(browser.new_context(locale="en-US"), shared.url)
    run_edit(owner, f"to revoke {marker()}")
    link = share_link(owner)
    assert httpx.get(link, timeout=10).status_code == 200
    owner.locator("#revoke").click()
    expect(owner.locator("#share-link")).to_have_count(0)
    refused = httpx.get(link, timeout=10)
    assert refused.status_code == 410 and "revoked" in refused.text.lower()


def test_a_deleted_result_is_gone_from_disk(browser: Browser, shared):
    owner = visit(browser.new_context(locale="en-US"), shared.url)
    order = run_edit(owner, f"to delete {marker()}")
    link = share_link(owner)
    shown = owner.locator("#result img").get_attribute("src")
    files = list(shared.output_dir.glob(f"{order}*"))
    assert {p.suffix for p in files} == {".png", ".json"}
    owner.on("dialog", lambda dialog: dialog.accept())
    owner.locator("#delete").click()
    expect(owner.locator("#results-empty")).to_be_visible()
    expect(owner.locator("#history")).to_have_count(0)
    assert not any(p.exists() for p in files)
    assert httpx.get(link, timeout=10).status_code == 404
    assert httpx.get(shown, timeout=10).status_code in (403, 404)  # the shown copy went too
    owner.reload()
    expect(owner.locator("button#run")).to_be_enabled()
    expect(owner.locator("#history")).to_have_count(0)


def test_saying_no_to_delete_keeps_the_result(browser: Browser, shared):
    owner = visit(browser.new_context(locale="en-US"), shared.url)
    order = run_edit(owner, f"kept {marker()}")
    owner.on("dialog", lambda dialog: dialog.dismiss())
    with answers_of(shared, "delete_result") as answers:
        owner.locator("#delete").click()
        next_answer(owner, answers)  # the server has handled the "no"
    assert (shared.output_dir / f"{order}.png").is_file()
    expect(owner.locator("#result img")).to_be_visible()
