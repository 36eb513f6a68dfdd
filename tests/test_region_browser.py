"""Precise edits on the page (issue 12), in a real browser: paint a region and only it changes, a
result at 图1's exact size, and an iPhone photo that the browser could not show by itself."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from helpers.apphost import running_app
from helpers.browser import WAIT_MS, choose_size, toast_text, wait_done, wait_loaded
from helpers.tags import marker
from PIL import Image
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator:
    with running_app(tmp_path_factory.mktemp("region")) as app:
        yield app


@pytest.fixture
def page(browser: Browser, running) -> Iterator[Page]:
    context = browser.new_context(locale="en-US", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(running.url)
    expect(page.locator("button#run")).to_be_enabled()
    yield page
    context.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A PNG 图1 with detail everywhere, so a changed pixel cannot hide."""
    path = tmp_path_factory.mktemp("photo") / "scene.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 255, (480, 720, 3), dtype=np.uint8)).save(path)
    return path


def paint_stroke(page: Page) -> None:
    """Drag the brush across the middle of the region editor's canvas."""
    canvas = page.locator("#region canvas").first
    expect(canvas).to_be_visible()
    # the editor takes strokes once it has drawn 图1, an action it records (Undo turns on)
    expect(page.locator("#region button[aria-label=Undo]")).to_be_enabled()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 40, y)
    page.mouse.down()
    page.mouse.move(x + 40, y, steps=12)
    page.mouse.up()


def test_a_painted_region_is_the_only_part_that_changes(page: Page, running, photo: Path):
    page.locator("#image1 input[type=file]").set_input_files(str(photo))
    expect(page.locator("#image1 img")).to_be_visible()
    expect(page.locator("#region")).to_have_count(0)  # the editor is built only when asked for
    page.locator("#paint").click()
    paint_stroke(page)
    tag = marker()
    page.locator("#prompt textarea").fill(f"only the stroke {tag}")
    page.locator("button#run").click()
    order = wait_done(page)
    expect(page.locator("#status")).to_contain_text("only the painted area changed")

    saved = running.output_dir / running.sidecar(order)["files"][0]
    with Image.open(saved) as result, Image.open(photo) as source:
        assert result.size == source.size  # exactly 图1's size
        changed = np.asarray(result.convert("RGB")).astype(int) != np.asarray(source).astype(int)
    rows, cols = np.nonzero(changed.any(axis=2))
    assert len(rows), "the painted area changed"
    # everything changed lies in one compact area in the middle, the rest is 图1 itself
    assert cols.max() - cols.min() < 720 * 0.6 and rows.max() - rows.min() < 480 * 0.6
    assert not changed[:60].any() and not changed[-60:].any() and not changed[:, :60].any()
    sidecar = running.sidecar(order)
    assert sidecar["region"]["crop_box"] and sidecar["output_size"] == "720*480"
    for image in page.locator("#compare img").all():  # the before/after at full resolution
        wait_loaded(image)
        assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [720, 480]
    # the API panel offers the two files its snippets name, as the client made them
    page.locator("#api-call").get_by_text("API call").first.click()
    links = page.locator("#api-files a[download]")
    expect(links).to_have_count(2)
    files = {}
    for link in links.all():
        href = link.get_attribute("href")
        files[href.rsplit("/", 1)[-1]] = Image.open(io.BytesIO(httpx.get(href, timeout=30).content))
    left, top, right, bottom = sidecar["region"]["crop_box"]
    pad = sidecar["region"]["padding"]
    assert files["mask.png"].size == (720, 480)
    assert files["image1-crop.png"].size == (right - left + pad[0] + pad[2], bottom - top + pad[1] + pad[3])


def test_painting_needs_an_image_first(page: Page):
    page.locator("#paint").click()
    assert "Put an image in 图1 first" in toast_text(page, "first")
    expect(page.locator("#region")).to_have_count(0)


def test_the_whole_image_again_drops_the_painting(page: Page, running, photo: Path):
    page.locator("#image1 input[type=file]").set_input_files(str(photo))
    page.locator("#paint").click()
    paint_stroke(page)
    page.locator("#paint-done").click()
    expect(page.locator("#region-panel")).to_be_hidden()
    page.locator("#prompt textarea").fill(f"whole {marker()}")
    page.locator("button#run").click()
    order = wait_done(page)
    assert running.sidecar(order).get("region") is None


def test_same_as_image1_gives_its_exact_size(page: Page, running, photo: Path):
    page.locator("#image1 input[type=file]").set_input_files(str(photo))
    page.locator("#prompt textarea").fill(f"same size {marker()}")
    choose_size(page, "Same as 图1")
    page.locator("button#run").click()
    order = wait_done(page)
    with Image.open(running.output_dir / running.sidecar(order)["files"][0]) as result:
        assert result.size == (720, 480)


def test_an_iphone_photo_is_shown_and_edited(page: Page, running, tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    # lower case: Playwright gives the file its type from the name, and knows only ".heic"
    heic = tmp_path / "IMG_0001.heic"
    Image.new("RGB", (640, 480), (200, 40, 40)).save(heic, quality=70)
    page.locator("#image1 input[type=file]").set_input_files(str(heic))
    shown = page.locator("#image1 img")
    expect(shown).to_have_attribute("src", re.compile(r"IMG_0001\.jpg$"))  # a JPEG the browser can show
    wait_loaded(shown)
    page.locator("#prompt textarea").fill(f"heic {marker()}")
    page.locator("button#run").click()
    order = wait_done(page)
    assert running.sidecar(order)["prompt"].startswith("heic")


def test_the_region_example_paints_its_mask_for_the_visitor(page: Page, running):
    page.get_by_text("One region").click()
    expect(page.locator("#region canvas").first).to_be_visible()
    expect(page.locator("#prompt textarea")).to_have_value(re.compile("potted plant"))
    expect(page.locator("#region button[aria-label=Undo]")).to_be_enabled()  # 图1 and the mask drawn
    page.locator("button#run").click()
    order = wait_done(page)
    expect(page.locator("#status")).to_contain_text("only the painted area changed")
    root = Path(__file__).resolve().parent.parent / "examples"
    saved = running.output_dir / running.sidecar(order)["files"][0]
    with Image.open(saved) as result, Image.open(root / "astronaut.jpg") as source:
        assert result.size == source.size
        difference = np.abs(np.asarray(result.convert("RGB")).astype(int) - np.asarray(source.convert("RGB")))
    changed = difference.max(axis=2) > 24  # beyond a JPEG's own noise
    inside = np.zeros(changed.shape, bool)
    inside[0 : 296 + 16, 345 - 16 : 472 + 16] = True  # the example's mask and the feather around it
    assert changed[inside].mean() > 0.5 and changed[~inside].mean() < 0.01
