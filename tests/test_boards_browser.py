"""Boards (issue 19) in a real browser: the owner puts three results on a board, a stranger with no
session or password opens it, moves through it with ← and →, and downloads the set as one zip."""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import pytest
from helpers.apphost import running_app
from helpers.browser import WAIT_MS, run_edit
from playwright.sync_api import Browser, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(240)]

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "board.png"


def test_a_stranger_presents_a_board_of_three_and_downloads_it(browser: Browser, tmp_path):
    # the app has a simulator of its own: the prompts need no marker to be told apart
    prompts = ["make the sky purple", "add a <b>red</b> hat", "turn it into a pencil sketch"]
    with running_app(tmp_path, JUHE_ACCESS_PASSWORD="owner-only-password-123") as app:
        owner_context = browser.new_context(locale="en-US")
        # the owner logs in (Gradio's login form, posted by the context: its cookie is the page's too)
        login = owner_context.request.post(
            f"{app.url}/login", form={"username": "owner", "password": "owner-only-password-123"}
        )
        assert login.ok
        owner = owner_context.new_page()
        owner.set_default_timeout(WAIT_MS)
        owner.goto(app.url)
        expect(owner.locator("button#run")).to_be_enabled()
        run_edit(owner, prompts[0])
        for prompt in prompts[1:]:
            run_edit(owner, prompt, image=None)

        owner.locator("#board-open").click()
        boxes = owner.locator("#board-pick label")
        expect(boxes).to_have_count(3)
        for k in range(3):  # newest first, as the history shows them
            boxes.nth(k).click()
        owner.locator("#board-make").click()
        box = owner.locator("#board-link textarea, #board-link input").first
        expect(box).to_have_value(re.compile(r"/share/board/[A-Za-z0-9_-]{32}\?lang=en$"))
        link = box.input_value()
        expect(owner.locator("#board-revoke")).to_be_visible()

        stranger_context = browser.new_context(locale="en-US", accept_downloads=True)
        stranger = stranger_context.new_page()
        stranger.set_default_timeout(WAIT_MS)
        assert stranger.goto(link).status == 200  # no password, no session: the link is the capability
        shown = stranger.locator(".item.on")
        expect(shown).to_have_count(1)
        expect(shown.locator("blockquote")).to_have_text(prompts[2])  # the newest first
        expect(shown.locator("img.after")).to_have_js_property("complete", True)
        stranger.keyboard.press("ArrowRight")
        expect(shown.locator("blockquote")).to_have_text(prompts[1])  # escaped: shown as text
        assert shown.locator("blockquote b").count() == 0
        stranger.keyboard.press("ArrowRight")
        expect(shown.locator("blockquote")).to_have_text(prompts[0])
        expect(shown.locator("h2").first).to_have_text("3 / 3")
        stranger.keyboard.press("ArrowLeft")
        expect(shown.locator("blockquote")).to_have_text(prompts[1])
        stranger.keyboard.press("ArrowLeft")
        expect(shown.locator("blockquote")).to_have_text(prompts[2])
        expect(stranger.locator("#fullscreen")).to_be_visible()
        if os.environ.get("JUHE_BOARD_SCREENSHOT"):  # docs/screenshots/board.png, made on request
            stranger.set_viewport_size({"width": 1100, "height": 900})
            expect(shown.locator("img.before")).to_have_js_property("complete", True)
            stranger.screenshot(path=str(SCREENSHOT), full_page=True)

        with stranger.expect_download() as download_info:
            stranger.get_by_text("Download all (zip)").click()
        download = download_info.value
        assert download.suggested_filename == "juhe-board.zip"
        with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
            assert archive.namelist() == ["01.png", "02.png", "03.png"]
        stranger_context.close()

        owner.locator("#board-revoke").click()
        expect(owner.locator("#status")).to_contain_text("board link is revoked")
        again = browser.new_context(locale="en-US")
        assert again.new_page().goto(link).status == 410
        again.close()
        owner_context.close()


def test_a_chinese_board_on_a_phone_speaks_chinese_and_moves_by_keyboard(browser: Browser, tmp_path):
    """The owner's page is Chinese on a phone: the board link carries lang=zh, and a stranger's phone
    shows the board's own words in Chinese, one result at a time, ← → moving between them."""
    phone = {"width": 390, "height": 844}
    prompts = ["把天空变成紫色", "给它加一顶红帽子"]
    with running_app(tmp_path) as app:
        owner_context = browser.new_context(locale="zh-CN", viewport=phone)
        owner = owner_context.new_page()
        owner.set_default_timeout(WAIT_MS)
        owner.goto(app.url)
        expect(owner.locator("button#run")).to_be_enabled()
        run_edit(owner, prompts[0])
        run_edit(owner, prompts[1], image=None)
        owner.locator("#board-open").click()
        boxes = owner.locator("#board-pick label")
        expect(boxes).to_have_count(2)
        for k in range(2):
            boxes.nth(k).click()
        owner.locator("#board-make").click()
        box = owner.locator("#board-link textarea, #board-link input").first
        expect(box).to_have_value(re.compile(r"/share/board/[A-Za-z0-9_-]{32}\?lang=zh$"))
        link = box.input_value()
        owner_context.close()

        stranger_context = browser.new_context(locale="en-US", viewport=phone)
        stranger = stranger_context.new_page()
        stranger.set_default_timeout(WAIT_MS)
        assert stranger.goto(link).status == 200
        expect(stranger.get_by_text("全部下载（zip）")).to_be_visible()
        shown = stranger.locator(".item.on")
        expect(shown.locator("blockquote")).to_have_text(prompts[1])
        stranger.keyboard.press("ArrowRight")
        expect(shown.locator("blockquote")).to_have_text(prompts[0])
        expect(shown.locator("h2").first).to_have_text("2 / 2")
        width = stranger.evaluate("document.documentElement.scrollWidth")
        assert width <= phone["width"], width  # nothing wider than the phone
        stranger_context.close()
