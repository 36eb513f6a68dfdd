"""The page in a real browser: Debian's chromium driven by Playwright against the app in this process.

One app launch and one browser for the module; each test opens its own page (its own session). The
app runs live against its own `Simulator`, so the tests can count what reached the "provider".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from helpers.apphost import SERVER_KEY, RunningApp, running_app
from helpers.browser import (
    WAIT_MS,
    choose_size,
    fill_form,
    run_edit,
    toast_text,
    wait_done,
    wait_loaded,
)
from helpers.paths import CAT, ROOT
from helpers.tags import marker
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from juhe.simulator import key_fingerprint

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]

ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
UPLOAD_LIMIT = 200 * 1024


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("browser"), JUHE_MAX_UPLOAD=f"{UPLOAD_LIMIT}") as launched:
        yield launched


@pytest.fixture
def open_page(browser: Browser, running: RunningApp) -> Iterator[Callable[..., Page]]:
    """Open the app in a fresh browser context (a new visitor) with the given locale and size."""
    contexts = []

    def open_(locale: str = "en-US", width: int = 1366, height: int = 900, url: str | None = None) -> Page:
        context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url or running.url)
        expect(page.locator("button#run")).to_be_enabled()
        return page

    yield open_
    for context in contexts:
        context.close()


# --- the basics -----------------------------------------------------------------------------------


def test_edit_shows_the_result_and_its_order(open_page, running: RunningApp):
    page = open_page()
    tag = marker()
    prompt = f"replace the cat with a dog {tag}"
    order_id = run_edit(page, prompt)
    result = page.locator("#result img")
    wait_loaded(result)
    assert order_id in result.get_attribute("src")
    assert running.sidecar(order_id)["prompt"] == prompt
    [sent] = running.requests_with(tag)
    assert sent["key"] == key_fingerprint(SERVER_KEY)
    status = page.locator("#status").inner_text()
    assert "Done" in status and "saved to" not in status and "outputs" not in status  # no server paths


def test_error_shows_a_toast_and_keeps_the_history(open_page):
    page = open_page()
    first = f"first edit {marker()}"
    order_id = run_edit(page, first)
    wait_loaded(page.locator("#history img").first)

    page.locator("#prompt textarea").fill(f"not allowed [sim:282504] {marker()}")
    page.locator("button#run").click()
    text = toast_text(page)
    assert "282504" in text and "包含敏感词" in text and "flagged as sensitive" in text
    expect(page.locator("#status")).to_contain_text("earlier results and history are kept")
    expect(page.locator("#history img")).to_have_count(1)
    assert order_id in page.locator("#history img").first.get_attribute("src")
    assert order_id in page.locator("#result img").get_attribute("src")  # the result stays on show


def test_double_click_starts_one_call(open_page, running: RunningApp):
    page = open_page()
    tag = marker()
    fill_form(page, f"double click {tag} [sim:slow=1]")  # the call lasts 1 s, long enough to click twice
    page.locator("button#run").dblclick()
    wait_done(page)
    # A "slow" request is recorded on arrival and again when answered; a second call, started a few
    # milliseconds after the first, would have arrived long before the first one was answered.
    assert sorted(r["outcome"] for r in running.requests_with(tag)) == ["ok", "slow"]


def test_chinese_interface_and_title(open_page):
    page = open_page("zh-CN")
    expect(page.locator("button#run")).to_contain_text("开始编辑")
    expect(page.get_by_text("编辑描述", exact=True)).to_be_visible()
    expect(page.locator("#mode-banner")).to_contain_text("在线")
    expect(page).to_have_title(re.compile("AI 图像编辑"))
    run_edit(page, f"把小猫换成小狗 {marker()}")
    expect(page.locator("#status")).to_contain_text("完成")
    expect(page.locator("#status")).to_contain_text("订单")


def test_english_interface_and_title(open_page):
    page = open_page("en-US")
    expect(page.locator("button#run")).to_contain_text("Edit image")
    expect(page.get_by_text("Instruction", exact=True)).to_be_visible()
    expect(page.get_by_text("编辑描述", exact=True)).to_have_count(0)
    expect(page).to_have_title(re.compile("^AI Image Edit"))


def test_prompt_counter_follows_typing(open_page):
    page = open_page()
    counter = page.locator("#prompt-count")
    box = page.locator("#prompt textarea")
    expect(counter).to_have_text("0 / 800")
    box.press_sequentially("hello")
    expect(counter).to_have_text("5 / 800")
    box.press_sequentially(" 世界")
    expect(counter).to_have_text("8 / 800")
    box.fill("x" * 801)
    expect(counter).to_contain_text("801 / 800")
    expect(counter).to_contain_text("cut off")
    expect(counter.locator(".over")).to_be_visible()
    box.fill("")
    expect(counter).to_have_text("0 / 800")


def test_visitor_key_is_sent_but_kept_nowhere_in_the_browser(open_page, running: RunningApp):
    page = open_page()
    visitor_key = "visitor-key-" + uuid.uuid4().hex
    page.get_by_text("Advanced: image links").click()
    page.locator("#api-key input").fill(visitor_key)
    tag = marker()
    run_edit(page, f"with my own key {tag}")
    [sent] = running.requests_with(tag)
    assert sent["key"] == key_fingerprint(visitor_key)
    stored = page.evaluate("() => JSON.stringify(Object.assign({}, localStorage, sessionStorage))")
    assert visitor_key not in stored
    assert visitor_key not in page.locator("#status").inner_text()
    page.locator("#api-call").get_by_text("API call").click()
    expect(page.locator("#api-curl")).to_contain_text("$JUHE_API_KEY")
    code = page.locator("#api-call").inner_text()
    assert visitor_key not in code and "api_key=os.environ" in code


# --- defects of issue 11 ---------------------------------------------------------------------------


def test_continue_editing_uses_the_result_on_show(open_page):
    """A new edit resets the selection: Continue uses what is on show, not an older click."""
    page = open_page()
    first = run_edit(page, f"two results [sim:images=2] {marker()}")
    expect(page.locator("#results img")).to_have_count(2)
    page.locator("#results img").nth(1).click()
    second = run_edit(page, f"another edit {marker()}", image=None)
    assert second != first
    page.locator("#continue").click()
    expect(page.locator("#image1 img")).to_have_attribute("src", re.compile(second))


def test_continue_after_choosing_uses_the_chosen_result(open_page):
    page = open_page()
    run_edit(page, f"two results [sim:images=2] {marker()}")
    second = page.locator("#results img").nth(1)
    wait_loaded(second)
    chosen = second.get_attribute("src").rsplit("/", 1)[-1]
    second.click()
    expect(page.locator("#result img")).to_have_attribute("src", re.compile(re.escape(chosen)))
    page.locator("#continue").click()
    expect(page.locator("#image1 img")).to_have_attribute("src", re.compile(re.escape(chosen)))


@pytest.mark.parametrize(
    ("image", "size"), [(ASTRONAUT, "3:2"), (CAT, "2:3")], ids=["square-to-3:2", "3:2-to-2:3"]
)
def test_before_and_after_cover_the_same_box(open_page, image, size):
    page = open_page()
    fill_form(page, f"compare {marker()}", image)
    choose_size(page, size)
    page.locator("button#run").click()
    wait_done(page)
    layers = page.locator("#compare img")
    expect(layers).to_have_count(2)
    for layer in layers.all():
        wait_loaded(layer)
    natural = [layer.evaluate("img => [img.naturalWidth, img.naturalHeight]") for layer in layers.all()]
    assert natural[0] == natural[1], natural
    boxes = [layer.bounding_box() for layer in layers.all()]
    for key in ("width", "height"):
        assert abs(boxes[0][key] - boxes[1][key]) <= 1, boxes


def test_a_portrait_result_is_shown_whole(open_page):
    page = open_page()
    fill_form(page, f"portrait {marker()}")
    choose_size(page, "9:16")
    page.locator("button#run").click()
    wait_done(page)
    image = page.locator("#result img")
    wait_loaded(image)
    box, frame = image.bounding_box(), page.locator("#result").bounding_box()
    assert box["y"] >= frame["y"] - 1 and box["y"] + box["height"] <= frame["y"] + frame["height"] + 1
    assert box["x"] >= frame["x"] - 1 and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1
    shown_ratio = box["height"] / box["width"]
    assert (
        abs(shown_ratio - 1280 / 720) < 0.03
        or image.evaluate("i => getComputedStyle(i).objectFit") == "contain"
    )


def test_several_results_are_all_shown_and_counted(open_page):
    page = open_page()
    run_edit(page, f"two [sim:images=2] {marker()}")
    expect(page.locator("#results img")).to_have_count(2)
    expect(page.locator("#status")).to_contain_text("2 results")


def test_custom_size_out_of_range_is_said_at_once_and_sends_nothing(open_page, running: RunningApp):
    page = open_page()
    tag = marker()
    fill_form(page, f"custom {tag}")
    choose_size(page, "Custom")
    expect(page.locator("#size input")).to_have_value(re.compile("Custom"))
    expect(page.locator("#custom-size")).to_be_visible()
    page.locator("#width input").fill("3000")
    page.locator("#width input").blur()
    expect(page.locator("#size-note")).to_contain_text("nothing is sent")
    expect(page.locator("button#run")).to_be_disabled()  # as the note says (issue 18)
    assert running.requests_with(tag) == []
    page.locator("#width input").fill("1000")
    page.locator("#width input").blur()
    expect(page.locator("#size-note")).to_have_text("")
    page.locator("button#run").click()
    wait_done(page)
    assert running.requests_with(tag)[0]["size"] == "1000*1024"


def test_visitor_mistakes_print_no_traceback(open_page, tmp_path, capfd):
    page = open_page()
    fake = tmp_path / "fake.png"
    fake.write_text("this is not an image")
    page.locator("#image1 input[type=file]").set_input_files(str(fake))
    assert "could not be read" in toast_text(page, "could not be read")
    expect(page.locator("#image1 img")).to_have_count(0)  # the refused file is cleared first
    fill_form(page, f"custom {marker()}")
    choose_size(page, "Custom")
    page.locator("#width input").fill("100")
    page.locator("#width input").blur()
    expect(page.locator("button#run")).to_be_disabled()  # refused before anything is sent
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


def test_a_non_image_is_refused_on_upload(open_page, tmp_path):
    page = open_page("zh-CN")
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"<html>not an image</html>")
    page.locator("#image1 input[type=file]").set_input_files(str(fake))
    text = toast_text(page)
    assert "无法读取图1" in text and "could not be read" in text
    expect(page.locator("#image1 img")).to_have_count(0)  # no broken image left in the slot


def test_the_upload_limit_is_said_in_both_languages(open_page, tmp_path):
    page = open_page("zh-CN")
    big = tmp_path / "big.jpg"
    big.write_bytes(CAT.read_bytes() + b"\0" * (UPLOAD_LIMIT + 1))
    page.locator("#image1 input[type=file]").set_input_files(str(big))
    text = toast_text(page)
    assert "文件超过允许的最大大小" in text and "exceed the maximum allowed size" in text


# --- friction of issue 11 ---------------------------------------------------------------------------


def test_status_after_a_failure_says_only_what_is_true(open_page):
    page = open_page()
    fill_form(page, f"[sim:282504] {marker()}")
    page.locator("button#run").click()
    toast_text(page)
    expect(page.locator("#status")).to_contain_text("The edit failed")
    expect(page.locator("#status")).not_to_contain_text("kept")  # there were no earlier results
    page.locator("#prompt textarea").fill(f"[sim:slow=2] {marker()}")
    page.locator("button#run").click()
    expect(page.locator("#status")).to_contain_text("Editing")  # the old failure is gone at once
    wait_done(page)


def test_progress_moves_while_the_provider_works(open_page):
    page = open_page()
    fill_form(page, f"[sim:slow=3] {marker()}")
    page.locator("button#run").click()
    waiting = page.get_by_text(re.compile(r"Waiting for the provider · \d+ s")).first
    expect(waiting).to_be_visible()
    first = int(re.search(r"· (\d+) s", waiting.inner_text()).group(1))
    later = page.get_by_text(re.compile(rf"Waiting for the provider · (?!{first} s)\d+ s")).first
    expect(later).to_be_visible()  # the count moved on by itself, with no answer yet
    assert int(re.search(r"· (\d+) s", later.inner_text()).group(1)) > first
    wait_done(page)


def test_cancel_frees_the_page_and_keeps_a_late_result(open_page, running: RunningApp):
    page = open_page()
    kept = run_edit(page, f"kept {marker()}")
    tag = marker()
    page.locator("#prompt textarea").fill(f"[sim:slow=2] cancelled {tag}")
    page.locator("button#run").click()
    expect(page.locator("#cancel")).to_be_enabled()
    page.locator("#cancel").click()
    expect(page.locator("#status")).to_contain_text("Stopped waiting")
    expect(page.locator("#status")).to_contain_text("may still finish (and bill)")
    expect(page.locator("button#run")).to_be_enabled()
    assert kept in page.locator("#result img").get_attribute("src")  # earlier results stay
    # the provider finishes after all: the result is saved and joins the history
    # the provider's 2 s, then the next tick of the page's collection timer: generous on loaded cores
    expect(page.locator("#status")).to_contain_text("finished after all", timeout=2 * WAIT_MS)
    late = wait_done(page, {kept})
    expect(page.locator("#history img")).to_have_count(2)
    assert running.sidecar(late)["prompt"].endswith(tag)


def test_ctrl_enter_runs_and_enter_adds_a_line(open_page, running: RunningApp):
    page = open_page()
    tag = marker()
    fill_form(page, f"keyboard {tag}")
    # The page starts an edit only by clicking the run button, from inside the key's own handler:
    # counting the clicks tells at once, with no delay to wait out, whether a key started one.
    page.evaluate(
        "() => { window.runClicks = 0; document.addEventListener('click', "
        "e => { if (e.target.closest('button#run')) window.runClicks++; }, true); }"
    )
    box = page.locator("#prompt textarea")
    box.press("End")
    box.press("Enter")
    box.press("Shift+Enter")
    assert box.input_value().endswith("\n\n")  # both keys were handled, as new lines
    assert page.evaluate("window.runClicks") == 0
    # a key pressed while an input method composes is the input method's
    box.evaluate(
        "el => el.dispatchEvent(new KeyboardEvent('keydown', "
        "{key: 'Enter', ctrlKey: true, isComposing: true, bubbles: true}))"
    )
    assert page.evaluate("window.runClicks") == 0
    box.press("Control+Enter")
    assert page.evaluate("window.runClicks") == 1  # the count sees a key's run
    wait_done(page)
    assert len(running.requests_with(tag)) == 1


def test_the_run_button_has_a_visible_focus_ring(open_page):
    page = open_page()
    page.locator("#size input").focus()
    run = page.locator("button#run")
    for _ in range(8):
        page.keyboard.press("Tab")
        if run.evaluate("b => document.activeElement === b"):
            break
    assert run.evaluate("b => document.activeElement === b")
    assert run.evaluate("b => getComputedStyle(b).outlineStyle") != "none"
    assert run.evaluate("b => parseFloat(getComputedStyle(b).outlineWidth)") >= 2


def test_first_screen_is_compact(open_page):
    page = open_page()
    expect(page.locator("#results-empty")).to_be_visible()
    for hidden in ("#result", "#compare", "#history", "#api-call", "#continue"):
        expect(page.locator(hidden)).to_have_count(0)  # not rendered until there is a result


def test_history_item_opens_large_with_its_actions(open_page):
    page = open_page()
    older = run_edit(page, f"older {marker()}")
    newer = run_edit(page, f"newer {marker()}", image=None)
    expect(page.locator("#history img")).to_have_count(2)
    page.locator("#history img").nth(1).click()
    shown = page.locator("#result img")
    expect(shown).to_have_attribute("src", re.compile(older))
    wait_loaded(shown)
    assert shown.bounding_box()["height"] > 250
    expect(page.locator("#continue")).to_be_visible()
    expect(page.locator("#result button[aria-label*=ownload], #result a[download]").first).to_be_attached()
    page.locator("#continue").click()
    expect(page.locator("#image1 img")).to_have_attribute("src", re.compile(older))
    assert newer != older


def test_a_link_for_image1_is_shown_beside_the_slots(open_page):
    page = open_page()
    page.get_by_text("Advanced: image links").click()
    page.locator("#url1 textarea").fill("https://images.example/cat.png")
    expect(page.locator("#link-note")).to_contain_text("图1 uses the link from Advanced")
    page.locator("#url1 textarea").fill("")
    expect(page.locator("#link-note")).to_have_text("")


def test_on_a_phone_the_results_come_into_view(open_page):
    page = open_page(width=390, height=844)
    # 图1-图3 in one row, once the page has laid itself out (a first frame can still be settling)
    tops = "() => [1, 2, 3].map(i => document.querySelector(`#image${i}`).getBoundingClientRect().top)"
    try:
        page.wait_for_function(f"() => (t => Math.max(...t) - Math.min(...t) < 2)(({tops})())")
    except PlaywrightTimeoutError:
        pytest.fail(f"图1-图3 are not in one row: tops {page.evaluate(tops)}")
    for i in (1, 2, 3):  # each label whole inside its own slot, not cut by the slot's edge
        label, slot = page.locator(f"#image{i} [data-testid=block-label]"), page.locator(f"#image{i}")
        box, frame = label.bounding_box(), slot.bounding_box()
        assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 1, label.inner_text()
        assert label.evaluate("l => l.scrollWidth <= l.clientWidth + 1"), label.inner_text()
    run_edit(page, f"phone {marker()}")
    # the page scrolls (smoothly) until the status line, and the result under it, are on screen
    page.wait_for_function(
        "() => { const top = document.querySelector('#status').getBoundingClientRect().top;"
        " return top >= 0 && top < 844; }"
    )


def test_the_api_call_panel_shows_the_edit_as_code(open_page, running: RunningApp):
    page = open_page()
    prompt = f'It\'s "quoted" $(rm -rf /) 中文 {marker()}'
    run_edit(page, prompt)
    page.locator("#api-call").get_by_text("API call").click()
    curl = page.locator("#api-curl").inner_text()
    python = page.locator("#api-python").inner_text()
    gradio = page.locator("#api-gradio").inner_text()
    assert "--data-urlencode" in curl and "image1@image1.txt" in curl and "cat.jpg" in curl
    assert "ImageEditClient" in python and "'cat.jpg'" in python
    assert "handle_file('cat.jpg')" in gradio and running.url in gradio
    assert SERVER_KEY not in curl + python + gradio
