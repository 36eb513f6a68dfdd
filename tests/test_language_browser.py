"""The language switch in a real browser (issue 18): a presenter whose browser is in one language
shows the page in the other, every word follows (Gradio's own texts, the app's, app.js's, the tab
title, the server's status line, share links), and the choice outlives a reload."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from helpers.apphost import RunningApp, running_app
from helpers.browser import ORDER_ID, WAIT_MS
from helpers.paths import CAT
from helpers.tags import marker
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("language")) as launched:
        yield launched


def open_page(browser: Browser, running: RunningApp, locale: str) -> Page:
    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(running.url)
    expect(page.locator("button#run")).to_be_enabled()
    return page


def run_edit(page: Page) -> None:
    page.locator("#image1 input[type=file]").set_input_files(str(CAT))
    expect(page.locator("#image1 img")).to_be_visible()
    page.locator("#prompt textarea").fill(f"replace the cat with a dog {marker()}")
    page.locator("button#run").click()
    expect(page.locator("#status")).to_contain_text(ORDER_ID)


def choose_custom_size(page: Page, label: str) -> None:
    page.locator("#size input").click()
    page.locator("#size [data-testid=dropdown-option]", has_text=label).click()
    page.locator("#width input").fill("10")
    page.locator("#width input").blur()


def test_an_english_browser_shows_the_chinese_page_and_remembers_it(browser: Browser, running: RunningApp):
    page = open_page(browser, running, "en-US")
    expect(page.locator("button#language")).to_have_text(re.compile("中文"))
    page.locator("button#language").click()

    expect(page.locator("button#run")).to_contain_text("开始编辑")  # the app's gr.I18n texts
    expect(page.locator("#image1").get_by_text("点击上传")).to_be_visible()  # Gradio's own texts
    expect(page).to_have_title(re.compile("AI 图像编辑"))
    expect(page.locator("button#language")).to_have_text(re.compile("English"))
    choose_custom_size(page, "自定义")
    expect(page.locator("#size-note")).to_contain_text("宽和高必须是")  # app.js's words
    page.locator("#size input").click()
    page.locator("#size [data-testid=dropdown-option]", has_text="自动").click()

    run_edit(page)
    expect(page.locator("#status")).to_contain_text("完成")  # the server's words
    expect(page.locator("#status")).to_contain_text("订单")
    page.locator("button#share").click()
    expect(page.locator("#share-link textarea")).to_have_value(re.compile(r"/share/[\w-]+\?lang=zh$"))
    link = page.locator("#share-link textarea").input_value()
    shared = page.context.new_page()
    shared.goto(link)
    expect(shared.locator("h2").first).to_have_text("指令")

    page.reload()
    expect(page.locator("button#run")).to_contain_text("开始编辑")
    expect(page.locator("#image1").get_by_text("点击上传")).to_be_visible()
    expect(page).to_have_title(re.compile("AI 图像编辑"))


def test_a_chinese_browser_shows_the_english_page_and_remembers_it(browser: Browser, running: RunningApp):
    page = open_page(browser, running, "zh-CN")
    expect(page.locator("button#run")).to_contain_text("开始编辑")
    page.locator("button#language").click()

    expect(page.locator("button#run")).to_contain_text("Edit image")
    expect(page.locator("#image1").get_by_text("Click to Upload")).to_be_visible()
    expect(page).to_have_title(re.compile("^AI Image Edit"))
    choose_custom_size(page, "Custom")
    expect(page.locator("#size-note")).to_contain_text("Width and height must be")
    page.locator("#size input").click()
    page.locator("#size [data-testid=dropdown-option]", has_text="Auto").click()

    run_edit(page)
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#status")).not_to_contain_text("完成")

    page.reload()
    expect(page.locator("button#run")).to_contain_text("Edit image")
    expect(page).to_have_title(re.compile("^AI Image Edit"))
