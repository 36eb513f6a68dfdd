"""What changed and Download as (issue 18) in a real browser, in offline mode: the simulator's
results are visibly changed versions of 图1, and a region edit keeps everything outside the region."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.apphost import RunningApp, running_app
from helpers.browser import WAIT_MS, choose_size, run_edit, wait_done, wait_loaded
from helpers.paths import CAT, ROOT
from helpers.tags import marker
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from juhe import read_provenance
from webapp.changes import analysis_size

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]
SCREENSHOT = os.environ.get("JUHE_SCREENSHOT")  # a path: save the what-changed view there


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("views"), live=False) as app:
        yield app


@pytest.fixture
def page(browser: Browser, running: RunningApp) -> Iterator[Page]:
    context = browser.new_context(
        locale="en-US", viewport={"width": 1366, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(running.url)
    expect(page.locator("button#run")).to_be_enabled()
    yield page
    context.close()


def jpeg_tables(quality: int) -> dict:
    """The quantisation tables Pillow writes at `quality`."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", quality=quality)
    return Image.open(out).quantization


def show_changes(page: Page) -> str:
    """Press What changed; wait for the overlay; return the sentence."""
    expect(page.locator("#changes")).to_be_hidden()  # made only when asked for
    page.locator("#changes-show").click()
    wait_loaded(page.locator("#changes img"))
    text = page.locator("#changes-text")
    expect(text).to_contain_text("of 255")
    return text.inner_text()


def test_what_changed_on_a_region_edit_shows_no_change_outside_the_region(page: Page, running: RunningApp):
    page.get_by_text("One region").click()  # the region example: 图1, its instruction and its mask
    expect(page.locator("#region-panel")).to_be_visible()
    page.locator("button#run").click()
    order = wait_done(page)
    sentence = show_changes(page)
    assert "nothing changed outside it" in sentence
    share = int(re.search(r"(\d+) % of the image changed", sentence).group(1))
    assert 1 <= share <= 40  # the painted shuttle model, not the whole picture
    overlay = page.locator("#changes img")
    with Image.open(running.output_dir / running.sidecar(order)["files"][0]) as result:
        wanted = list(analysis_size(result.size))  # the analysis scale, never enlarged
    assert overlay.evaluate("i => [i.naturalWidth, i.naturalHeight]") == wanted
    if SCREENSHOT:
        page.locator("#changes-text").scroll_into_view_if_needed()
        page.locator("#views").screenshot(path=SCREENSHOT)


def test_a_picture_the_provider_reframed_is_said_to_have_moved(page: Page):
    page.locator("#image1 input[type=file]").set_input_files(str(CAT))  # 3:2, asked for a square
    page.locator("#prompt textarea").fill(f"square {marker()}")
    choose_size(page, "Square 1:1 · 1024×1024")
    page.locator("button#run").click()
    wait_done(page)
    assert "Most of the image moved" in show_changes(page)


def test_a_new_result_hides_the_old_view(page: Page):
    run_edit(page, f"first {marker()}")
    show_changes(page)
    run_edit(page, f"second {marker()}", image=None)
    expect(page.locator("#changes")).to_be_hidden()
    expect(page.locator("#changes-text")).to_be_hidden()


def test_download_as_each_format_carries_the_label_and_nothing_else(page: Page, tmp_path: Path):
    photo = ROOT / "examples" / "coffee.jpg"
    run_edit(page, f"download {marker()}", image=photo)
    page.locator("#export").click()  # the accordion
    quality = page.locator("#export-quality input[type=number]")
    expect(quality).to_be_disabled()  # PNG is lossless
    for fmt in ("PNG", "JPEG", "WebP"):
        page.locator("#export-format label", has_text=fmt).click()
        if fmt != "PNG":
            expect(quality).to_be_enabled()
            quality.fill("70")
            quality.press("Enter")
        page.locator("#export-make").click()
        suffix = "jpg" if fmt == "JPEG" else fmt.lower()
        link = page.locator("#export-file tr", has_text=re.compile(rf"\.{suffix}")).locator("a")
        expect(link).to_be_visible(timeout=WAIT_MS)
        with page.expect_download() as download:
            link.click()
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
        label = read_provenance(path)
        assert label is not None and label["AIGC"]["Label"] == "1"
        with Image.open(path) as saved:
            assert saved.format == fmt.upper()
            assert not saved.getexif() and "exif" not in saved.info
            if fmt == "JPEG":  # made at the quality chosen on the page: Pillow's tables for 70
                assert saved.quantization == jpeg_tables(70)


def test_a_deleted_result_hides_the_views(page: Page):
    run_edit(page, f"gone {marker()}")
    expect(page.locator("#views")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#delete").click()
    expect(page.locator("#views")).to_be_hidden()
