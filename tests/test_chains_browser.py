"""Edit chains and reordering (issue 18) in a real browser: three "Continue editing" steps stay a
navigable chain after a reload and share as three steps; a swap moves uploads and links together and
the instruction changes only when the visitor applies the suggestion."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from helpers.apphost import RunningApp, running_app
from helpers.browser import run_edit
from helpers.paths import CAT, COFFEE
from helpers.share import (
    Html,
    share_link,
    visit,
)
from helpers.tags import marker
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    """The offline preview (its built-in simulator), a little slow as a provider would be."""
    with running_app(tmp_path_factory.mktemp("chains"), live=False, JUHE_SIM_LATENCY="0.3") as launched:
        yield launched


def continue_editing(page: Page, order: str) -> None:
    """Put the result on show into 图1, and wait until it is there."""
    page.locator("#continue").click()
    expect(page.locator("#image1 img")).to_have_attribute("src", re.compile(order))


def test_a_chain_of_three_edits_is_navigable_after_a_reload_and_shares_its_steps(browser: Browser, app):
    context = browser.new_context(locale="en-US")
    page = visit(context, app.url)
    tag = marker()
    first = run_edit(page, f"step one {tag}")
    expect(page.locator("#made-from")).to_have_count(0)  # made from an upload: no chain yet
    continue_editing(page, first)
    second = run_edit(page, f"step two {tag}", image=None)
    expect(page.locator("#made-from")).to_contain_text(f"step one {tag}")
    continue_editing(page, second)
    third = run_edit(page, f"step three {tag}", image=None)

    page.reload()
    expect(page.locator("button#run")).to_be_enabled()
    history = page.locator("#history")
    expect(history.locator("img")).to_have_count(3)
    for n in (1, 2, 3):
        expect(history).to_contain_text(f"{n}/3")
    history.locator("img").first.click()  # the newest: step three
    result = page.locator("#result img")
    expect(result).to_have_attribute("src", re.compile(third))
    expect(page.locator("#made-from")).to_contain_text(f"step two {tag}")
    page.locator("#open-parent").click()
    expect(result).to_have_attribute("src", re.compile(second))
    expect(page.locator("#made-from")).to_contain_text(f"step one {tag}")
    page.locator("#open-parent").click()
    expect(result).to_have_attribute("src", re.compile(first))
    expect(page.locator("#made-from")).to_have_count(0)  # the first step was made from an upload

    history.locator("img").first.click()
    expect(result).to_have_attribute("src", re.compile(third))
    page.locator("#share-steps input").check()
    link = share_link(page)
    shared = httpx.get(link, timeout=10)
    assert shared.status_code == 200
    steps = Html(shared.text)
    text = " ".join(steps.text)
    # the result and its instruction on top, then the earlier steps in order
    assert text.index(f"step three {tag}") < text.index(f"step one {tag}") < text.index(f"step two {tag}")
    assert "Step 1 of 3" in text and "Step 2 of 3" in text and "Step 3 is the result above" in text
    assert not any(order in shared.text for order in (first, second, third))
    viewer = browser.new_context(locale="zh-CN").new_page()  # someone else, with no session
    viewer.goto(link)
    expect(viewer.locator(".steps li")).to_have_count(2)
    for image in viewer.locator(".steps img").all():
        image.scroll_into_view_if_needed()
        viewer.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    viewer.context.close()
    context.close()


def test_a_swap_keeps_uploads_and_links_paired_and_asks_before_renumbering(browser: Browser, app):
    context = browser.new_context(locale="en-US")
    page = visit(context, app.url)
    page.locator("#image1 input[type=file]").set_input_files(str(CAT))
    page.locator("#image2 input[type=file]").set_input_files(str(COFFEE))
    expect(page.locator("#image2 img")).to_be_visible()
    page.locator("#advanced").get_by_text(re.compile("Advanced")).first.click()
    link = "https://example.org/for-slot-1.png"
    page.locator("#url1 textarea, #url1 input").first.fill(link)
    prompt = "Put the cat from 图1 on the table beside the cup in 图2"
    page.locator("#prompt textarea").fill(prompt)

    page.locator("#swap12").click()
    expect(page.locator("#image1 img")).to_have_attribute("src", re.compile("coffee"))
    expect(page.locator("#image2 img")).to_have_attribute("src", re.compile("cat"))
    expect(page.locator("#url2 textarea, #url2 input").first).to_have_value(link)
    expect(page.locator("#url1 textarea, #url1 input").first).to_have_value("")
    suggestion = page.locator("#renumber")
    expect(suggestion).to_be_visible()
    expect(suggestion).to_contain_text("图2 on the table beside the cup in 图1")  # the preview
    assert page.locator("#prompt textarea").input_value() == prompt  # a suggestion, not a rewrite

    page.locator("#swap23").click()  # 图2 (the cat) moves on to 图3, its link with it
    expect(page.locator("#image3 img")).to_have_attribute("src", re.compile("cat"))
    expect(page.locator("#url3 textarea, #url3 input").first).to_have_value(link)
    expect(page.locator("#image2 img")).to_have_count(0)
    expect(suggestion).to_contain_text("图3 on the table beside the cup in 图1")
    assert page.locator("#prompt textarea").input_value() == prompt

    page.locator("#renumber-apply").click()
    expect(page.locator("#prompt textarea")).to_have_value(
        "Put the cat from 图3 on the table beside the cup in 图1"
    )
    expect(suggestion).to_have_count(0)

    page.locator("#swap12").click()  # 图1 (coffee) and the empty 图2 swap: "Keep" leaves the text be
    expect(suggestion).to_be_visible()
    page.locator("#renumber-keep").click()
    expect(suggestion).to_have_count(0)
    assert page.locator("#prompt textarea").input_value() == (
        "Put the cat from 图3 on the table beside the cup in 图1"
    )
    context.close()
